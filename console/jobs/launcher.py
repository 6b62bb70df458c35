"""The launch sequence, the one place it lives (the CLI's `launch` and the TUI both call `run_launch`):
preflight → record → stage → start → settle (→ ready, for a serve job), all or nothing.

A no-go preflight touches nothing. From the record on, every state change is written to the store as it
happens, so a console killed mid-launch leaves a record that `jobs` can reattach to: the record names
this process as its owner, and the next console that finds it gone finishes or undoes the launch
(console/jobs/refresh.py). A node that fails to stage, start or settle, or an interruption (Ctrl-C)
once every node staged, fails the whole launch and stops every node; a failure at staging removes the
job directories the other nodes staged, so that nothing is left of the job on any node. An interruption
during staging leaves the record as it is, owned by this process: the next console finds it gone and
undoes the launch, staged directories included. Every write after the record is a compare-and-set on
the version the launcher last wrote: when another console stopped the job meanwhile, its stop stands,
and the launcher stops what it started and says so. Each step reports typed `LaunchProgress` events,
per node where there are nodes, to a callback called on the thread that runs `run_launch`.

A serve job is launched once its server serves: its log holds the readiness line and, asked on the node,
`/health` then `/v1/models` answer 200, within the endpoint's deadline. A server that exits first, or
is not ready in time, fails the launch with the end of its log.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from console.jobs.logfiles import LAUNCHER_LOG
from console.jobs.owner import this_process
from console.jobs.plan import JobPlan, NodeLaunch, msrun_count_text, process_marker
from console.jobs.preflight import Preflight, Verdict, preflight
from console.jobs.request import PlannedJob
from console.jobs.service import failure_reason, job_files, stop_nodes, stop_text, unstage_nodes
from console.records import EventRecord, JobRecord, JobState, LaunchRecord
from console.store import RecordChanged, Store, StoreError
from remote import launch
from remote.fanout import map_nodes
from remote.inventory import Cluster
from remote.jobstate import NodeAnswer, NodeJobStates, query_nodes
from remote.pool import NodePool
from remote.readiness import probe_server
from remote.transport import RunResult

LaunchStage = Literal["preflight", "record", "stage", "start", "settle", "ready", "stop"]
"""The steps in order (`ready` for a serve job only); `stop` only follows a failure, undoing the nodes
already staged."""
STOP_GRACE = 10
READY_POLL = 2.0
"""Seconds between two looks at a server that is not ready yet."""


@dataclass(frozen=True)
class LaunchProgress:
    """One step begun (`node` None) or one node through it."""

    stage: LaunchStage
    message: str
    node: str | None = None
    """None: the step as a whole (it begins, or the job-wide preflight checks); else this node's result."""
    ok: bool = True
    """False: this node failed the step (or, node None, the preflight said no-go)."""
    verdicts: tuple[Verdict, ...] = ()
    """preflight only: the checks about this node (node None: those about the job as a whole)."""


ProgressCallback = Callable[[LaunchProgress], None]


@dataclass(frozen=True)
class LaunchFailure:
    node: str | None
    """The node that failed first; None when the job as a whole did (preflight, record)."""
    stage: LaunchStage
    reason: str

    def describe(self) -> str:
        """`launch failed at settle: node1: its run exited with code 1 at once`."""
        return f"launch failed at {self.stage}: {f'{self.node}: ' if self.node else ''}{self.reason}"


@dataclass(frozen=True)
class LaunchResult:
    planned: PlannedJob
    preflight: Preflight
    failure: LaunchFailure | None = None
    stopped: tuple[launch.StopReport, ...] = ()
    """When the launch failed after staging: the nodes then stopped."""

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def recorded(self) -> bool:
        """The store holds the job (running, or failed on the nodes): `jobs` and `status` know it."""
        return self.failure is None or self.failure.stage not in ("preflight", "record")


def _ignore(_: LaunchProgress) -> None:
    pass


