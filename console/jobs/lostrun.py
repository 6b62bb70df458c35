"""A run that vanished or failed fails its job at once: a node whose run ended without an exit code (the
node rebooted, or every process of the job there was killed), or with a non-zero one (a rank killed, a
traceback) while other nodes still run, leaves msrun's other nodes waiting out `cluster_time_out` or
an HCCL timeout for a peer that never comes back, or blocked in a collective for ever. The console says
so instead: the job is `failed`, every node is stopped and verified, and who failed first is named: a
vanished node is recorded as an error at its last sign of life (so it is named, unless another rank
failed before), a failed one by its own logs (msrun's worker exit, the rank's traceback).

An error recorded for a vanished run is a log event of kind LOST_KIND on the node's `pid` file, written
once through the store's cursor (a second console finding the same loss records nothing twice).
"""

from __future__ import annotations

import contextlib
import posixpath
import time
from collections.abc import Sequence
from dataclasses import dataclass

from console.jobs.failure import first_failure_document
from console.jobs.follow import catch_up
from console.jobs.owner import this_process
from console.jobs.refresh import job_cluster
from console.jobs.service import after_stop, stop_nodes, stop_text
from console.records import EventRecord, JobState, LaunchRecord, LogCursor, LogEventRecord
from console.store import RecordChanged, Store
from remote.inventory import Cluster
from remote.jobstate import ENDED
from remote.launch import StopReport
from remote.pool import NodePool

LOST_KIND = "run_lost"
STOP_GRACE = 10
"""Seconds the other nodes' ranks get to save and exit (SIGTERM) before SIGKILL."""
ACTED_ON: frozenset[JobState] = frozenset({"starting", "running", "lost"})
"""Job states in which a vanished run fails the job: not while a console stops it, nor once it ended."""


@dataclass(frozen=True)
class LostRuns:
    """What became of one job whose runs vanished or failed on some nodes."""

    job_id: str
    lost: tuple[str, ...]
    """The nodes whose run vanished."""
    stopped: tuple[StopReport, ...]
    """The stop of every node of the job, verified (or saying what was not)."""
    failed: tuple[str, ...] = ()
    """The nodes whose run exited non-zero while others ran."""

    def said(self) -> str:
        """What happened, in a line."""
        parts = ([f"the run on {', '.join(self.lost)} is gone without an exit code"] if self.lost else [])
        parts += [f"the run on {', '.join(self.failed)} exited non-zero"] if self.failed else []
        return "; ".join(parts)


def fail_lost_runs(store: Store, cluster: Cluster, job_ids: Sequence[str], *,
                   timeout: float) -> list[LostRuns]:
    """For every job whose run vanished or failed on a node (as the store last read it): fail it,
    record the loss, stop every node. A job whose cluster file cannot be read is left as it is."""
    found: list[LostRuns] = []
    for job_id in job_ids:
        job = store.job(job_id)
        if job.finished:  # ended by itself meanwhile (the others timed out): a lost run is still named
            _name_losses(store, job_id, store.launches(job_id))
        if not _broken(job.state, store.launches(job_id)):
            continue
        nodes = job_cluster(job.cluster_file, job.cluster_name, cluster)
        if isinstance(nodes, str):
            continue  # the refresh has said why its nodes could not be asked
        with NodePool(nodes) as pool:
            outcome = fail_if_lost(store, pool, job_id, timeout=timeout)
        if outcome is not None:
            found.append(outcome)
    return found


def fail_if_lost(store: Store, pool: NodePool, job_id: str, *, timeout: float,
                 read_logs: bool = True) -> LostRuns | None:
    """If a node's run of the job vanished, or failed while others run (as the store last read them):
    record it, stop every node, and mark the job failed. `read_logs`: bring the store up to date with
    the logs first (the last sign of life, the failure's own lines); a caller already following the
    job says False."""
    job = store.job(job_id)
    launches = store.launches(job_id)
    if not _broken(job.state, launches):
        return None
    if read_logs:
        catch_up(store, pool, job, timeout=timeout)
    lost = [launch for launch in launches if launch.state == "lost"]
    _name_losses(store, job_id, launches)
    store.update_first_failure(job_id, first_failure_document)
    try:  # claimed as a stop is: one console acts on it, and none writes over a stop begun meanwhile
        claimed = store.set_job_state(job_id, "stopping", at=time.time(), expected=job.version,
                                      owner=this_process("stop").dump())
    except RecordChanged:
        return None
    reports = stop_nodes(job_id, [(launch.node, launch.job_dir) for launch in launches], pool,
                         grace=STOP_GRACE, timeout=timeout)
    _record_stop(store, claimed.version, job.state, launches, reports)
    return LostRuns(job_id, tuple(launch.node for launch in lost), reports,
                    tuple(launch.node for launch in launches if _failed(launch)))


