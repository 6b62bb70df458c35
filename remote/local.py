"""LocalTransport: a "node" that is this machine, run through subprocess with SSH's semantics."""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from remote.inventory import NodeSpec
from remote.transport import (
    KILL_GRACE,
    ChannelName,
    CommandStream,
    ErrorKind,
    RunResult,
    TransferResult,
    Transport,
    brief,
    command_text,
    decode_output,
    partial_name,
)


class LocalTransport(Transport):
    def __init__(self, node: NodeSpec) -> None:
        self.node = node
        self._running: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

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
        with self._lock:
            self._running.add(process)
        try:
            return self._wait(process, text, limit, stdin, started)
        finally:
            with self._lock:
                self._running.discard(process)

    def _wait(self, process: subprocess.Popen[bytes], text: str, limit: float, stdin: bytes | None,
              started: float) -> RunResult:
        try:
            out, err = process.communicate(stdin, timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            out, err = _leftover_output(process)
            return RunResult.failure(
                node=self.node.name, command=text, exit_code=process.returncode,
                stdout=decode_output(out), stderr=decode_output(err),
                elapsed=time.monotonic() - started, kind=ErrorKind.TIMEOUT,
                message=f"`{brief(text)}` did not finish within {limit:g}s and was killed",
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
                cwd=os.path.expanduser(cwd) if cwd else None,
                env={**os.environ, **env} if env else None,
                start_new_session=True,
            )
        except OSError as exc:
            code, why = _as_a_shell_would_say(argv[0], cwd, exc)
            return RunResult(self.node.name, command_text(argv), code, "", why + "\n", 0.0)

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
        return _copy_atomically(self.node.name, Path(local), Path(os.path.expanduser(remote)))

    def get(self, remote: str, local: Path, *, timeout: float | None = None) -> TransferResult:
        return _copy_atomically(self.node.name, Path(os.path.expanduser(remote)), Path(local))

    def close(self) -> None:
        """Kill what is still running: quitting must not wait for a slow command."""
        with self._lock:
            running = list(self._running)
        for process in running:
            _kill_group(process)


class LocalStream(CommandStream):
    def __init__(self, node: str, command: str, process: subprocess.Popen[bytes] | RunResult) -> None:
        self.node = node
        self.command = command
        self._process: subprocess.Popen[bytes] | None = None
        self._early = b""
        if isinstance(process, RunResult):
            self.exit_code = process.exit_code
            self._early = process.stderr.encode()
        else:
            self._process = process

    def chunks(self, poll: float) -> Iterator[list[tuple[ChannelName, bytes]]]:
        if self._early:
            yield [("stderr", self._early)]
        if self._process is None:
            return
        yield from _read_chunks(self._process, poll)
        self.exit_code = self._process.wait()

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            _kill_group(self._process)
            self._process.wait()


def _as_a_shell_would_say(program: str, cwd: str | None, exc: OSError) -> tuple[int, str]:
    """The exit code and message `sh -c` gives for a command that could not start."""
    if cwd is not None and not os.path.isdir(os.path.expanduser(cwd)):
        why = "Not a directory" if os.path.exists(os.path.expanduser(cwd)) else "No such file or directory"
        return 2, f"cd: {cwd}: {why}"
    if isinstance(exc, FileNotFoundError):
        return 127, f"{program}: command not found"
    return 126, f"{program}: {exc.strerror or exc}"


def _leftover_output(process: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """What a killed command had printed. A child that escaped the process group (setsid) may
    hold the pipes open for ever, so this waits only briefly."""
    try:
        return process.communicate(timeout=KILL_GRACE)
    except subprocess.TimeoutExpired:
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        process.wait(timeout=KILL_GRACE)
        return b"", b""


def _read_chunks(process: subprocess.Popen[bytes], poll: float) -> Iterator[list[tuple[ChannelName, bytes]]]:
    assert process.stdout is not None and process.stderr is not None
    names: dict[int, ChannelName] = {process.stdout.fileno(): "stdout", process.stderr.fileno(): "stderr"}
    with selectors.DefaultSelector() as selector:
        for fd in names:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            chunks: list[tuple[ChannelName, bytes]] = []
            for key, _ in selector.select(poll):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    chunks.append((names[key.fd], chunk))
                else:
                    selector.unregister(key.fd)
            yield chunks


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _copy_atomically(node: str, source: Path, destination: Path) -> TransferResult:
    started = time.monotonic()
    partial = destination.with_name(partial_name(destination.name))
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, partial)
        shutil.copymode(source, partial)
        partial.replace(destination)
        size = destination.stat().st_size
    except OSError as exc:
        return TransferResult(
            node, str(source), str(destination), 0, time.monotonic() - started, ErrorKind.IO,
            f"cannot copy {source} to {node}:{destination}: {exc.strerror or exc}",
        )
    finally:
        partial.unlink(missing_ok=True)
    return TransferResult(node, str(source), str(destination), size, time.monotonic() - started)
