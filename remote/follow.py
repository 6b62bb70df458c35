"""Following a node's log files: one streaming session per node, resumable, batched, bounded.

A NodeFollower runs the follow agent (remote/followagent.py) on its node through the Transport,
with every file's cursor as arguments, and turns the agent's frames into FollowBatch values on its
own thread (never the NodePool's executor: a slow log must not delay a health refresh). When the
link drops, sshd restarts or the agent falls silent, it reconnects with capped backoff and resumes
every file from the end of the last complete line it delivered, so no line is lost or doubled.
Cursors are in every batch: persist them, and a new follower started from them carries on.
While the files are quiet a batch with no lines still comes about every IDLE_BATCH seconds (on the
agent's heartbeat), so a consumer can tell how long a file has been quiet. Should `on_batch` raise,
the follower ends and `failure` says what was raised.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from remote import followagent as agent
from remote.followframes import (
    CUT_MARKER,
    FileCursor,
    FollowedLine,
    Frame,
    FrameDecoder,
    FrameError,
    LineCutter,
)
from remote.transport import CommandStream, Transport

__all__ = [
    "CUT_MARKER",
    "FileCursor",
    "FollowBatch",
    "FollowNotice",
    "FollowedLine",
    "NodeFollower",
    "NoticeKind",
]

AGENT_SOURCE = Path(agent.__file__).read_text()
# How long the node's agent sleeps when a round found nothing new: most of the write->delivery lag.
AGENT_POLL = 0.05
# How often the console's reading loop wakes with nothing read, to check its deadlines.
READ_POLL = 0.05
BACKOFF_FIRST = 0.5
BACKOFF_CAP = 10.0
# Heartbeats remembered for the clock offset (see ClockOffset).
CLOCK_SAMPLES = 8
STDERR_KEPT = 2000
IDLE_BATCH = 1.0
"""Seconds between batches with nothing in them while the agent's heartbeats say the link is alive."""

NoticeKind = Literal[
    "waiting", "appeared", "truncated", "replaced", "rewritten", "unreadable", "disconnected", "reconnected"]


@dataclass(frozen=True)
class FollowNotice:
    path: str | None
    """None: about the node or the link."""
    kind: NoticeKind
    message: str
    """Says node, file and what happened."""


@dataclass(frozen=True)
class FollowBatch:
    node: str
    lines: tuple[FollowedLine, ...]
    """In file order per file (files may interleave)."""
    notices: tuple[FollowNotice, ...]
    cursors: Mapping[str, FileCursor]
    """Every file's position after this batch: what to persist."""
    clock_offset: float | None
    """Node clock minus console clock, seconds (latest measurement)."""
    utc_offset: float | None = None
    """Seconds the node's local time is ahead of UTC (the agent says so before any data)."""
    finished: bool = False
    """until_eof: every file read to its end; no more batches."""


class ClockOffset:
    """Node clock minus console clock, from heartbeats.

    A heartbeat arrives late by the link's delay (more when it queues behind data), which only
    ever makes the node look behind: the largest of the last few samples is the closest.
    """

    def __init__(self) -> None:
        self._samples: deque[float] = deque(maxlen=CLOCK_SAMPLES)

    def add(self, node_time: float, received: float) -> None:
        self._samples.append(node_time - received)

    @property
    def value(self) -> float | None:
        return max(self._samples) if self._samples else None


class _Pending:
    """What the next batch will carry; due by time or by size."""

    def __init__(self) -> None:
        self.lines: list[FollowedLine] = []
        self.notices: list[FollowNotice] = []
        self.size = 0
        self.since: float | None = None

    def add_lines(self, lines: list[FollowedLine], size: int) -> None:
        """`size`: the bytes of the file they came from (what batch_bytes bounds)."""
        if lines:
            self.lines += lines
            self.size += size
            self._touch()

    def add_notice(self, notice: FollowNotice) -> None:
        self.notices.append(notice)
        self._touch()

    def _touch(self) -> None:
        if self.since is None:
            self.since = time.monotonic()

    def due(self, seconds: float, size: int) -> bool:
        return self.since is not None and (self.size >= size or time.monotonic() - self.since >= seconds)


