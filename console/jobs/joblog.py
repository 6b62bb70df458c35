"""What following a job's logs works with: the lines, events and batches a `JobFollow`
(console/jobs/follow.py) hands out, and the state it keeps for each file it follows."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from console.jobs.logfiles import LogFile
from console.records import LogCursor
from model.logevents import LogEvent, LogEventParser, Severity
from remote.follow import FileCursor, FollowNotice

RECENT_LINES = 512
"""Line offsets remembered per file, to resume at the start of a multi-line event not yet complete."""


@dataclass(frozen=True)
class JobLine:
    file: LogFile
    number: int
    text: str
    severity: Severity | None
    copy: bool = False
    """A line of msrun's output that copies a rank's log (msrun `--join` tails them): shown there."""


@dataclass(frozen=True)
class JobEvent:
    file: LogFile
    event: LogEvent
    rank: int | None
    time: float | None
    """Console clock (seconds since the epoch)."""


@dataclass(frozen=True)
class JobLogBatch:
    node: str
    lines: tuple[JobLine, ...] = ()
    events: tuple[JobEvent, ...] = ()
    notices: tuple[FollowNotice, ...] = ()
    exit_code: int | None = None
    """Set in the batch where the node's run is seen to have ended."""
    error: str | None = None
    """Handling the node's logs failed (what failed, and why): nothing more comes from this node."""


BatchSink = Callable[[JobLogBatch], None]


@dataclass
class FileState:
    """One followed file, touched only on its node's follower thread."""

    file: LogFile
    parser: LogEventParser
    recorded: LogCursor | None
    read: FileCursor
    pid: int | None = None
    fed: int = 0
    """Number of the last complete line parsed: a line numbered otherwise starts the file over."""
    restarted: bool = False
    """The file started over (truncated or replaced) since the store's position was read: what is
    recorded next counts from line 1, whatever line the store's position names."""
    recent: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=RECENT_LINES))
    """(line number, offset) of the latest lines."""
    unrecorded: list[JobEvent] = field(default_factory=list)
    """Events parsed but not yet in the store (their lines are not all read yet, or the store refused)."""
    heard: float = field(default_factory=time.monotonic)
    """When a line of the file last arrived (monotonic): how long a pending event has been quiet."""
    held_from: int | None = None
    """An event still pending when a running node's files were read to their end: its first line.
    It was shown, not recorded: the stored position stays before it."""