def _name_losses(store: Store, job_id: str, launches: Sequence[LaunchRecord]) -> None:
    """Record each lost run not yet recorded, and who failed first again: a node that rebooted overnight
    while the others later failed on their own (a collective's timeout) is still the one named first."""
    said = {event.node for event in store.log_events(job_id, severity="error") if event.kind == LOST_KIND}
    unsaid = [launch for launch in launches if launch.state == "lost" and launch.node not in said]
    for launch in unsaid:
        _record_loss(store, launch, last_sign_of_life(store, job_id, launch.node))
    if unsaid:
        store.update_first_failure(job_id, first_failure_document)


def _broken(state: JobState, launches: Sequence[LaunchRecord]) -> bool:
    if state not in ACTED_ON:
        return False
    running = any(launch.effective_state not in ENDED for launch in launches)
    return any(launch.state == "lost" for launch in launches) or (
        running and any(_failed(launch) for launch in launches))


def _failed(launch: LaunchRecord) -> bool:
    return launch.state == "exited" and bool(launch.exit_code)


def last_sign_of_life(store: Store, job_id: str, node: str) -> float | None:
    """The newest time the store holds from the node's logs (console clock), or None."""
    times = [m.time for m in store.metrics(job_id, node=node)]
    times += [e.time for e in store.log_events(job_id) if e.node == node and e.time is not None]
    return max(times, default=None)


def loss_message(launch: LaunchRecord) -> str:
    pid = f" (pid {launch.pid})" if launch.pid is not None else ""
    return (f"its run{pid} is gone without an exit code: every process of the job on {launch.node} ended "
            "at once (the node rebooted, or they were killed)")


def _record_loss(store: Store, launch: LaunchRecord, at: float | None) -> None:
    path = posixpath.join(launch.job_dir, "pid")
    message = loss_message(launch)
    event = LogEventRecord(launch.job_id, launch.node, path, 1, LOST_KIND, "error", message, time=at,
                           lines=(message,))  # the time is its last sign of life: at or after it
    store.record_log(None, LogCursor(launch.job_id, launch.node, path, offset=0, line=1), [event], [])


def _record_stop(store: Store, version: int, was: JobState, launches: Sequence[LaunchRecord],
                 reports: Sequence[StopReport]) -> None:
    """The loss, the stop and the job's end as one write. A stop that could not verify every node leaves
    the job as it was (not finished), so that the next refresh finds it broken and stops it again."""
    job_id, now = launches[0].job_id, time.time()
    by_node = {report.node: report for report in reports}
    lost = [launch.node for launch in launches if launch.state == "lost"]
    failed = [launch for launch in launches if _failed(launch)]
    events = [EventRecord(job_id, "lost", f"{loss_message(launch)}; the job fails and every node is stopped",
                          now, node=launch.node) for launch in launches if launch.state == "lost"]
    events += [EventRecord(job_id, "failed", f"its run exited {launch.exit_code} while other nodes ran; the "
                           "job fails and every node is stopped", now, node=launch.node) for launch in failed]
    events += [EventRecord(job_id, "stopped" if r.ok else "stop-failed", stop_text(r), now, node=r.node)
               for r in reports]
    code = max((launch.exit_code or 0 for launch in failed), default=None)
    why = ", ".join([*(f"run lost on {node}" for node in lost),
                     *(f"{launch.node} exited {launch.exit_code}" for launch in failed)])
    verified = all(report.ok for report in reports)
    state: JobState = "failed" if verified else was
    if verified:
        events.append(EventRecord(job_id, "state", f"{was} -> failed ({why})", now))
    with contextlib.suppress(RecordChanged):  # another console wrote meanwhile (a user's stop): it stands
        store.record_refresh(job_id, [_after(launch, by_node.get(launch.node), now) for launch in launches],
                             state, code if verified else None, events, at=now, expected=version)


def _after(launch: LaunchRecord, report: StopReport | None, now: float) -> LaunchRecord:
    """A node the stop ended is `stopped`; one that had ended already (the lost one too) keeps its state."""
    if report is None or launch.effective_state in ENDED:
        return launch
    return after_stop(launch, report, now)