class SessionEnded(Exception):
    """A session stopped without finishing: the link, the agent, or a garbled stream."""

    def __init__(self, why: str, *, connected: bool) -> None:
        super().__init__(why)
        self.why = why
        self.connected = connected
        """The agent had started: the link worked, so the next try need not wait long."""


def agent_argv(python: str, cursors: Sequence[FileCursor], *, until_eof: bool, heartbeat: float,
               poll: float) -> list[str]:
    """The agent's command line: its source and every path and position as separate arguments."""
    files = [part for c in cursors
             for part in (c.path, "" if c.inode is None else str(c.inode), str(c.offset), c.head)]
    mode = "until-eof" if until_eof else "follow"
    return [python, "-c", AGENT_SOURCE, mode, f"{heartbeat:g}", f"{poll:g}", *files]


class NodeFollower:
    """Follows files on one node until stopped (or, with until_eof, until they are read to their end).

    `on_batch` runs on the follower's thread a few times a second at most: keep it cheap or hand
    the batch off. While it runs nothing more is read, which is what bounds the console's memory.
    """

    def __init__(self, transport: Transport, cursors: Sequence[FileCursor],
                 on_batch: Callable[[FollowBatch], None], *, until_eof: bool = False,
                 batch_seconds: float = 0.2, batch_bytes: int = 1 << 20, max_line_bytes: int = 64 << 10,
                 silence_timeout: float = 10.0) -> None:
        self.transport = transport
        self.node = transport.node.name
        self.on_batch = on_batch
        self.until_eof = until_eof
        self.batch_seconds = batch_seconds
        self.batch_bytes = batch_bytes
        self.max_line_bytes = max_line_bytes
        self.silence_timeout = silence_timeout
        self._cursors: dict[str, FileCursor] = {}
        self._conditions: dict[str | None, str] = {}  # the last notice of a kind that repeats per session
        self._clock = ClockOffset()
        self._utc_offset: float | None = None
        self._pending = _Pending()
        self._added: list[FileCursor] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._link_down = False
        self._finished = False
        self._flushed = time.monotonic()
        self.failure: str | None = None
        """Set when on_batch raised: what it raised. The follower has then ended."""
        self.add_files(cursors)

    # --- control, from any thread ---------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"follow-{self.node}", daemon=True)
            self._thread.start()

    def add_files(self, cursors: Sequence[FileCursor]) -> None:
        """Follow more files; a running session restarts to include them (losslessly: cursors)."""
        with self._lock:
            self._added += cursors

    def stop(self) -> None:
        """Ask the thread to end; it notices within READ_POLL (or a connect timeout) and closes."""
        self._stopping.set()

    def join(self, timeout: float | None = None) -> bool:
        """True once the thread has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    # --- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._follow()
        except Exception as error:  # noqa: BLE001 - the consumer's failure ends the thread, as a value
            self.failure = f"{type(error).__name__}: {error}"

    def _follow(self) -> None:
        backoff = BACKOFF_FIRST
        while not self._stopping.is_set() and not self._finished:
            self._take_added()
            try:
                self._session()
            except SessionEnded as ended:
                self._disconnected(ended.why)
                self._flush()
                backoff = BACKOFF_FIRST if ended.connected else backoff
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_CAP)
            else:
                backoff = BACKOFF_FIRST
        self._flush(force=self._finished)

    def _take_added(self) -> bool:
        with self._lock:
            added, self._added = self._added, []
        fresh = [c for c in added if c.path not in self._cursors]
        for cursor in fresh:
            self._cursors[cursor.path] = cursor
        return bool(fresh)

    def _restart_wanted(self) -> bool:
        with self._lock:
            return any(c.path not in self._cursors for c in self._added)

    def _session(self) -> None:
        """One agent run; returns when finished, stopped or restarting for new files, raises
        SessionEnded otherwise."""
        if not self._cursors:
            self._stopping.wait(READ_POLL)
            return
        paths = list(self._cursors)
        argv = agent_argv(self.transport.node.python, list(self._cursors.values()), until_eof=self.until_eof,
                          heartbeat=min(1.0, self.silence_timeout / 4), poll=AGENT_POLL)
        with self.transport.stream(argv) as stream:
            if stream.error is not None:
                raise SessionEnded(stream.message, connected=False)
            _Session(self, stream, paths).read()

    def _connected(self) -> None:
        if self._link_down:
            self._link_down = False
            self._notice(None, "reconnected",
                         f"{self.node}: reconnected; resuming every file where it stopped")

    def _disconnected(self, why: str) -> None:
        if not self._link_down:
            self._link_down = True
            self._notice(None, "disconnected", f"{self.node}: lost the log stream ({why}); reconnecting")

    def _notice(self, path: str | None, kind: NoticeKind, message: str) -> None:
        self._pending.add_notice(FollowNotice(path, kind, message))

    def _condition(self, path: str, kind: NoticeKind, message: str) -> None:
        """A waiting/unreadable notice, once until the file's state changes (not again per reconnect)."""
        if self._conditions.get(path) != f"{kind}:{message}":
            self._conditions[path] = f"{kind}:{message}"
            self._notice(path, kind, message)

    def _flush(self, *, force: bool = False) -> None:
        pending = self._pending
        if not force and pending.since is None:
            return
        self._pending = _Pending()
        self._flushed = time.monotonic()
        self.on_batch(FollowBatch(self.node, tuple(pending.lines), tuple(pending.notices),
                                  dict(self._cursors), self._clock.value, self._utc_offset,
                                  finished=self._finished))

    def _flush_if_due(self) -> None:
        if self._pending.due(self.batch_seconds, self.batch_bytes):
            self._flush()

    def _beat(self) -> None:
        """A heartbeat: with nothing to send for IDLE_BATCH seconds, an empty batch says time passed."""
        if self._pending.since is None and time.monotonic() - self._flushed >= IDLE_BATCH:
            self._flush(force=True)


