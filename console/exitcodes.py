"""Exit codes shared by every headless command, so scripts can branch on them."""

OK = 0
# some node answered but something is wrong there (a command exited non-zero, a warning)
NODE_FAILED = 1
# some node could not be reached or could not run the command at all
UNREACHABLE = 2
# the command line was wrong (sysexits EX_USAGE)
USAGE = 64
# a cluster or job file was wrong (sysexits EX_CONFIG)
CONFIG = 78
INTERRUPTED = 130


class UsageError(Exception):
    """The arguments make no sense together; the message says what to write instead."""
