"""Reattach: every unfinished job's launches read again from its nodes, and the store brought up to date.

A console that was closed (or another machine with the same store) learns what its jobs did meanwhile:
one round trip per node (remote/jobstate.py) for all the jobs on it, then per job one transaction with
the nodes' new states, the job's state derived from them, and an event for each change. A node that
cannot be asked becomes `unreachable` with its last known state kept beside it, and is reported.

That transaction is a compare-and-set on the job's version as read before the nodes were asked: a stop
(or a launch) that wrote meanwhile wins, and what the nodes said before it is dropped, never written
over it. A job whose launching or stopping console is gone (console/jobs/owner.py) is adopted: a launch
that started every node is finished (the job runs), one that started some is undone (those nodes are
stopped: a launch is all or nothing), one that started none failed (the directories it staged are
removed, once `failed` is written: never under a launcher only thought gone that wrote meanwhile); an
interrupted stop shows the job as its nodes are, for `stop` to be run again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from console.jobs.owner import owner_alive, parse_owner
from console.jobs.service import stop_nodes, stop_text, unstage_nodes
from console.records import EventRecord, JobRecord, JobState, LaunchRecord
from console.store import RecordChanged, Store
from remote.inventory import Cluster, InventoryError, NodeSpec, load_cluster
from remote.jobstate import ENDED, NodeAnswer, NodeJobState, NodeQueryFailure, query_nodes
from remote.pool import NodePool

# Jobs the launcher still owns: it records them before their nodes are set up, and a refresh then
# would take directories not yet made for runs that vanished.
LAUNCHER_OWNED: frozenset[JobState] = frozenset({"planned", "launching"})
LAUNCH_LEASE = 600.0
"""Seconds a launcher on another host (whose process cannot be looked at) owns its job's record, plus a
serve job's ready_timeout; after that refresh adopts the job. A launcher on this host is adopted from
as soon as its process is gone, and never while it lives."""
STOP_LEASE = 600.0
"""The same for a stop run on another host: after that, the job is shown as its nodes are."""
UNDO_GRACE = 10
"""Seconds the ranks of a half-started launch get after SIGTERM when an adopting console undoes it."""
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
    written: bool = True
    """False: another console wrote the job after it was read, and this refresh wrote nothing."""


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
    jobs = [j for j in jobs if not j.finished and not launcher_owns(j, moment)]
    by_file: dict[str, list[JobRecord]] = {}
    for job in jobs:
        by_file.setdefault(job.cluster_file, []).append(job)
    refreshed: list[JobRefresh] = []
    for path, group in by_file.items():
        found = job_cluster(path, group[0].cluster_name, cluster)
        if isinstance(found, str):
            refreshed += [record_answers(store, job, {}, found, at=now()) for job in group]
            continue
        with NodePool(found) as pool:
            refreshed += refresh_on(store, pool, group, timeout=timeout, now=now)
    return refreshed


def launcher_owns(job: JobRecord, moment: float) -> bool:
    """Whether the job is still the launcher's alone: it is being launched by a console that lives (on
    another host: within the lease). A `planned` job is nobody's to refresh until its lease is over."""
    if job.state not in LAUNCHER_OWNED:
        return False
    alive = owner_alive(parse_owner(job.owner)) if job.state == "launching" else None
    if alive is not None:
        return alive
    serve = job.plan.get("serve") if isinstance(job.plan.get("serve"), dict) else None
    ready = float(serve.get("ready_timeout", 0)) if serve else 0.0
    return moment - job.updated_at <= LAUNCH_LEASE + ready


def stopper_gone(job: JobRecord, moment: float) -> bool:
    """A job left `stopping` by a stop that no longer runs (its console killed, or a stop that failed)."""
    if job.state != "stopping":
        return False
    alive = owner_alive(parse_owner(job.owner))
    return alive is False or (alive is None and moment - job.updated_at > STOP_LEASE)


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
    """Refresh jobs of one cluster over an open pool: one round trip per node for all of them. A job
    finished, or still its launcher's (launcher_owns), is left as it is."""
    moment = now()
    jobs = [job for job in jobs if not job.finished and not launcher_owns(job, moment)]
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
    stopped = _stop_half_launches(pool, jobs, launches, answers, timeout=timeout)
    if stopped:  # those nodes asked again, about every job on them
        answers.update(query_nodes(pool, {node: wanted[node] for node in wanted if node.name in stopped},
                                   timeout=timeout))
    refreshed = [record_answers(store, job, answers, None, at=at, before=launches[job.id]) for job in jobs]
    return [_unstage_unstarted(store, pool, job, done, timeout=timeout, now=now)
            for job, done in zip(jobs, refreshed, strict=True)]


def record_answers(store: Store, job: JobRecord, answers: dict[str, NodeAnswer], unasked: str | None, *,
            at: float, before: Sequence[LaunchRecord] | None = None) -> JobRefresh:
    """Write one job's refresh as one transaction, if the job is still as it was read (`job`, and its
    launches `before`): else what another console wrote meanwhile stands, and nothing is written."""
    after: list[LaunchRecord] = []
    events: list[EventRecord] = []
    failures: dict[str, NodeQueryFailure] = {}
    for launch in store.launches(job.id) if before is None else before:
        answer = answers.get(launch.node) if unasked is None else NodeQueryFailure(launch.node, "", unasked)
        if isinstance(answer, NodeQueryFailure):
            failures.setdefault(answer.node, answer)
        new = updated_launch(launch, answer, at=at)
        after.append(new)
        events += change_events(launch, new, at=at)
    state, code, owner, said = _job_after(job, after, at)
    events += said
    if (state, code) != (job.state, job.exit_code):
        shown = f" (exit code {code})" if code is not None else ""
        events.append(EventRecord(job.id, "state", f"{job.state} -> {state}{shown}", at))
    try:
        store.record_refresh(job.id, after, state, code, events, at=at, expected=job.version, owner=owner)
    except RecordChanged as changed:
        return JobRefresh(changed.job, tuple(store.launches(job.id)), tuple(failures.values()), (),
                          written=False)
    return JobRefresh(store.job(job.id), tuple(after), tuple(failures.values()), tuple(events))