@dataclass
class LaunchHold:
    """The launcher's hold on its job's record: the version it last wrote, which every write it makes
    must still find (else RecordChanged: another console, a stop, wrote since)."""

    store: Store
    job_id: str
    version: int = 1
    owner: str | None = field(default_factory=lambda: this_process("launch").dump())

    def state(self, state: JobState, *, events: Sequence[EventRecord] = (), keep: bool = False) -> None:
        """The job's new state; `keep`: the launch goes on (this process still owns the job)."""
        written = self.store.set_job_state(self.job_id, state, at=time.time(), events=events,
                                           expected=self.version, owner=self.owner if keep else None)
        self.version = written.version

    def launches(self, launches: Sequence[LaunchRecord]) -> None:
        if not launches:  # no node started: nothing to write (and no job for the store to check)
            return
        self.version = self.store.put_launches(launches, expected=self.version) or self.version

    def note(self, events: Sequence[EventRecord]) -> None:
        """Events only: they never overwrite anything."""
        self.store.add_events(events)


def run_launch(planned: PlannedJob, pool: NodePool, store: Store, *, progress: ProgressCallback = _ignore,
               timeout: float = 60.0) -> LaunchResult:
    """Preflight, record, stage, start and settle `planned`, all or nothing; `timeout` bounds each
    command on a node. Never raises for a node's failure or a store refusing the record: the result
    says which step failed, where and why. An interruption after staging stops the nodes, then propagates
    (during staging it propagates at once: see the module's docstring)."""
    verdict = _preflight(planned, pool, progress)
    if not verdict.go:
        return LaunchResult(planned, verdict, LaunchFailure(None, "preflight", _no_go(verdict)))
    plan = planned.plan
    hold = LaunchHold(store, plan.job_id)
    try:
        record_plan(store, plan, pool.cluster, template=str(planned.request.template), at=time.time(),
                    owner=hold.owner)
    except StoreError as exc:  # the same job id twice in one second
        progress(LaunchProgress("record", str(exc), ok=False))
        return LaunchResult(planned, verdict, LaunchFailure(None, "record", str(exc)))
    progress(LaunchProgress("record", f"recorded as {plan.job_id}"))
    failure, stopped = _launch(plan, pool, hold, settle=planned.request.settle, timeout=timeout,
                               progress=progress)
    return LaunchResult(planned, verdict, failure, stopped)


def _preflight(planned: PlannedJob, pool: NodePool, progress: ProgressCallback) -> Preflight:
    progress(LaunchProgress("preflight", f"checking {len(planned.nodes)} node(s)"))
    verdict = preflight(planned, pool)
    for event in preflight_events(verdict, [node.name for node in planned.nodes]):
        progress(event)
    return verdict


def preflight_events(verdict: Preflight, nodes: Sequence[str]) -> list[LaunchProgress]:
    """One event per node with its checks, in `nodes` order, then one for the job as a whole."""
    events = []
    for node in nodes:
        mine = tuple(v for v in verdict.verdicts if v.node == node)
        blocking = [v.message for v in mine if not v.ok and not v.forced]
        events.append(LaunchProgress("preflight", "; ".join(blocking) or "ready", node, not blocking, mine))
    rest = tuple(v for v in verdict.verdicts if v.node not in nodes)
    summary = "go" if verdict.go else _no_go(verdict)
    events.append(LaunchProgress("preflight", summary, None, verdict.go, rest))
    return events


def _no_go(verdict: Preflight) -> str:
    blocking = verdict.blocking
    return f"no-go: {len(blocking)} check(s) failed, first {blocking[0].check}: {blocking[0].message}"


def record_plan(store: Store, plan: JobPlan, cluster: Cluster, *, template: str, at: float,
                owner: str | None = None) -> None:
    """The job, its nodes and a first event, in state `launching` (owned by `owner`, the launching
    process). Raises StoreError for a known id."""
    store.create_job(
        JobRecord(id=plan.job_id, name=plan.name, cluster_name=cluster.name,
                  cluster_file=_absolute(cluster.source),
                  config_text=plan.config_text, template_path=template,
                  overrides={"set": list(plan.overrides)}, plan=plan.as_json(), state="launching",
                  created_at=at, updated_at=at,
                  log_locations=log_locations(plan), owner=owner),
        [LaunchRecord(plan.job_id, n.node, n.node_rank, n.job_dir, updated_at=at) for n in plan.nodes],
        [EventRecord(plan.job_id, "launch", _launching_text(plan), at)])


def log_locations(plan: JobPlan) -> dict[str, str]:
    """Where each node's logs are: msrun's log directory, or a server's console.log."""
    where = LAUNCHER_LOG if plan.serve is not None else "logs"
    return {n.node: posixpath.join(n.job_dir, where) for n in plan.nodes}


