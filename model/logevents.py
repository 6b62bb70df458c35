"""Events in a rank's log: loss steps, errors, msrun's own verdicts. Pure, never raising, no I/O.

A follower hands every line of a file, in order, to one `LogEventParser`; most lines are not
events and cost a few substring checks. What counts (formats: ascend-formats.md §3.2-3.3 and
§4.2-4.4, serving-and-logs.md §3-4, and the logs `tests/samples/logs/` recorded with msrun):

| kind | severity | what |
|---|---|---|
| `loss` | info | a MindFormers loss line (`model.logformat.parse_loss_line`), `loss` set |
| `nan_loss` | error | a loss line whose loss is NaN/Inf, or MindFormers' `... terminate training.` |
| `traceback` | error | a Python traceback, frames to the exception line, with any framework block after it |
| `framework_error` | error | MindSpore's `- Framework Error Message:` / `- C++ Call Stack:` block alone |
| `ms_error` | error | a logger's `[ERROR]`/`[CRITICAL]`/`[EXCEPTION]` line (MindSpore, MindFormers) |
| `cann_error` | error | a CANN error code line (`EI0006: ...`) and its indented explanation; `code` set |
| `oom` | error | device out of memory (`Out of Memory!!!`, `Memory not enough`, ...) |
| `stream_sync` | error | `rtStreamSynchronize` / `SyncStream` failures |
| `worker_started` | info | msrun's `Start worker process with rank id:N`; `rank` set |
| `worker_exit` | error | msrun's `Worker process <pid> exit with exception. Error code: N`; pid, exit_code |
| `workers_killed` | warning | msrun's `There's worker exits with exception, kill all other workers.` |
| `scheduler_exit` | error | msrun's `Scheduler process <pid> exit with exception.`; `pid` set |
| `scheduler_timeout` | error | nodes the scheduler saw time out; the message names them |
| `job_failed` | error | msrun's `RuntimeError: Distributed job exited with exception...` |
| `all_exited` | info | msrun's `All workers successfully exit!` |
| `cluster_retry` | info | `Topology build timed out., retry(i/n)`: routine while the cluster forms |
| `warning` | warning | any other `[WARNING]` / `- WARNING -` line, Python `...Warning:` lines |
| `checkpoint` | info | this project's trainer's `saved checkpoint PATH` |
| `answer` | info | predict's `output result is: [...]`, its line kept whole (model/answers.py reads it) |
| `generation` | info | a generate call's `total time: ... s; generated tokens: N tokens; ...` |

One thing is one event: a traceback whose exception carries an out-of-memory framework block is a
single `oom` event holding every line, the most telling kind winning (see `_SPECIFIC`). msrun's own
traceback (its frames are in `mindspore/parallel/cluster/run.py`) has `source == LAUNCHER_SOURCE`,
so who-failed-first never blames the launcher's RuntimeError before the rank's own error.

What one line says on its own (its kind, time, pid) is model/loglines.py's; this module groups lines
into events and says which ranks to follow. The single-line names are importable from here too.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from model.loglines import (
    KINDS,
    LAUNCHER_SOURCE,
    MAX_EVENT_LINES,
    ROUTINE_KINDS,
    LogEvent,
    Severity,
    cut_line,
    line_pid,
    line_severity,
    line_time,
    make_event,
    single_event,
    specific_kind,
    stamped,
)

__all__ = [  # what the rest of the console imports from here, single-line helpers included
    "KINDS",
    "LAUNCHER_SOURCE",
    "MAX_EVENT_LINES",
    "LogEvent",
    "LogEventParser",
    "Severity",
    "default_followed_ranks",
    "line_pid",
    "line_severity",
    "line_time",
    "loss_ranks",
    "stamped",
]

# -- groups of lines --------------------------------------------------------------------------

_CANN_START = re.compile(r"E[0-9A-Z]\d{4}: ")
_FRAME = re.compile(r'\s+File "([^"]*)", line (\d+)', re.ASCII)
_CPP_FRAME = re.compile(r"\S+:\d+ \S+$")
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
_LEVEL_PREFIXES = ("[DEBUG]", "[INFO]", "[WARNING]", "[ERROR]", "[CRITICAL]", "[EXCEPTION]")
_TAIL = MAX_EVENT_LINES // 2
_HEAD = MAX_EVENT_LINES - _TAIL - 1


def _starts_something(line: str) -> bool:
    """A line that cannot belong to the block before it: a logger line, a new traceback, a step."""
    return (line.startswith(_LEVEL_PREFIXES) or line.startswith("Traceback (most recent call last)")
            or line[:4].isdigit() or line.startswith(("{ Epoch:", "{ step:", "Start worker process")))


def _dashes(line: str) -> bool:
    return len(line) >= 10 and line.startswith("----------") and not line.strip("-").strip()


@dataclass
class _Group:
    """Lines of one multi-line event not yet emitted. `mode` says what the next line may be:
    frames (a traceback's body), after_exc (its exception line seen), block / stack (a framework
    block's message sections / its C++ call stack), maybe_block (a lone dashed line), cann."""

    start: int
    time: float | None
    mode: str
    head: list[str] = field(default_factory=list)
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=_TAIL))
    cut: int = 0
    held: list[str] = field(default_factory=list)
    exception: str | None = None
    source: str | None = None
    launcher: bool = False

    def add(self, line: str) -> None:
        for pending in self.held:
            self._keep(pending)
        self.held.clear()
        self._keep(line)

    def _keep(self, line: str) -> None:
        line = cut_line(line)
        if len(self.head) < _HEAD:
            self.head.append(line)
            return
        if len(self.tail) == _TAIL:
            self.cut += 1
        self.tail.append(line)

    def lines(self) -> tuple[str, ...]:
        marker = [f"… [{self.cut} lines cut] …"] if self.cut else []
        return (*self.head, *marker, *self.tail)


