"""One line of a rank's log on its own: the event it makes, its timestamp, its pid. Pure, never raising.

The kinds of events and what each means are in model/logevents.py's docstring; grouping lines into one
event (a traceback, a framework block, a CANN block) is its parser's business. Most lines are not
events, so each check starts with a few substring tests before any pattern runs.
"""

from __future__ import annotations

import calendar
import math
import re
import signal
from dataclasses import dataclass, replace
from typing import Literal

from model.answers import RESULT_MARK, SPEED_MARK, parse_speed, result_texts, shown_text
from model.logformat import LossRecord, parse_loss_line

Severity = Literal["error", "warning", "info"]

KINDS: dict[str, Severity] = {
    "loss": "info", "nan_loss": "error", "traceback": "error", "framework_error": "error",
    "ms_error": "error", "cann_error": "error", "oom": "error", "stream_sync": "error",
    "worker_started": "info", "worker_exit": "error", "workers_killed": "warning",
    "scheduler_exit": "error", "scheduler_timeout": "error", "job_failed": "error",
    "all_exited": "info", "cluster_retry": "info", "warning": "warning", "checkpoint": "info",
    "answer": "info", "generation": "info",
}
"""Every kind an event can have, with its severity (model/logevents.py's docstring says what each means)."""

CHECKPOINT_SAVED = "saved checkpoint "
"""What this project's trainer (model/deepseek/trainer.py) logs after each checkpoint it writes.
MindFormers' own wording is not in the reference, so its checkpoints are not counted."""

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
_CANN_CODE = re.compile(r"\b(E[0-9A-Z]\d{4}):")
_WORKER_EXIT = re.compile(
    r"Worker process (\d{1,18}) exit with exception\.(?: Error code: (-?\d{1,18}))?", re.ASCII)
_SCHEDULER_EXIT = re.compile(r"Scheduler process (\d{1,18}) exit with exception", re.ASCII)
_RANK_NAMED = re.compile(r"(?:rank id:\s*|RankID:)(\d{1,9})\b", re.ASCII)
_NODE_IDS = re.compile(  # `Time out nodes are [1, 2]`, `Timed out node list is: [const vector]{1}`
    r"(?:Time out nodes are|node list is:[^\[{]*(?:\[const vector\])?)\s*[\[{]([^\]}]*)[\]}]")
_ONE_NODE = re.compile(r"The node: (\S+) is timed out")
_FIRST_NODE = re.compile(r"worker (\S+) is the first one timed out")

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
ROUTINE_KINDS = frozenset({"workers_killed", "all_exited", "cluster_retry"})
"""Specific kinds that a warning or info level line may carry (the others are errors only)."""


def specific_kind(text: str) -> str | None:
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


def stamped(line: str) -> bool:
    """Whether the line carries its own timestamp. An event whose first line does not took the last
    timestamp before it in its file: its time is inferred, only a lower bound of when it happened."""
    return line_time(line) is not None


def line_pid(line: str) -> int | None:
    """The pid in a MindSpore-prefixed line (`[WARNING] DISTRIBUTED(11278,7f2f...)` -> 11278), else None."""
    found = _PID.match(line)
    return int(found[1]) if found else None


def line_severity(line: str) -> Severity | None:
    """A cheap class for highlighting one line on its own (no context: a traceback's frames are None).

    The follower asks it of every line beside the parser, so the common lines take a short cut: a
    logger line's level decides without looking for telling words (only the routine ones can make
    a warning less), and a loss line with no NaN/Inf in it is info without being parsed."""
    if line.startswith("Traceback (most recent call last)") or _exception_line(line):
        return "error"
    if "step:[" not in line:
        if line.startswith("["):
            return _level_severity(line)
    elif "loss" in line and not line.startswith("[") and not any(w in line for w in _NOT_FINITE_WORDS):
        return "info"
    event = single_event(line, 0, None)
    return event.severity if event is not None else None


