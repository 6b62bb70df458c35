"""Who failed first: the earliest error across every rank and node of a job.

Pure. Times are on the console's clock (each node's timestamps corrected by its measured offset when
recorded), so a node whose clock runs minutes ahead does not win by its clock alone. Some errors are
consequences of another's: msrun killing the other workers, msrun's own closing RuntimeError and
traceback, a scheduler reporting nodes timed out; they name a failure only when nothing else does.
Equal times are settled by msrun's own order (the order the events were recorded), then by rank.

An event's time is exact when its first line carries a timestamp; otherwise it was inferred from the
last timestamp before it in its file (a Python traceback prints none), which only says the event came
at or after it, perhaps much later. The rule: an inferred time counts as INFERRED_SLACK seconds later
than it says, and at the same moment an exact time comes first. So an exact error less than
INFERRED_SLACK after an inferred one is taken as first; one further away is not (a rank that raised
before its peers' collectives time out is still named, minutes before their errors). An error with no
time at all comes last.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from console.records import LogEventRecord
from model.logevents import LAUNCHER_SOURCE, stamped

CONSEQUENCES = frozenset({"job_failed", "workers_killed", "scheduler_exit", "scheduler_timeout"})
"""What msrun and the scheduler say after a worker failed: never the first failure if a cause is known
(msrun's own traceback too: its `source` is LAUNCHER_SOURCE)."""
SAME_MOMENT = 0.001
"""Seconds within which two errors count as simultaneous (MindSpore prints microseconds)."""
INFERRED_SLACK = 1.0
"""Seconds an inferred time counts later than it says (see the module's docstring)."""


@dataclass(frozen=True)
class FirstFailure:
    node: str
    rank: int | None
    time: float | None
    kind: str
    message: str
    file: str
    line: int
    time_inferred: bool = False
    """`time` is the last timestamp before the event in its file, not its own."""

    def as_json(self) -> dict[str, Any]:
        return {"node": self.node, "rank": self.rank, "time": self.time, "kind": self.kind,
                "message": self.message, "file": self.file, "line": self.line,
                "time_inferred": self.time_inferred}

    def describe(self) -> str:
        rank = f" rank {self.rank}" if self.rank is not None else ""
        return f"{self.node}{rank}: {self.kind}: {self.message} ({posixpath.basename(self.file)}:{self.line})"


def first_failure(events: Iterable[LogEventRecord],
                  ranks_by_pid: Mapping[tuple[str, int], int] | None = None) -> FirstFailure | None:
    """The first error among `events` (in recorded order), or None if there is none. `ranks_by_pid`:
    (node, pid) -> rank, for msrun lines that name a worker by its pid only."""
    known = ranks_by_pid or {}
    errors = [e if e.rank is not None or e.pid is None else replace(e, rank=known.get((e.node, e.pid)))
              for e in events if e.severity == "error"]
    causes = [e for e in errors if e.kind not in CONSEQUENCES and e.source != LAUNCHER_SOURCE] or errors
    if not causes:
        return None
    order = {id(e): index for index, e in enumerate(causes)}

    def key(event: LogEventRecord) -> tuple[bool, float, bool, int, int]:
        inferred = inferred_time(event)
        moment = (event.time or 0.0) + (INFERRED_SLACK if inferred else 0.0)
        return (event.time is None, round(moment / SAME_MOMENT), inferred, order[id(event)],
                event.rank if event.rank is not None else 1 << 30)

    first = min(causes, key=key)
    return FirstFailure(first.node, first.rank, first.time, first.kind, first.message, first.path, first.line,
                        inferred_time(first))


def inferred_time(event: LogEventRecord) -> bool:
    """Whether the event's time is another line's: its first line carries no timestamp of its own."""
    return event.time is not None and bool(event.lines) and not stamped(event.lines[0])


def first_failure_document(events: Iterable[LogEventRecord],
                           ranks_by_pid: Mapping[tuple[str, int], int]) -> dict[str, Any] | None:
    """first_failure as the store keeps it (for Store.update_first_failure)."""
    found = first_failure(events, ranks_by_pid)
    return found.as_json() if found is not None else None
