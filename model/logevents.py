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

One thing is one event: a traceback whose exception carries an out-of-memory framework block is a
single `oom` event holding every line, the most telling kind winning (see `_SPECIFIC`). msrun's own
traceback (its frames are in `mindspore/parallel/cluster/run.py`) has `source == LAUNCHER_SOURCE`,
so who-failed-first never blames the launcher's RuntimeError before the rank's own error.
"""

from __future__ import annotations

import calendar
import math
import re
import signal
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from model.logformat import LossRecord, parse_loss_line

Severity = Literal["error", "warning", "info"]

KINDS: dict[str, Severity] = {
    "loss": "info", "nan_loss": "error", "traceback": "error", "framework_error": "error",
    "ms_error": "error", "cann_error": "error", "oom": "error", "stream_sync": "error",
    "worker_started": "info", "worker_exit": "error", "workers_killed": "warning",
    "scheduler_exit": "error", "scheduler_timeout": "error", "job_failed": "error",
    "all_exited": "info", "cluster_retry": "info", "warning": "warning",
}
"""Every kind an event can have, with its severity (the module docstring says what each means)."""

MAX_EVENT_LINES = 200
"""An event keeps at most this many lines: the head and the tail (a traceback's exception line is
its last), with one marker line between saying how many were cut."""
MAX_LINE_CHARS = 4096
"""A line kept in an event is cut to this many characters (the follower may hand 64 KiB lines)."""
MAX_MESSAGE_CHARS = 300
LAUNCHER_SOURCE = "msrun"
"""`LogEvent.source` of msrun's own traceback (not a rank's)."""


@dataclass(frozen=True)
class LogEvent:
    """One thing that happened, as a line (or a block of lines) of one file says it."""

    kind: str
    severity: Severity
    line: int
    """1-based number, in its file, of the event's first line."""
    time: float | None
    """Epoch seconds in the node's clock (printed local time read as UTC: consistent, not tz-correct),
    from the line's own timestamp, else the last one seen earlier in the file, else None."""
    message: str
    lines: tuple[str, ...]
    rank: int | None = None
    pid: int | None = None
    exit_code: int | None = None
    loss: LossRecord | None = None
    code: str | None = None
    source: str | None = None
    module: str | None = None


# -- single lines -----------------------------------------------------------------------------

_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[- ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9})(?:\.(\d{1,6}))?)?", re.ASCII)
_MS_LINE = re.compile(  # MindSpore C++ and Python loggers (§3.3)
    r"\[(DEBUG|INFO|WARNING|ERROR|CRITICAL|EXCEPTION)\] ([A-Z_]+)\((\d+)[,:]\w+,[^)]*\):\S+ "
    r"\[([^\]]+)\] ?(?:\w+\] )?(.*)", re.ASCII)
# MindFormers' file log `[ERROR] 2026-11-28 12:57:59,329 [path:1] f: msg`; torch_npu `[ERROR] <time> (PID:..)`
_OTHER_LEVEL = re.compile(
    r"\[(DEBUG|INFO|WARNING|ERROR|CRITICAL|EXCEPTION)\] [\d:.,-]+(?: [\d:.,]+)? (?:\([^)]*\) )?"
    r"(?:\[([^\]]+)\] )?(.*)", re.ASCII)
_MF_STDOUT = re.compile(r"(?:\[([^\[\]]+:\d+)\])? - (WARNING|ERROR|CRITICAL) - (.*)")
_PY_WARNING = re.compile(r"^\S.*:\d+: (\w*Warning): ")
_PID = re.compile(r"\[(?:DEBUG|INFO|WARNING|ERROR|CRITICAL|EXCEPTION)\] [A-Z_]+\((\d{1,18})[,:]", re.ASCII)
_CANN_START = re.compile(r"E[0-9A-Z]\d{4}: ")
_CANN_CODE = re.compile(r"\b(E[0-9A-Z]\d{4}):")
_WORKER_EXIT = re.compile(
    r"Worker process (\d{1,18}) exit with exception\.(?: Error code: (-?\d{1,18}))?", re.ASCII)
_SCHEDULER_EXIT = re.compile(r"Scheduler process (\d{1,18}) exit with exception", re.ASCII)
_RANK_NAMED = re.compile(r"(?:rank id:\s*|RankID:)(\d{1,9})\b", re.ASCII)
_NODE_IDS = re.compile(  # `Time out nodes are [1, 2]`, `Timed out node list is: [const vector]{1}`
    r"(?:Time out nodes are|node list is:[^\[{]*(?:\[const vector\])?)\s*[\[{]([^\]}]*)[\]}]")
