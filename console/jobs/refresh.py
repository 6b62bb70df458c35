"""Reattach: every unfinished job's launches read again from its nodes, and the store brought up to date.

A console that was closed (or another machine with the same store) learns what its jobs did meanwhile:
one round trip per node (remote/jobstate.py) for all the jobs on it, then per job one transaction with
the nodes' new states, the job's state derived from them, and an event for each change. A node that
cannot be asked becomes `unreachable` with its last known state kept beside it, and is reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from console.records import EventRecord, JobRecord, JobState, LaunchRecord
from console.store import Store
from remote.inventory import Cluster, InventoryError, NodeSpec, load_cluster
from remote.jobstate import ENDED, NodeAnswer, NodeJobState, NodeQueryFailure, query_nodes
from remote.pool import NodePool

# Jobs the launcher still owns: it records them before their nodes are set up, and a refresh then
# would take directories not yet made for runs that vanished.
LAUNCHER_OWNED: frozenset[JobState] = frozenset({"planned", "launching"})
LAUNCH_LEASE = 600.0
"""Seconds a launcher owns its job's record; after that (the console was killed mid-launch) refresh
adopts the job and reads its nodes like any other."""
DEFAULT_TIMEOUT = 20.0


@dataclass(frozen=True)
class JobRefresh:
    """What one refresh learned about one job."""

    job: JobRecord
    """The job as stored after the refresh."""
    launches: tuple[LaunchRecord, ...]
    failures: tuple[NodeQueryFailure, ...]
    """Nodes that could not be asked: their launches are now unreachable."""
    events: tuple[EventRecord, ...]
    """The changes it recorded."""


# --- the job's state from its nodes' -----------------------------------------------------------


def job_outcome(launches: Sequence[LaunchRecord], current: JobState,
                current_code: int | None = None) -> tuple[JobState, int | None]:
    """The job's state and exit code from its nodes' (an unreachable node counts as its last known).

    Running while any node runs; once all ended: failed with the worst code if a node exited
    non-zero on its own, else lost if a run vanished, else stopped if the console stopped it, else
    exited 0.
    """
    states = [launch.effective_state for launch in launches]
    if not states:
        return current, current_code
    if any(state not in ENDED for state in states):
        if current == "stopping":
            return "stopping", None
        return ("running" if "running" in states else "starting"), None
    codes = [launch.exit_code or 0 for launch in launches if launch.effective_state == "exited"]
    if any(codes):
        return "failed", max(codes)
    if any(state in ("lost", "missing") for state in states):
        return "lost", None
    if "stopped" in states:
        return "stopped", None
    return "exited", 0


def updated_launch(launch: LaunchRecord, answer: NodeAnswer | None, *, at: float) -> LaunchRecord:
    """The launch after its node answered (or did not)."""
    if isinstance(answer, NodeQueryFailure) or answer is None:
        reason = answer.reason if answer else f"{launch.node}: not asked"
        return replace(launch, state="unreachable", last_known=launch.effective_state, reason=reason,
                       updated_at=at)
    seen = answer.state_of(launch.job_dir)
    if seen is None:
        return replace(launch, state="unreachable", last_known=launch.effective_state, updated_at=at,
                       reason=f"{launch.node}: the answer had no report for {launch.job_dir!r}")
    return _seen(launch, seen, at)


def _seen(launch: LaunchRecord, seen: NodeJobState, at: float) -> LaunchRecord:
    return replace(launch, state=seen.state, last_known=None, updated_at=at, reason="; ".join(seen.notes),
                   pid=seen.pid if seen.pid is not None else launch.pid, exit_code=seen.exit_code)


def change_events(before: LaunchRecord, after: LaunchRecord, *, at: float) -> list[EventRecord]:
    """An event when a node's state changes, when it goes out of reach, and when it comes back."""
    if after.state == "unreachable":
        if before.state == "unreachable":
            return []
        return [EventRecord(after.job_id, "unreachable", f"cannot be asked (last known: "
                            f"{after.last_known}): {after.reason}", at, node=after.node)]
    previous = before.effective_state
    if previous == after.state and before.exit_code == after.exit_code and before.state != "unreachable":
        return []
    code = f" (exit code {after.exit_code})" if after.exit_code is not None else ""
    again = " (reachable again)" if before.state == "unreachable" else ""
    return [EventRecord(after.job_id, "node-state", f"{previous} -> {after.state}{code}{again}", at,
                        node=after.node)]