class LogEventParser:
    """One per file; lines fed in file order (text without the newline)."""

    def __init__(self, *, first_line: int = 1, last_time: float | None = None) -> None:
        self._next = first_line
        self._last_time = last_time
        self._group: _Group | None = None

    @property
    def pending_from(self) -> int | None:
        """Line number of the first line of a group not yet emitted (resume parsing there)."""
        return self._group.start if self._group is not None else None

    @property
    def last_time(self) -> float | None:
        return self._last_time

    def feed(self, lines: Iterable[str]) -> list[LogEvent]:
        events: list[LogEvent] = []
        for raw in lines:
            line = raw.rstrip("\r\n")
            number = self._next
            self._next += 1
            before = self._last_time
            if (stamp := line_time(line)) is not None:
                self._last_time = stamp
            if self._group is not None:
                if self._continues(self._group, line):
                    continue
                events.extend(self._close())
            if self._opens(line, number, before if stamp is None else stamp):
                continue
            event = single_event(line, number, stamp if stamp is not None else before)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[LogEvent]:
        """End of input: the pending group, if any, as an event."""
        return self._close() if self._group is not None else []

    def _opens(self, line: str, number: int, time: float | None) -> bool:
        if line.startswith("Traceback (most recent call last)"):
            mode = "frames"
        elif _dashes(line):
            mode = "maybe_block"
        elif line[:1] == "E" and _CANN_START.match(line):
            mode = "cann"
        else:
            return False
        self._group = _Group(start=number, time=time, mode=mode)
        self._group.add(line)
        return True

    def _continues(self, group: _Group, line: str) -> bool:
        """Whether `line` belongs to the group (then it is kept or held); else the group is over."""
        if group.mode == "frames":
            return _frame_line(group, line)
        if group.mode == "cann":
            belongs = line[:1] in (" ", "\t") and bool(line.strip())
        elif not line.strip():
            group.held.append(line)
            return len(group.held) <= (2 if group.mode == "after_exc" else 1)
        else:
            mode = _next_mode(group, line)
            belongs = mode is not None
            group.mode = mode or group.mode
        if belongs:
            group.add(line)
        return belongs

    def _close(self) -> list[LogEvent]:
        group, self._group = self._group, None
        if group is None or group.mode == "maybe_block":
            return []
        lines = group.lines()
        body = [line for line in lines if line[:1] not in (" ", "\t")]
        kind = next((k for k in map(specific_kind, body) if k is not None and k not in ROUTINE_KINDS), None)
        if group.mode == "cann":
            base = "cann_error"
        else:
            base = "traceback" if group.exception is not None or group.mode == "frames" else "framework_error"
        if group.launcher:
            kind = "job_failed" if kind == "job_failed" else None
        message = _group_message(kind, lines, group.exception)
        source = LAUNCHER_SOURCE if group.launcher else group.source
        event = make_event(kind or base, lines[0], group.start, group.time, message=message, lines=lines,
                           source=source)
        return [event]