def _launching_text(plan: JobPlan) -> str:
    if plan.serve is not None:
        return (f"launching a {plan.serve.engine} server on {len(plan.nodes)} node(s), at {plan.serve.url} "
                f"on {plan.serve.node}")
    return f"launching on {msrun_count_text(plan)}, master {plan.master_addr}:{plan.master_port}"


def _absolute(source: str) -> str:
    """The cluster file as a path that still works from another directory (`jobs` run elsewhere)."""
    path = Path(source)
    return str(path.resolve()) if path.exists() else source


def _launch(plan: JobPlan, pool: NodePool, hold: LaunchHold, *, settle: float, timeout: float,
            progress: ProgressCallback) -> tuple[LaunchFailure | None, tuple[launch.StopReport, ...]]:
    """Stage every node, start every node, watch them settle. Any failure after staging, and an
    interruption too, stops every node: a start whose answer was lost may still have started, and
    stopping a node that never started is harmless. So does finding that another console stopped the
    job: its stop stands, and nothing this launch started is left running."""
    progress(LaunchProgress("stage", f"copying the job to {len(plan.nodes)} node(s)"))
    staged, failure = _on_nodes(pool, plan, lambda n: launch.stage(
        pool.transport(n.node), n.job_dir, job_files(plan, n), timeout=timeout),
        stage="stage", doing="copying the job directory", progress=progress)
    if failure is not None:
        other = _mark_failed(hold, failure, (), _unstage(plan, pool, staged, timeout, progress))
        return (failure if other is None else _taken(plan, hold, other, ())), ()
    try:  # nothing started yet: a stop that came meanwhile is simply obeyed
        hold.state("launching", keep=True)
    except RecordChanged as changed:
        return _taken(plan, hold, changed, ()), ()
    try:
        failure = _start_and_settle(plan, pool, hold, settle=settle, timeout=timeout, progress=progress)
        if failure is None:
            started = EventRecord(plan.job_id, "running", "every node started", time.time())
            hold.state("running", events=[started])
            return None, ()
    except RecordChanged as changed:
        stopped = _stop(plan, pool, timeout, progress)
        return _taken(plan, hold, changed, stopped), stopped
    except BaseException:
        stopped = _stop(plan, pool, timeout, progress)
        _mark_failed(hold, LaunchFailure(plan.nodes[0].node, "start", "the launch was interrupted"), stopped)
        raise
    stopped = _stop(plan, pool, timeout, progress)
    other = _mark_failed(hold, failure, stopped)
    return (failure if other is None else _taken(plan, hold, other, stopped)), stopped


def _unstage(plan: JobPlan, pool: NodePool, staged: dict[str, RunResult], timeout: float,
             progress: ProgressCallback) -> list[EventRecord]:
    """Remove the job directories of the nodes that staged while another failed to: a launch failed at
    staging leaves nothing on the nodes. A node whose answer was lost is left alone (its directory, if
    any, is whole: nothing says it is this launch's). One event per node, saying what became of it."""
    done = [n for n in plan.nodes if n.node in staged and staged[n.node].ok]
    if not done:
        return []
    job_dirs = {n.node: n.job_dir for n in done}
    progress(LaunchProgress("stop", f"removing the job directory from the {len(done)} node(s) staged"))
    events = []
    for node, reason in unstage_nodes(plan.job_id, list(job_dirs.items()), pool, timeout=timeout):
        progress(LaunchProgress("stop", reason or f"removed {job_dirs[node]}", node, reason is None))
        events.append(EventRecord(plan.job_id, "unstaged", reason or f"removed {job_dirs[node]} (the launch "
                                  "failed at staging)", time.time(), node=node))
    return events


def _taken(plan: JobPlan, hold: LaunchHold, changed: RecordChanged,
           stopped: Sequence[launch.StopReport]) -> LaunchFailure:
    """Another console changed the job during the launch (a stop): the launch gives way, says so."""
    stage: LaunchStage = "start" if stopped else "stage"
    failure = LaunchFailure(None, stage, f"another console changed the job meanwhile (it is now "
                                         f"{changed.job.state}): this launch gave way"
                            + (" and stopped what it had started" if stopped else ""))
    now = time.time()
    hold.note([EventRecord(plan.job_id, "launch-failed", failure.reason, now)]
              + [EventRecord(plan.job_id, "stopped", stop_text(r), now, node=r.node) for r in stopped])
    return failure