class _Session:
    """One run of the agent: its frames applied to the follower's cursors and pending batch."""

    def __init__(self, follower: NodeFollower, stream: CommandStream, paths: list[str]) -> None:
        self.follower = follower
        self.stream = stream
        self.paths = paths
        self.decoder = FrameDecoder()
        cursors = follower._cursors
        self.cutters = [LineCutter(p, offset=cursors[p].offset, line=cursors[p].line,
                                   max_line_bytes=follower.max_line_bytes) for p in paths]
        self.heard = time.monotonic()
        self.stderr = b""
        self.finished = False

    def read(self) -> None:
        follower = self.follower
        for chunks in self.stream.chunks(READ_POLL):
            for channel, data in chunks:
                if channel == "stdout":
                    self._frames(data)
                else:
                    self.stderr = (self.stderr + data)[-STDERR_KEPT:]
            if self.finished:
                return
            if follower._stopping.is_set() or follower._restart_wanted():
                follower._flush()
                return
            if time.monotonic() - self.heard > follower.silence_timeout:
                raise SessionEnded(f"nothing heard for {follower.silence_timeout:g}s",
                                   connected=self.decoder.started)
            follower._flush_if_due()
        raise SessionEnded(self._why_ended(), connected=self.decoder.started)

    def _why_ended(self) -> str:
        said = self.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        code = "no exit status" if self.stream.exit_code is None else f"exit {self.stream.exit_code}"
        return f"the follow agent ended: {code}" + (f": {said[0]}" if said else "")

    def _frames(self, data: bytes) -> None:
        try:
            frames = self._decode(data)
        except FrameError as error:
            raise SessionEnded(str(error), connected=self.decoder.started) from error
        for frame in frames:
            self._apply(frame)

    def _decode(self, data: bytes) -> list[Frame]:
        was_started = self.decoder.started
        frames = self.decoder.feed(data)
        if self.decoder.started:
            self.heard = time.monotonic()
            if not was_started:
                self.follower._connected()
        return frames

    def _apply(self, frame: Frame) -> None:
        kind = frame.kind
        if kind == agent.DATA:
            self._data(frame)
        elif kind == agent.HEARTBEAT:
            self.follower._clock.add(agent.BEAT.unpack(frame.payload)[0], time.time())
            self.follower._beat()
        elif kind == agent.HEAD and frame.file < len(self.paths):
            cursors, path = self.follower._cursors, self.paths[frame.file]
            cursors[path] = replace(cursors[path], head=frame.payload.decode("ascii", "replace"))
        elif kind == agent.ZONE:
            self.follower._utc_offset = float(agent.ZONE_OFFSET.unpack(frame.payload)[0])
        elif kind == agent.DONE:
            self._done()
        elif frame.file < len(self.paths):
            self._file_event(frame, self.paths[frame.file])

    def _data(self, frame: Frame) -> None:
        if frame.file >= len(self.paths):
            raise SessionEnded(f"data for file #{frame.file} of {len(self.paths)}", connected=True)
        cutter = self.cutters[frame.file]
        try:
            lines = cutter.feed(frame.offset, frame.payload)
        except FrameError as error:
            raise SessionEnded(str(error), connected=True) from error
        if lines:
            self._move(cutter, self.follower._cursors[cutter.path].inode)
            self.follower._pending.add_lines(lines, len(frame.payload))
            self.follower._flush_if_due()

    def _file_event(self, frame: Frame, path: str) -> None:
        follower, node, why = self.follower, self.follower.node, frame.payload.decode("utf-8", "replace")
        cutter = self.cutters[frame.file]
        if frame.kind == agent.OPENED:
            if follower._conditions.pop(path, "").startswith("waiting:"):
                follower._notice(path, "appeared", f"{node}:{path} appeared; following it from its start")
            if frame.offset != cutter.expected:
                raise SessionEnded(f"{path}: opened at byte {frame.offset}, expected {cutter.expected}",
                                   connected=True)
            self._move(cutter, int(frame.payload))
        elif frame.kind == agent.WAITING:
            follower._condition(path, "waiting", f"{node}:{path} does not exist yet ({why}); waiting for it")
        elif frame.kind == agent.UNREADABLE:
            follower._condition(path, "unreadable", f"{node}:{path} cannot be read: {why}")
        elif frame.kind == agent.REPLACED:
            cutter.restart()
            self._move(cutter, None)
            follower._notice(path, "replaced", f"{node}:{path} was replaced by a new file; following it from "
                                               "its start (line numbers restart at 1)")
        elif frame.kind == agent.REWRITTEN:
            cutter.restart()
            self._move(cutter, follower._cursors[path].inode)
            follower._notice(path, "rewritten", f"{node}:{path} was rewritten from its start; following it "
                                                "from its start (line numbers restart at 1)")
        elif frame.kind == agent.TRUNCATED:
            cutter.restart()
            self._move(cutter, follower._cursors[path].inode)
            follower._notice(path, "truncated", f"{node}:{path} was truncated to {frame.offset} bytes; "
                                                "following it from its start (line numbers restart at 1)")

    def _move(self, cutter: LineCutter, inode: int | None) -> None:
        """The file's cursor is where its cutter has consumed to: the end of a complete line. Its head
        is kept while the file is the same one; from its start again, the agent says it anew."""
        before = self.follower._cursors[cutter.path]
        head = before.head if inode == before.inode and cutter.offset >= before.offset else ""
        self.follower._cursors[cutter.path] = FileCursor(cutter.path, inode, cutter.offset, cutter.line, head)

    def _done(self) -> None:
        for cutter in self.cutters:
            rest = cutter.rest()
            if rest is not None:
                self.follower._pending.add_lines([rest], rest.end - rest.offset)
        self.finished = True
        self.follower._finished = True