# --- asking the nodes --------------------------------------------------------------------------


def refresh_jobs(store: Store, *, job_ids: Sequence[str] | None = None, timeout: float = DEFAULT_TIMEOUT,
                 cluster: Cluster | None = None, now: Callable[[], float] = time.time) -> list[JobRefresh]:
    """Refresh the given jobs, or every job in the store; only those unfinished and no longer
    owned by the launcher are asked about (a finished job's record is final).

    Each job is asked through its own cluster file; `cluster` stands in for a job whose file is
    that cluster's, or cannot be read but whose cluster has the same name.
    """
    jobs = [store.job(j) for j in job_ids] if job_ids is not None else store.jobs(unfinished_only=True)
    moment = now()
    jobs = [j for j in jobs if not j.finished
            and (j.state not in LAUNCHER_OWNED or moment - j.updated_at > LAUNCH_LEASE)]
    by_file: dict[str, list[JobRecord]] = {}
    for job in jobs:
        by_file.setdefault(job.cluster_file, []).append(job)
    refreshed: list[JobRefresh] = []
    for path, group in by_file.items():
        found = job_cluster(path, group[0].cluster_name, cluster)
        if isinstance(found, str):
            refreshed += [_record(store, job, {}, found, now()) for job in group]
            continue
        with NodePool(found) as pool:
            refreshed += refresh_on(store, pool, group, timeout=timeout, now=now)
    return refreshed


def job_cluster(path: str, name: str, given: Cluster | None) -> Cluster | str:
    """A job's cluster (its cluster file, or `given` when it is that cluster), or why it cannot be had."""
    if given is not None and given.source == path:
        return given
    try:
        return load_cluster(Path(path))
    except (InventoryError, OSError) as exc:
        if given is not None and given.name == name:
            return given
        problems = "; ".join(str(p) for p in getattr(exc, "problems", [exc]))
        return f"cluster file {path} cannot be read: {problems}"


def refresh_on(store: Store, pool: NodePool, jobs: Sequence[JobRecord], *,
               timeout: float = DEFAULT_TIMEOUT, now: Callable[[], float] = time.time) -> list[JobRefresh]:
    """Refresh jobs of one cluster over an open pool: one round trip per node for all of them."""
    launches = {job.id: store.launches(job.id) for job in jobs}
    wanted: dict[NodeSpec, list[str]] = {}
    strangers: dict[str, NodeAnswer] = {}
    for launch in (launch for group in launches.values() for launch in group):
        try:
            node = pool.cluster.node(launch.node)
        except InventoryError:
            strangers[launch.node] = NodeQueryFailure(
                launch.node, "", f"{launch.node}: no longer in cluster file {pool.cluster.source}")
            continue
        dirs = wanted.setdefault(node, [])
        if launch.job_dir not in dirs:
            dirs.append(launch.job_dir)
    answers = {**query_nodes(pool, wanted, timeout=timeout), **strangers}
    at = now()
    return [_record(store, job, answers, None, at) for job in jobs]


def _record(store: Store, job: JobRecord, answers: dict[str, NodeAnswer], unasked: str | None,
            at: float) -> JobRefresh:
    """Write one job's refresh as one transaction."""
    after: list[LaunchRecord] = []
    events: list[EventRecord] = []
    failures: dict[str, NodeQueryFailure] = {}
    for launch in store.launches(job.id):
        answer = answers.get(launch.node) if unasked is None else NodeQueryFailure(launch.node, "", unasked)
        if isinstance(answer, NodeQueryFailure):
            failures.setdefault(answer.node, answer)
        new = updated_launch(launch, answer, at=at)
        after.append(new)
        events += change_events(launch, new, at=at)
    state, code = job_outcome(after, job.state, job.exit_code)
    if (state, code) != (job.state, job.exit_code):
        shown = f" (exit code {code})" if code is not None else ""
        events.append(EventRecord(job.id, "state", f"{job.state} -> {state}{shown}", at))
    store.record_refresh(job.id, after, state, code, events, at=at)
    return JobRefresh(store.job(job.id), tuple(after), tuple(failures.values()), tuple(events))
