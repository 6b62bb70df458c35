"""LocalTransport: a "node" that is this machine, run through subprocess with SSH's semantics."""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Literal

from remote.inventory import NodeSpec
from remote.transport import (
    CommandStream,
    ErrorKind,
    RunResult,
    StreamLine,
    TransferResult,
    Transport,
    command_text,
    decode_output,
)


def expand_local(path: str) -> str:
    return os.path.expanduser(path)


class LocalTransport(Transport):
    def __init__(self, node: NodeSpec) -> None:
        self.node = node

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdin: bytes | None = None,
    ) -> RunResult:
        started = time.monotonic()
        text = command_text(argv)
        limit = timeout if timeout is not None else self.node.command_timeout
        process = self._spawn(argv, env, cwd, stdin is not None)
        if isinstance(process, RunResult):
            return process
        try:
            out, err = process.communicate(stdin, timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            out, err = process.communicate()
            return RunResult(
                self.node.name, text, process.returncode, decode_output(out), decode_output(err),
                time.monotonic() - started, ErrorKind.TIMEOUT,
                f"`{text}` did not finish within {limit:g}s and was killed",
            )
        return RunResult(
            self.node.name, text, process.returncode, decode_output(out), decode_output(err),
            time.monotonic() - started,
        )

    def _spawn(
        self, argv: Sequence[str], env: Mapping[str, str] | None, cwd: str | None, with_stdin: bool
    ) -> subprocess.Popen[bytes] | RunResult:
        """Start argv in its own session; a missing program or directory answers like a shell."""
        try:
            return subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE if with_stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=expand_local(cwd) if cwd else None,
                env={**os.environ, **env} if env else None,
                start_new_session=True,
            )
        except FileNotFoundError:
            missing_dir = cwd is not None and not os.path.isdir(expand_local(cwd))
            code, why = (2, f"cd: {cwd}: No such file or directory") if missing_dir else (
                127, f"{argv[0]}: command not found")
            return RunResult(self.node.name, command_text(argv), code, "", why + "\n", 0.0)
        except PermissionError:
            return RunResult(
                self.node.name, command_text(argv), 126, "", f"{argv[0]}: Permission denied\n", 0.0)

    def stream(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandStream:
        process = self._spawn(argv, env, cwd, with_stdin=False)
        return LocalStream(self.node.name, command_text(argv), process)

    def put(self, local: Path, remote: str, *, timeout: float | None = None) -> TransferResult:
        return _copy_atomically(self.node.name, Path(local), Path(expand_local(remote)))

    def get(self, remote: str, local: Path, *, timeout: float | None = None) -> TransferResult:
        return _copy_atomically(self.node.name, Path(expand_local(remote)), Path(local))

    def close(self) -> None:
        """Nothing is held open between commands."""


class LocalStream(CommandStream):
    def __init__(self, node: str, command: str, process: subprocess.Popen[bytes] | RunResult) -> None:
        self.node = node
        self.command = command
        self._process: subprocess.Popen[bytes] | None = None
        if isinstance(process, RunResult):
            self.exit_code = process.exit_code
            self._early = [StreamLine("stderr", line) for line in process.stderr.splitlines()]
        else:
            self._process = process
            self._early = []

    def __iter__(self) -> Iterator[StreamLine]:
        yield from self._early
        if self._process is None:
            return
        yield from _read_lines(self._process)
        self.exit_code = self._process.wait()

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            _kill_group(self._process)
            self._process.wait()


def _read_lines(process: subprocess.Popen[bytes]) -> Iterator[StreamLine]:
    assert process.stdout is not None and process.stderr is not None
    selector = selectors.DefaultSelector()
    channels: dict[IO[bytes], Literal["stdout", "stderr"]] = {
        process.stdout: "stdout", process.stderr: "stderr"}
    pending = {name: b"" for name in channels.values()}
    for source in channels:
        selector.register(source, selectors.EVENT_READ, data=source)
    while selector.get_map():
        for key, _ in selector.select():
            pipe: IO[bytes] = key.data
            name = channels[pipe]
            chunk = os.read(pipe.fileno(), 65536)
            if not chunk:
                selector.unregister(pipe)
                if pending[name]:
                    yield StreamLine(name, pending[name].decode("utf-8", "replace"))
                continue
            *lines, pending[name] = (pending[name] + chunk).split(b"\n")
            for line in lines:
                yield StreamLine(name, line.decode("utf-8", "replace"))
    selector.close()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _copy_atomically(node: str, source: Path, destination: Path) -> TransferResult:
    started = time.monotonic()
    partial = destination.with_name(f".{destination.name}.part")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, partial)
        shutil.copymode(source, partial)
        partial.replace(destination)
        size = destination.stat().st_size
    except OSError as exc:
        partial.unlink(missing_ok=True)
        return TransferResult(
            node, str(source), str(destination), 0, time.monotonic() - started, ErrorKind.IO,
            f"cannot copy {source} to {node}:{destination}: {exc.strerror or exc}",
        )
    return TransferResult(node, str(source), str(destination), size, time.monotonic() - started)