_ONE_NODE = re.compile(r"The node: (\S+) is timed out")
_FIRST_NODE = re.compile(r"worker (\S+) is the first one timed out")
_FRAME = re.compile(r'\s+File "([^"]*)", line (\d+)', re.ASCII)
_CPP_FRAME = re.compile(r"\S+:\d+ \S+$")

_LEVEL_SEVERITY: dict[str, Severity | None] = {
    "DEBUG": None, "INFO": None, "WARNING": "warning",
    "ERROR": "error", "CRITICAL": "error", "EXCEPTION": "error"}

_SPECIFIC: tuple[tuple[str, tuple[str, ...], re.Pattern[str] | None], ...] = (
    ("oom", ("Out of Memory", "Memory not enough", "memory isn't enough", "Current free memory size["), None),
    ("cann_error", ("E",), _CANN_CODE),
    ("stream_sync", ("rtStreamSynchronize", "SyncStream failed", "Sync stream failed"), None),
    ("nan_loss", ("terminate training",), None),
    ("scheduler_timeout", ("Time out nodes are", "timed out node is", "is timed out. It may exit"), None),
    ("worker_exit", ("Worker process ",), _WORKER_EXIT),
    ("scheduler_exit", ("Scheduler process ",), _SCHEDULER_EXIT),
    ("job_failed", ("Distributed job exited with exception",), None),
    ("workers_killed", ("kill all other workers",), None),
    ("all_exited", ("All workers successfully exit",), None),
    ("cluster_retry", ("Topology build timed out., retry",), None),
)
"""Kinds a line's words make more telling than its level, most telling first."""
_ROUTINE = frozenset({"workers_killed", "all_exited", "cluster_retry"})
"""Specific kinds that a warning or info level line may carry (the others are errors only)."""


def _specific(text: str) -> str | None:
    """The most telling kind the words of `text` name: substrings first (cheap), a pattern to confirm."""
    for kind, needles, confirm in _SPECIFIC:
        if any(needle in text for needle in needles) and (confirm is None or confirm.search(text)):
            return kind
    return None


def line_time(line: str) -> float | None:
    """The timestamp a line carries near its start, as epoch seconds read as UTC, or None.

    `2026-11-28-12:47:14.221.381` (MindSpore: ms then µs), `2026-11-28 12:51:27,168` (Python
    logging), `2025-04-07 15:34:27.363613` (MindIO), `2025-10-11-15:09:34` (torch_npu)."""
    found = _TIME.search(line, 0, 120)
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(found[i]) for i in range(1, 7))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second <= 61):
        return None
    try:
        base = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    first, second_part = found[7], found[8]
    if first is None:
        return float(base)
    if second_part is not None:
        return base + int(first) / 1000 + int(second_part) / 1_000_000
    return base + float("0." + first)


def line_pid(line: str) -> int | None:
    """The pid in a MindSpore-prefixed line (`[WARNING] DISTRIBUTED(11278,7f2f...)` -> 11278), else None."""
    found = _PID.match(line)
    return int(found[1]) if found else None


def line_severity(line: str) -> Severity | None:
    """A cheap class for highlighting one line on its own (no context: a traceback's frames are None)."""
    if line.startswith("Traceback (most recent call last)") or _exception_line(line):
        return "error"
    event = _single(line, 0, None)
    return event.severity if event is not None else None


def _exception_line(line: str) -> bool:
    head = line.split(":", 1)[0]
    return head.endswith(("Error", "Exception")) and head.replace(".", "").replace("_", "").isalnum()


def _message(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS - 1] + "…"


def _event(kind: str, line: str, number: int, time: float | None, *, message: str | None = None,
           lines: tuple[str, ...] | None = None, source: str | None = None,
           module: str | None = None) -> LogEvent:
    """An event with what the text itself names (rank, pid, exit code, CANN code, timed-out nodes)."""
    text = message if message is not None else line
    rank = pid = exit_code = None
    if kind in ("worker_exit", "scheduler_exit"):
        found = (_WORKER_EXIT if kind == "worker_exit" else _SCHEDULER_EXIT).search(text)
        if found is not None:
            pid = int(found[1])
            exit_code = int(found[2]) if kind == "worker_exit" and found[2] is not None else None
            text = _with_signal(text, exit_code)
    elif kind == "scheduler_timeout":
        text = _timeout_message(text)
    if (named := _RANK_NAMED.search(line)) is not None:
        rank = int(named[1])
    code = _CANN_CODE.search(text) or _CANN_CODE.search(line)
    return LogEvent(kind=kind, severity=KINDS[kind], line=number, time=time, message=_message(text),
                    lines=lines if lines is not None else (_cut_line(line),), rank=rank, pid=pid,
                    exit_code=exit_code, code=code[1] if code else None, source=source, module=module)