_NOT_FINITE_WORDS = ("nan", "NaN", "NAN", "inf", "Inf", "INF ", "terminate")
_ROUTINE_NEEDLES = tuple(needle for kind, needles, _ in _SPECIFIC if kind in ROUTINE_KINDS
                         for needle in needles)


def _level_severity(line: str) -> Severity | None:
    """What _level_line's event would say of the line's severity, without building it."""
    found = _MS_LINE.match(line) or _OTHER_LEVEL.match(line)
    if found is None:
        return None
    severity = _LEVEL_SEVERITY.get(found[1])
    if severity == "error":
        return severity
    text = found[found.re.groups]
    if any(needle in text for needle in _ROUTINE_NEEDLES):
        kind = specific_kind(text)
        if kind in ROUTINE_KINDS:
            return KINDS[kind]
    return severity


def _exception_line(line: str) -> bool:
    head = line.split(":", 1)[0]
    return head.endswith(("Error", "Exception")) and head.replace(".", "").replace("_", "").isalnum()


def _message(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS - 1] + "…"


def make_event(kind: str, line: str, number: int, time: float | None, *, message: str | None = None,
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
                    lines=lines if lines is not None else (cut_line(line),), rank=rank, pid=pid,
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


def single_event(line: str, number: int, time: float | None) -> LogEvent | None:
    """The event one line makes on its own, or None; group starts are the parser's business."""
    if "step:[" in line and (loss := _loss_event(line, number, time)) is not None:
        return loss
    if RESULT_MARK in line or SPEED_MARK in line:
        predicted = _predict_event(line, number, time)
        if predicted is not None:
            return predicted
    if line.startswith("["):
        return _level_line(line, number, time)
    if line.startswith("Start worker process with rank id:"):
        return make_event("worker_started", line, number, time)
    if CHECKPOINT_SAVED in line:
        return make_event("checkpoint", line, number, time, message=line[line.index(CHECKPOINT_SAVED):])
    if " - " in line and (stdout := _MF_STDOUT.search(line)) is not None:
        return _leveled(stdout[2], stdout[3], line, number, time, source=stdout[1], module=None)
    kind = specific_kind(line)
    if kind is not None:
        return make_event(kind, line, number, time)
    if "Warning: " in line and _PY_WARNING.match(line):
        return make_event("warning", line, number, time)
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
    kind = specific_kind(text)
    if severity == "error":
        return make_event(kind or "ms_error", line, number, time, message=text, source=source, module=module)
    if kind in ROUTINE_KINDS:
        return make_event(kind, line, number, time, message=text, source=source, module=module)
    if severity == "warning":
        return make_event("warning", line, number, time, message=text, source=source, module=module)
    return None


def _loss_event(line: str, number: int, time: float | None) -> LogEvent | None:
    record = parse_loss_line(line)
    if record is None:
        return None
    bad = record.loss is not None and not math.isfinite(record.loss)
    total = f"/{record.total_steps}" if record.total_steps else ""
    loss = "N/A" if record.loss is None else f"{record.loss:.6g}"
    event = make_event("nan_loss" if bad else "loss", line, number, time,
                       message=f"step {record.step}{total} loss {loss}")
    return replace(event, loss=record)


def _predict_event(line: str, number: int, time: float | None) -> LogEvent | None:
    """A predict run's answer (kept whole: the line is the answer) or its speed (model/answers.py)."""
    texts = result_texts(line)
    if texts is not None:
        first = " ".join(shown_text(texts[0]).split())
        more = f" (+{len(texts) - 1} more)" if len(texts) > 1 else ""
        return make_event("answer", line, number, time, message=f"{first}{more}", lines=(line,))
    speed = parse_speed(line)
    if speed is None:
        return None
    after = speed.first_token_seconds
    first_token = "" if after is None else f", first after {after:.2f} s"
    return make_event("generation", line, number, time,
                      message=f"{speed.tokens} tokens in {speed.seconds:.2f} s "
                              f"({speed.tokens_per_second:.1f} tokens/s{first_token})")


def cut_line(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " …[cut]"