def _start_and_settle(plan: JobPlan, pool: NodePool, hold: LaunchHold, *, settle: float, timeout: float,
                      progress: ProgressCallback) -> LaunchFailure | None:
    by_name = {n.node: n for n in plan.nodes}
    starting = (f"the server on {len(plan.nodes)} node(s)" if plan.serve is not None
                else f"msrun on {msrun_count_text(plan)}")
    progress(LaunchProgress("start", f"starting {starting}"))
    started, failure = _on_nodes(pool, plan, lambda n: launch.start(
        pool.transport(n.node), n.job_dir, process_marker(plan.job_id, n.node), timeout=timeout),
        stage="start", doing="starting launch.sh", progress=progress)
    now = time.time()
    hold.launches([LaunchRecord(plan.job_id, name, by_name[name].node_rank, by_name[name].job_dir,
                                pid=_pid(result), state="starting", updated_at=now)
                   for name, result in started.items() if result.ok])
    failure = failure or _settle(plan, pool, settle, timeout, progress)
    if failure is None and plan.serve is not None:
        return _ready(plan, pool, hold.store, timeout, progress)
    return failure


def _on_nodes(pool: NodePool, plan: JobPlan, work: Callable[[NodeLaunch], RunResult], *, stage: LaunchStage,
              doing: str, progress: ProgressCallback) -> tuple[dict[str, RunResult], LaunchFailure | None]:
    """`work` on every node at once, each node reported as it answers; every node's result, and the
    first to fail (in the order they answered)."""
    nodes = [pool.cluster.node(n.node) for n in plan.nodes]
    by_name = {n.node: n for n in plan.nodes}
    results: dict[str, RunResult] = {}
    failure = None
    for result in map_nodes(pool, nodes, lambda node: work(by_name[node.name])):
        results[result.node] = result
        reason = failure_reason(result, doing)
        if reason is not None and failure is None:
            failure = LaunchFailure(result.node, stage, reason)
        progress(LaunchProgress(stage, reason or _done(stage, result), result.node, reason is None))
    return results, failure


def _done(stage: LaunchStage, result: RunResult) -> str:
    pid = _pid(result)
    if stage == "start":
        return f"started (pid {pid})" if pid is not None else "started"
    return f"copied to {result.stdout.strip()}" if result.stdout.strip() else "copied"


def _pid(result: RunResult) -> int | None:
    text = result.stdout.strip()
    return int(text) if text.isdigit() else None


def _settle(plan: JobPlan, pool: NodePool, settle: float, timeout: float,
            progress: ProgressCallback) -> LaunchFailure | None:
    """Watch the nodes for `settle` seconds: a run that ends non-zero (or vanishes) fails the launch."""
    progress(LaunchProgress("settle", f"watching the start for {settle:g} s"))
    deadline = time.monotonic() + settle
    while True:
        failure = _ended(plan, pool, timeout, "settle", progress)
        if failure is not None:
            return failure
        if time.monotonic() >= deadline:
            for node in plan.nodes:
                progress(LaunchProgress("settle", f"running after {settle:g} s", node.node))
            return None
        time.sleep(1.0)


def _ended(plan: JobPlan, pool: NodePool, timeout: float, stage: LaunchStage,
           progress: ProgressCallback) -> LaunchFailure | None:
    """The first node whose run has ended badly (or cannot be asked), said with its log's end. A
    server's run ending at all is a failure: it is meant to last."""
    dirs = {pool.cluster.node(n.node): [n.job_dir] for n in plan.nodes}
    for name, answer in query_nodes(pool, dirs, timeout=timeout).items():
        failure = _end_failure(plan, pool, name, answer, timeout=timeout, stage=stage)
        if failure is not None:
            progress(LaunchProgress(stage, failure.reason, name, ok=False))
            return failure
    return None