def _with_signal(text: str, exit_code: int | None) -> str:
    """msrun's `Error code: -9` says a signal killed the worker; name it."""
    if exit_code is None or exit_code >= 0:
        return text
    try:
        return f"{text} (killed by {signal.Signals(-exit_code).name})"
    except ValueError:
        return text


def _timeout_message(text: str) -> str:
    ids = _NODE_IDS.search(text)
    one = _ONE_NODE.search(text)
    nodes = ids[1].strip() if ids else one[1] if one else None
    if nodes is None:
        return text
    first = _FIRST_NODE.search(text)
    return f"Timed out nodes: {nodes}" + (f" (worker {first[1]} timed out first)" if first else "")


def _single(line: str, number: int, time: float | None) -> LogEvent | None:
    """The event one line makes on its own, or None; group starts are the parser's business."""
    if "step:[" in line and (loss := _loss_event(line, number, time)) is not None:
        return loss
    if line.startswith("["):
        return _level_line(line, number, time)
    if line.startswith("Start worker process with rank id:"):
        return _event("worker_started", line, number, time)
    if " - " in line and (stdout := _MF_STDOUT.search(line)) is not None:
        return _leveled(stdout[2], stdout[3], line, number, time, source=stdout[1], module=None)
    kind = _specific(line)
    if kind is not None:
        return _event(kind, line, number, time)
    if "Warning: " in line and _PY_WARNING.match(line):
        return _event("warning", line, number, time)
    return None


def _level_line(line: str, number: int, time: float | None) -> LogEvent | None:
    found = _MS_LINE.match(line)
    if found is not None:
        level, module, _pid, source, text = found.groups()
        return _leveled(level, text, line, number, time, source=source, module=module)
    other = _OTHER_LEVEL.match(line)
    if other is not None:
        return _leveled(other[1], other[3], line, number, time, source=other[2], module=None)
    return None


def _leveled(level: str, text: str, line: str, number: int, time: float | None, *, source: str | None,
             module: str | None) -> LogEvent | None:
    """A logger's line: its level decides, unless its words name something more telling."""
    severity = _LEVEL_SEVERITY.get(level)
    kind = _specific(text)
    if severity == "error":
        return _event(kind or "ms_error", line, number, time, message=text, source=source, module=module)
    if kind in _ROUTINE:
        return _event(kind, line, number, time, message=text, source=source, module=module)
    if severity == "warning":
        return _event("warning", line, number, time, message=text, source=source, module=module)
    return None


def _loss_event(line: str, number: int, time: float | None) -> LogEvent | None:
    record = parse_loss_line(line)
    if record is None:
        return None
    bad = record.loss is not None and not math.isfinite(record.loss)
    total = f"/{record.total_steps}" if record.total_steps else ""
    loss = "N/A" if record.loss is None else f"{record.loss:.6g}"
    event = _event("nan_loss" if bad else "loss", line, number, time,
                   message=f"step {record.step}{total} loss {loss}")
    return replace(event, loss=record)


def _cut_line(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " …[cut]"


# -- groups of lines --------------------------------------------------------------------------

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
        line = _cut_line(line)
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
            event = _single(line, number, stamp if stamp is not None else before)
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
        kind = next((k for k in map(_specific, body) if k is not None and k not in _ROUTINE), None)
        if group.mode == "cann":
            base = "cann_error"
        else:
            base = "traceback" if group.exception is not None or group.mode == "frames" else "framework_error"
        if group.launcher:
            kind = "job_failed" if kind == "job_failed" else None
        message = _group_message(kind, lines, group.exception)
        source = LAUNCHER_SOURCE if group.launcher else group.source
        event = _event(kind or base, lines[0], group.start, group.time, message=message, lines=lines,
                       source=source)
        return [event]


def _group_message(kind: str | None, lines: tuple[str, ...], exception: str | None) -> str:
    """The line a person reads: the telling line for a specific kind, else the exception, else the
    framework block's first words."""
    if kind is not None:
        telling = next((line for line in lines if line[:1] not in (" ", "\t") and _specific(line) == kind),
                       None)
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


def default_followed_ranks(*, world: int, pipeline_stages: int) -> tuple[int, ...]:
    """Rank 0 and the last rank (a last-stage rank, so it prints the real loss), deduplicated."""
    del pipeline_stages  # the last rank is on the last stage whatever the layout
    return tuple(sorted({0, world - 1})) if world > 0 else ()
