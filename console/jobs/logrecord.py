"""Recording a followed job's logs into the store: each line exactly once, the first failure kept.

What is read past the store's position of a file is recorded with the file's new position in one
transaction (`Store.record_log`), so a line is recorded once however many consoles follow and however
often they restart. The position stored is never past the start of an event still being read. The
job's first failure is brought up to date whenever errors are added, or a rank's pid is learnt after
errors were (msrun's "Worker process <pid> exit" then names a rank).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

from console.jobs.failure import first_failure_document
from console.jobs.joblog import FileState, JobEvent
from console.records import LogCursor, LogEventRecord, MetricRecord
from console.store import Store


class LogRecorder:
    """Records one job's followed files; called on its nodes' follower threads."""

    def __init__(self, store: Store, job_id: str) -> None:
        self.store, self.job_id = store, job_id
        self._has_errors = bool(store.job(job_id).first_failure)

    def record(self, states: Iterable[FileState]) -> None:
        """Record what these files (one node's) read since their stored position."""
        changed = False
        for state in states:
            if state.file.role == "exit":
                continue
            learnt_pid = state.pid is not None and (state.recorded is None or state.recorded.pid is None)
            changed |= self._record_file(state) or (learnt_pid and self._has_errors)
        if changed:
            self._errors_added()

    def record_before_restart(self, state: FileState) -> None:
        """The file was truncated or replaced: record what the old one held, up to `state.read`."""
        if state.read.inode is not None and self._record_file(state):
            self._errors_added()

    def _errors_added(self) -> None:
        self._has_errors = True
        self.store.update_first_failure(self.job_id, first_failure_document)

    def _record_file(self, state: FileState) -> bool:
        """Record `state`'s events and metrics past the store's position; True if errors were added."""
        target = self._safe_cursor(state)
        if target is None:
            return False
        before = state.recorded
        replaced = before is not None and before.inode is not None and before.inode != target.inode
        since = 0 if before is None or replaced or state.restarted else before.line
        if not (replaced or state.restarted) and before is not None and target.line <= before.line:
            state.unrecorded = [e for e in state.unrecorded if e.event.line > before.line]
            return False
        fresh = [e for e in state.unrecorded if since < e.event.line <= target.line]
        events = [self._event_record(e) for e in fresh if e.event.kind != "loss"]
        metrics = [m for e in fresh if (m := loss_metric(self.job_id, e)) is not None]
        if self.store.record_log(before, target, events, metrics):
            state.recorded, state.restarted = target, False
            state.unrecorded = [e for e in state.unrecorded if e.event.line > target.line]
            return any(e.severity == "error" for e in events)
        state.recorded = stored = next((c for c in self.store.log_cursors(self.job_id)
                                        if (c.node, c.path) == (target.node, target.path)), None)
        # Another console recorded first. Its position is the old file's if on another inode or past
        # where the new content ends; otherwise it has recorded the new content too.
        state.restarted &= stored is not None and (stored.inode != target.inode
                                                   or stored.offset > target.offset)
        return False

    def _safe_cursor(self, state: FileState) -> LogCursor | None:
        """The file's position to store: never past the start of an event still being read."""
        read = state.read
        pending = state.parser.pending_from if state.parser.pending_from is not None else state.held_from
        line, offset = read.line, read.offset
        if pending is not None:
            start = next((o for n, o in state.recent if n == pending), None)
            if start is None:
                return None
            line, offset = pending - 1, start
        return LogCursor(self.job_id, state.file.node, state.file.path, read.inode, offset, line,
                         state.file.rank, state.pid, state.parser.last_time)

    def _event_record(self, event: JobEvent) -> LogEventRecord:
        e = event.event
        return LogEventRecord(self.job_id, event.file.node, event.file.path, e.line, e.kind, e.severity,
                              e.message, event.rank, event.time, e.lines, e.code, e.source, e.pid)


def loss_metric(job_id: str, event: JobEvent) -> MetricRecord | None:
    """A loss event as the store's loss history keeps it (None: not a loss line of a known rank)."""
    loss = event.event.loss
    if loss is None or event.rank is None:
        return None
    not_finite = loss.loss is not None and not math.isfinite(loss.loss)
    extra = {"lr": loss.lr, "per_step_ms": loss.per_step_ms, "global_norm": loss.global_norm,
             "total_steps": loss.total_steps, "throughput_tflops": loss.throughput_tflops,
             "parts": dict(loss.parts), "loss_text": str(loss.loss) if not_finite else None}
    return MetricRecord(job_id, event.file.node, event.rank, loss.step, event.time or time.time(), loss.loss,
                        {k: v for k, v in extra.items() if v is not None})
