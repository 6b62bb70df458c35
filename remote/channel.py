"""Reading a paramiko channel: output as it comes, stdin fed without deadlock, exit status."""

from __future__ import annotations

import select
import time
from collections.abc import Iterator
from dataclasses import dataclass

import paramiko

from remote.transport import (
    OUTPUT_LIMIT,
    ChannelName,
    CommandStream,
    ErrorKind,
    decode_output,
)

# Polling step while waiting on a channel: bounds how late a deadline or a close is noticed.
POLL = 0.2
# Feeding stdin polls faster: the remote side may be waiting for us.
FEED_POLL = 0.01
STDIN_CHUNK = 32 * 1024
# How long output may still arrive after the exit status (see ChannelReader).
EOF_GRACE = 2.0


@dataclass(frozen=True)
class Completion:
    stdout: str
    stderr: str
    exit_code: int | None
    """None: the channel ended without an exit status (killed by a signal, or the link died)."""
    finished: bool
    """False: the deadline passed first."""


class ChannelReader:
    """Reads a command's channel until its output is complete.

    Complete means EOF and an exit status. sshd may send the status while output still waits for
    flow-control window, so the status alone does not mean "all read"; the EOF does (it follows
    the last byte). A process the command left in the background can hold the output open and
    keep the EOF away for ever, so after the status the EOF is awaited only for a grace period.
    """

    def __init__(self, channel: paramiko.Channel) -> None:
        self.channel = channel
        self._status_seen: float | None = None

    def _complete(self) -> bool:
        channel = self.channel
        if channel.closed or (channel.eof_received and channel.exit_status_ready()):
            return True
        if not channel.exit_status_ready():
            return False
        if self._status_seen is None:
            self._status_seen = time.monotonic()
        return time.monotonic() - self._status_seen > EOF_GRACE

    def read(self, poll: float = POLL) -> list[tuple[ChannelName, bytes]] | None:
        """Output ready within one poll step; None once the output is complete and all read."""
        channel = self.channel
        # judged before the buffers are read: every byte before the EOF is buffered by then
        complete = self._complete()
        chunks: list[tuple[ChannelName, bytes]] = []
        if channel.recv_ready():
            chunks.append(("stdout", channel.recv(65536)))
        if channel.recv_stderr_ready():
            chunks.append(("stderr", channel.recv_stderr(65536)))
        if chunks:
            return chunks
        if complete:
            return None
        if channel.eof_received:
            # after EOF paramiko keeps the channel's poll pipe readable for good: select would spin
            channel.status_event.wait(poll)
        else:
            select.select([channel], [], [], poll)
        return chunks


def collect(channel: paramiko.Channel, *, stdin: bytes, deadline: float) -> Completion:
    """Feed stdin and gather all output until the command ends or the deadline passes.

    Stdin goes in small pieces between reads: a command that answers while it reads would
    otherwise fill the window one way while we block sending the other.
    """
    buffers: dict[ChannelName, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
    reader = ChannelReader(channel)
    sent = 0
    if not stdin:
        channel.shutdown_write()
    while time.monotonic() < deadline:
        if sent < len(stdin) and channel.send_ready():
            taken = _feed(channel, stdin[sent : sent + STDIN_CHUNK])
            sent = len(stdin) if taken is None else sent + taken
            if taken is not None and sent == len(stdin):
                channel.shutdown_write()
        chunks = reader.read(FEED_POLL if sent < len(stdin) else POLL)
        if chunks is None:
            code = channel.recv_exit_status() if channel.exit_status_ready() else None
            return _completion(buffers, code if code != -1 else None, finished=True)
        for name, chunk in chunks:
            if len(buffers[name]) <= OUTPUT_LIMIT:
                buffers[name] += chunk
    return _completion(buffers, None, finished=False)


def _feed(channel: paramiko.Channel, data: bytes) -> int | None:
    """How much of `data` the channel took; None once it is closed: the command ended without reading
    all of its stdin (a script that refuses at once), and what it said and its exit status are what
    count. A lost link closes the channel too, and its missing exit status says so."""
    try:
        return channel.send(data)
    except OSError:
        if channel.closed:
            return None
        raise


def _completion(buffers: dict[ChannelName, bytearray], code: int | None, *, finished: bool) -> Completion:
    return Completion(decode_output(bytes(buffers["stdout"])), decode_output(bytes(buffers["stderr"])),
                      code, finished)


class SSHStream(CommandStream):
    def __init__(
        self, node: str, command: str, channel: paramiko.Channel | None,
        error: ErrorKind | None = None, message: str = "",
    ) -> None:
        self.node, self.command, self._channel = node, command, channel
        self.error, self.message = error, message

    def chunks(self, poll: float) -> Iterator[list[tuple[ChannelName, bytes]]]:
        channel = self._channel
        if channel is None:
            return
        reader = ChannelReader(channel)
        while (chunks := reader.read(poll)) is not None:
            yield chunks
        if channel.exit_status_ready() and channel.recv_exit_status() != -1:
            self.exit_code = channel.recv_exit_status()

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
