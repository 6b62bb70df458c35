"""The one seam to a node: run, stream, put, get, close. Failures come back as values."""

from __future__ import annotations

import os
import re
import secrets
import shlex
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Literal

from remote.inventory import NodeSpec

# Output kept per stream of one command; a fan-out of `cat hugefile` must not eat the console.
OUTPUT_LIMIT = 8 * 1024 * 1024
TRUNCATED_NOTE = "\n[output truncated by ascend-console]\n"
# Added to a command's own limit before the console gives up on the remote `timeout`.
KILL_GRACE = 5.0
# How often a line reader of a stream wakes up with nothing read (it has no deadline of its own).
STREAM_POLL = 0.2


class ErrorKind(str, Enum):
    """Why a command did not run to an exit code of its own."""

    UNREACHABLE = "unreachable"
    AUTH = "auth"
    TIMEOUT = "timeout"
    HOST_KEY = "host-key"
    REFUSED = "refused"
    """The node is up but would not open one more session (sshd's MaxSessions)."""
    IO = "io"


@dataclass(frozen=True)
class RunResult:
    node: str
    command: str
    exit_code: int | None
    stdout: str
    stderr: str
    elapsed: float
    error: ErrorKind | None = None
    message: str = ""

    @classmethod
    def failure(
        cls, *, node: str, command: str, kind: ErrorKind, message: str, elapsed: float,
        exit_code: int | None = None, stdout: str = "", stderr: str = "",
    ) -> RunResult:
        return cls(node, command, exit_code, stdout, stderr, elapsed, kind, message)

    @property
    def ok(self) -> bool:
        return self.error is None and self.exit_code == 0

    @property
    def status(self) -> str:
        """ok | failed | timeout | unreachable | auth | host-key | io."""
        if self.error is not None:
            return self.error.value
        return "ok" if self.exit_code == 0 else "failed"

    def describe(self) -> str:
        """One line a person can act on: node, what was run, what happened."""
        if self.error is not None or self.exit_code is None:
            return f"{self.node}: {self.message}"
        detail = self.stderr.strip().splitlines()[-1:] or [""]
        return f"{self.node}: `{self.command}` exited {self.exit_code} {detail[0]}".rstrip()


@dataclass(frozen=True)
class TransferResult:
    node: str
    source: str
    destination: str
    size: int
    elapsed: float
    error: ErrorKind | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


ChannelName = Literal["stdout", "stderr"]


@dataclass(frozen=True)
class StreamLine:
    channel: ChannelName
    text: str


class LineAssembler:
    """Bytes in as they arrive, whole lines out, per output channel."""

    def __init__(self) -> None:
        self._pending: dict[ChannelName, bytes] = {"stdout": b"", "stderr": b""}

    def feed(self, channel: ChannelName, data: bytes) -> list[StreamLine]:
        *lines, self._pending[channel] = (self._pending[channel] + data).split(b"\n")
        return [StreamLine(channel, line.decode("utf-8", "replace")) for line in lines]

    def flush(self) -> list[StreamLine]:
        """The unterminated last lines, once the command is over."""
        rest = [StreamLine(name, data.decode("utf-8", "replace"))
                for name, data in self._pending.items() if data]
        self._pending = {"stdout": b"", "stderr": b""}
        return rest


class CommandStream(ABC):
    """A running command whose output is read as it comes; closing it stops the command."""

    node: str
    command: str
    exit_code: int | None = None
    error: ErrorKind | None = None
    message: str = ""

    @abstractmethod
    def chunks(self, poll: float) -> Iterator[list[tuple[ChannelName, bytes]]]:
        """Raw output as it arrives: a list at least every `poll` seconds, empty when nothing came,
        so a reader can check its own deadlines; ends when the output is complete (exit_code set)."""

    def __iter__(self) -> Iterator[StreamLine]:
        """The output as lines, per channel; the last unterminated ones at the end."""
        assembler = LineAssembler()
        for chunks in self.chunks(STREAM_POLL):
            for name, data in chunks:
                yield from assembler.feed(name, data)
        yield from assembler.flush()

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> CommandStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Transport(ABC):
    """How the console reaches one node. Nothing above this seam knows which kind it has."""

    node: NodeSpec

    @abstractmethod
    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdin: bytes | None = None,
    ) -> RunResult:
        """Run argv (each part quoted, never re-parsed); kill it when `timeout` expires."""

    @abstractmethod
    def stream(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandStream: ...

    @abstractmethod
    def put(self, local: Path, remote: str, *, timeout: float | None = None) -> TransferResult:
        """Copy a local file to the node; the destination appears whole or not at all."""

    @abstractmethod
    def get(self, remote: str, local: Path, *, timeout: float | None = None) -> TransferResult: ...

    @abstractmethod
    def close(self) -> None: ...


def brief(command: str, width: int = 80) -> str:
    """A command as messages quote it: one line, and long scripts cut short."""
    flat = " ".join(command.split())
    return flat if len(flat) <= width else flat[: width - 1] + "\u2026"


def command_text(argv: Sequence[str]) -> str:
    """The shell-quoted form of argv: what a person would paste to run the same thing."""
    return shlex.join(argv)


def remote_command_line(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
) -> str:
    """The line handed to a node's shell: every user-supplied part goes through shlex.quote."""
    words: list[str] = []
    if timeout is not None and timeout <= 0:
        # `timeout 0` means "no limit" to coreutils: never let that through by accident
        raise ValueError(f"a command timeout must be > 0 seconds (got {timeout})")
    if env:
        words += ["env", *(f"{_env_name(k)}={v}" for k, v in env.items())]
    if timeout is not None:
        # coreutils timeout signals the whole process group, so children die with the command
        words += ["timeout", "-k", f"{KILL_GRACE:g}", f"{timeout:g}"]
    line = shlex.join([*words, *argv])
    if cwd is not None:
        line = f"cd -- {quote_remote_path(cwd)} && exec {line}"
    return line


def expand_home(variable: str) -> str:
    """A shell line giving $variable's leading `~` the node's $HOME: scripts get paths as positional
    parameters, where the shell expands no tilde (quote_remote_path does it for a command line)."""
    v = variable
    return f'case ${v} in "~") {v}=$HOME ;; "~/"*) {v}="$HOME/${{{v}#\\~/}}" ;; esac\n'


def quote_remote_path(path: str) -> str:
    """Quote a path for a remote shell, keeping a leading `~/` meaning the remote home."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_name(name: str) -> str:
    if not _ENV_NAME.fullmatch(name):
        raise ValueError(f"not an environment variable name: {name!r}")
    return name


def partial_name(name: str) -> str:
    """A hidden temporary name beside the destination; unique, so concurrent copies never mix."""
    return f".{name}.{os.getpid()}.{secrets.token_hex(4)}.part"


def decode_output(data: bytes) -> str:
    text = data[:OUTPUT_LIMIT].decode("utf-8", errors="replace")
    return text + TRUNCATED_NOTE if len(data) > OUTPUT_LIMIT else text


def killed_by_limit(elapsed: float, limit: float, exit_code: int | None) -> bool:
    """The remote `timeout` ended it: 124 after TERM, 137 (or no status: it killed its own group
    with KILL) after the grace period."""
    return elapsed >= limit and exit_code in (124, 137, None)