def _job_after(job: JobRecord, after: Sequence[LaunchRecord], at: float
               ) -> tuple[JobState, int | None, str | None, list[EventRecord]]:
    """The job's state, exit code and owner after a refresh, and what adopting it says."""
    if job.state == "launching":  # refreshed at all: its launcher is gone (launcher_owns)
        return _adopted_launch(job, after, at)
    if stopper_gone(job, at):
        owner = parse_owner(job.owner)
        who = owner.text() if owner is not None else "its console"
        state, code = job_outcome(after, "running", job.exit_code)
        if state in ("running", "starting"):
            note = (f"the stop did not finish ({who} is gone) and processes of the job still run: "
                    f"`ascend-console stop {job.id}` stops them")
            return state, code, None, [EventRecord(job.id, "stop-interrupted", note, at)]
        return state, code, None, []
    if job.state == "stopping":  # its stop still runs: only the stop, once it has verified, ends the job
        return job.state, job.exit_code, job.owner, []
    state, code = job_outcome(after, job.state, job.exit_code)
    return state, code, None, []


def _adopted_launch(job: JobRecord, after: Sequence[LaunchRecord], at: float
                    ) -> tuple[JobState, int | None, str | None, list[EventRecord]]:
    owner = parse_owner(job.owner)
    who = owner.text() if owner is not None else "the console launching it"
    started = [lr.node for lr in after if _started(lr)]
    if started and len(started) == len(after):
        state, code = job_outcome(after, "starting", job.exit_code)
        note = f"adopted: {who} is gone; every node had started its run"
        return state, code, None, [EventRecord(job.id, "adopted", note, at)]
    if any(lr.state == "unreachable" for lr in after):  # cannot tell yet: asked again next time
        return job.state, job.exit_code, job.owner, []
    if any(lr.state not in ENDED for lr in after if _started(lr)):  # the undo did not take: again next time
        return job.state, job.exit_code, job.owner, []
    if started:
        note = (f"the launch was interrupted ({who} is gone) with {', '.join(started)} started and "
                f"{', '.join(lr.node for lr in after if not _started(lr))} not: all or nothing, so "
                f"{', '.join(started)} stopped")
    else:
        note = f"the launch was interrupted ({who} is gone) before any node started: nothing runs"
    return "failed", None, None, [EventRecord(job.id, "launch-failed", note, at)]


def _started(launch: LaunchRecord) -> bool:
    """The node's run began (it has a pid, or has ended): a launch that reached it started it."""
    return launch.state not in ("missing", "starting", "unreachable")


def _stop_half_launches(pool: NodePool, jobs: Sequence[JobRecord], launches: dict[str, list[LaunchRecord]],
                        answers: dict[str, NodeAnswer], *, timeout: float) -> set[str]:
    """Stop the started nodes of every adopted launch that started some of its nodes but not all, as its
    launcher would have, had it lived (before the job is written: what the nodes then say is recorded).
    The nodes stopped."""
    changed: set[str] = set()
    for job in jobs:
        if job.state != "launching":
            continue
        after = [updated_launch(lr, answers.get(lr.node), at=0.0) for lr in launches[job.id]]
        if all(_started(lr) for lr in after) or any(lr.state == "unreachable" for lr in after):
            continue
        begun = [lr for lr in after if _started(lr) and lr.state not in ENDED]
        if begun:
            stop_nodes(job.id, [(lr.node, lr.job_dir) for lr in begun], pool, grace=UNDO_GRACE,
                       timeout=timeout)
            changed.update(lr.node for lr in begun)
    return changed


def _unstage_unstarted(store: Store, pool: NodePool, job: JobRecord, refreshed: JobRefresh, *,
                       timeout: float, now: Callable[[], float]) -> JobRefresh:
    """An adopted launch that started no node, once this refresh wrote it failed: the job directories it
    staged removed, as its launcher does when staging fails, each node's outcome an `unstaged` event.
    Only after that compare-and-set: a launcher only thought gone that wrote since keeps its directories
    (the refresh writes nothing), and one that writes after finds the job changed. A node whose directory
    was not removed (a start began there in the moment before its pid was written, or the node did not
    answer) is stopped, so that no run goes on under a failed job."""
    if not (refreshed.written and job.state == "launching" and refreshed.job.state == "failed"):
        return refreshed
    if any(_started(lr) for lr in refreshed.launches):
        return refreshed
    staged = {lr.node: lr.job_dir for lr in refreshed.launches if lr.state == "starting"}
    if not staged:
        return refreshed
    outcomes = dict(unstage_nodes(job.id, list(staged.items()), pool, timeout=timeout))
    events = [EventRecord(job.id, "unstaged", reason or f"removed {staged[node]} (the launch was "
                          "interrupted before any node started)", now(), node=node)
              for node, reason in outcomes.items()]
    kept = [(node, staged[node]) for node, reason in outcomes.items() if reason is not None]
    if kept:
        events += [EventRecord(job.id, "stopped", stop_text(report), now(), node=report.node)
                   for report in stop_nodes(job.id, kept, pool, grace=UNDO_GRACE, timeout=timeout)]
    store.add_events(events)
    return replace(refreshed, events=(*refreshed.events, *events))
