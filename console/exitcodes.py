"""Exit codes shared by every headless command, so scripts can branch on them; and the one place that
says which kind of mistake gets which code (`code_for`)."""

from __future__ import annotations

from model.yamlsource import Problem, SourceError

OK = 0
# some node answered but something is wrong there (a command exited non-zero, a warning)
NODE_FAILED = 1
# some node could not be reached or could not run the command at all
UNREACHABLE = 2
# the command line was wrong (sysexits EX_USAGE)
USAGE = 64
# a file named on the command line does not exist or cannot be read (sysexits EX_NOINPUT)
NO_INPUT = 66
# a cluster or job file was wrong (sysexits EX_CONFIG)
CONFIG = 78
INTERRUPTED = 130


class UsageError(Exception):
    """The arguments make no sense together; the message says what to write instead."""


def code_for(exc: BaseException) -> int:
    """The exit code for a mistake, by its kind: the command line (a bad option value, a node set that
    names no node), a file that is not there, or a file whose contents are wrong."""
    if isinstance(exc, UsageError):
        return USAGE
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if _unreadable(exc):
        return NO_INPUT
    if isinstance(exc, SourceError) and exc.problems and all(map(on_command_line, exc.problems)):
        return USAGE
    return CONFIG


def on_command_line(problem: Problem) -> bool:
    """A problem located in an option (`--nodes`) rather than in a file: a usage mistake."""
    return problem.source.startswith("-")


def messages(exc: BaseException) -> list[str]:
    """What to tell the user about `exc`: a line per problem, file and line first."""
    if isinstance(exc, SourceError) and exc.problems:
        return [str(problem) for problem in exc.problems]
    return [str(exc)]


def _unreadable(exc: BaseException) -> bool:
    """A file that could not be opened, however many wrappers deep (an InventoryError made of the
    SourceError made of the OSError); a connection that failed is not a missing file."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
            return True
        seen = seen.__cause__
    return False