def _group_message(kind: str | None, lines: tuple[str, ...], exception: str | None) -> str:
    """The line a person reads: the telling line for a specific kind, else the exception, else the
    framework block's first words."""
    if kind is not None:
        telling = next((line for line in lines
                        if line[:1] not in (" ", "\t") and specific_kind(line) == kind), None)
        if telling is not None:
            return telling
    after = lines.index(exception) + 1 if exception in lines else 1
    content = next((line.strip() for line in lines[after:] if line.strip() and not _dashes(line)
                    and not line.startswith(("- ", " ", "\t"))), "")
    if exception is None:
        return content or lines[0]
    if exception.rstrip().endswith(":") and content and content != exception.strip():
        return f"{exception.strip()} {content}"
    return exception


def _frame_line(group: _Group, line: str) -> bool:
    """A traceback's body: frames, chained tracebacks, then the exception line."""
    if line[:1] in (" ", "\t") or line.startswith(("Traceback (most recent", *_CHAINED)):
        frame = _FRAME.match(line)
        if frame is not None:
            group.source = f"{frame[1]}:{frame[2]}"
            group.launcher |= frame[1].endswith(("mindspore/parallel/cluster/run.py", "/msrun"))
        group.add(line)
        return True
    if not line.strip():
        group.held.append(line)
        return len(group.held) <= 1
    if _starts_something(line):
        return False
    group.exception = line
    group.mode = "after_exc"
    group.add(line)
    return True


def _next_mode(group: _Group, line: str) -> str | None:
    """The group's mode once the (non-blank) `line` is in it, or None: the line is not the group's."""
    mode = group.mode
    if mode == "after_exc":
        if line.startswith(_CHAINED):
            return "frames"
        return "block" if _dashes(line) else None
    if mode == "maybe_block":
        return _section(line) if line.startswith("- ") else None
    if _starts_something(line) or (mode == "stack" and group.held and not _dashes(line)):
        return None
    if (line.startswith("- ") and line.rstrip().endswith(":")) or "Call Stack" in line:
        return _section(line)
    if mode == "stack" and not (_dashes(line) or _CPP_FRAME.match(line)):
        return None
    return mode


def _section(header: str) -> str:
    return "stack" if "Call Stack" in header else "block"


# -- which ranks to follow --------------------------------------------------------------------

def loss_ranks(*, world: int, pipeline_stages: int) -> range:
    """Ranks of the last pipeline stage, the only ones printing the real loss (pp=2 on 8 -> 4..7)."""
    if world <= 0:
        return range(0)
    per_stage = max(world // max(pipeline_stages, 1), 1)
    return range(world - per_stage, world)


def default_followed_ranks(*, world: int) -> tuple[int, ...]:
    """Rank 0 and the last rank, deduplicated. The last rank is on the last pipeline stage whatever
    the layout, so it prints the real loss: the stages need not be known."""
    return tuple(sorted({0, world - 1})) if world > 0 else ()