def _end_failure(plan: JobPlan, pool: NodePool, name: str, answer: NodeAnswer, *, timeout: float,
                 stage: LaunchStage) -> LaunchFailure | None:
    if not isinstance(answer, NodeJobStates):
        return LaunchFailure(name, stage, answer.reason)
    state = answer.states[0]
    if state.state == "stopped":  # asked to stop by another console: its stop stands
        return LaunchFailure(name, stage, "its run was stopped (another console asked it to stop)")
    serving = plan.serve is not None
    if state.state == "lost" or (state.state == "exited" and (state.exit_code != 0 or serving)):
        why = f"exited with code {state.exit_code}" if state.state == "exited" else "vanished"
        when = "at once" if stage == "settle" else "before it was ready"
        return LaunchFailure(name, stage, f"its run {why} {when}" + _log_end(plan, pool, name, timeout))
    return None


def _log_end(plan: JobPlan, pool: NodePool, name: str, timeout: float) -> str:
    node = next(n for n in plan.nodes if n.node == name)
    tail = launch.console_tail(pool.transport(name), node.job_dir, timeout=timeout)
    return f":\n{tail}" if tail else ""


def _ready(plan: JobPlan, pool: NodePool, store: Store, timeout: float,
           progress: ProgressCallback) -> LaunchFailure | None:
    """Wait for the server to serve (readiness line, /health, /v1/models, asked on its node) within its
    deadline; a run that ends first fails it."""
    endpoint = plan.serve
    assert endpoint is not None
    node = pool.cluster.node(endpoint.node)
    log = posixpath.join(endpoint.job_dir, LAUNCHER_LOG)
    progress(LaunchProgress("ready", f"waiting for {endpoint.url} on {node.name} to serve "
                                     f"(up to {endpoint.ready_timeout:g} s)"))
    started = time.monotonic()
    while True:
        failure = _ended(plan, pool, timeout, "ready", progress)
        if failure is not None:
            return failure
        probe = probe_server(pool.transport(node), node.python, url=endpoint.url,
                             health_path=endpoint.health_path, log_path=log, ready_line=endpoint.ready_line,
                             timeout=timeout)
        waited = time.monotonic() - started
        if probe.ready:
            store.add_events([EventRecord(plan.job_id, "ready", f"serving at {endpoint.url}", time.time(),
                                          node=node.name)])
            progress(LaunchProgress("ready", f"serving at {endpoint.url}", node.name))
            return None
        if waited >= endpoint.ready_timeout:
            said = f": {probe.error}" if probe.error else ""
            reason = (f"not ready after {endpoint.ready_timeout:g} s (waiting for "
                      f"{probe.waiting_for()}{said})" + _log_end(plan, pool, node.name, timeout))
            progress(LaunchProgress("ready", reason, node.name, ok=False))
            return LaunchFailure(node.name, "ready", reason)
        progress(LaunchProgress("ready", f"waiting for {probe.waiting_for()} ({waited:.0f} s of "
                                         f"{endpoint.ready_timeout:g} s)", node.name))
        time.sleep(READY_POLL)


def _stop(plan: JobPlan, pool: NodePool, timeout: float,
          progress: ProgressCallback) -> tuple[launch.StopReport, ...]:
    progress(LaunchProgress("stop", f"stopping the job on {len(plan.nodes)} node(s)"))
    stopped = stop_nodes(plan.job_id, [(n.node, n.job_dir) for n in plan.nodes], pool, grace=STOP_GRACE,
                         timeout=timeout)
    for report in stopped:
        progress(LaunchProgress("stop", stop_text(report), report.node, report.ok))
    return stopped


def _mark_failed(hold: LaunchHold, failure: LaunchFailure, stopped: Sequence[launch.StopReport],
                 undone: Sequence[EventRecord] = ()) -> RecordChanged | None:
    """The job failed, its stopped nodes stopped (`undone`: the events of what else was undone); None
    once written, else what says another console changed the job meanwhile: then only `undone` is
    written, as plain events (what was done on the nodes stays said; the stops are _taken's to say)."""
    now = time.time()
    message = f"{failure.node} failed to {failure.stage}: {failure.reason}"
    events = [EventRecord(hold.job_id, "launch-failed", message, now, node=failure.node), *undone]
    events += [EventRecord(hold.job_id, "stopped", stop_text(report), now, node=report.node)
               for report in stopped]
    stopped_nodes = {r.node for r in stopped if r.ok}
    try:
        hold.launches([replace(launch_record, state="stopped" if launch_record.node in stopped_nodes
                               else launch_record.state, updated_at=now)
                       for launch_record in hold.store.launches(hold.job_id)])
        hold.state("failed", events=events)
    except RecordChanged as changed:
        hold.note(undone)
        return changed
    return None
