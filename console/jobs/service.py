"""The job service: launch a planned job on every node, all or nothing, and stop it everywhere.

Used by the CLI (and later the TUI). Every state change is written to the store as it happens, so a
console killed mid-launch leaves a record that `jobs` can reattach to.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from console.jobs.plan import (
    CONFIG_NAME,
    CONTAINER_SCRIPT_NAME,
    SCRIPT_NAME,
    JobPlan,
    NodeLaunch,
    process_marker,
)
from console.store import EventRecord, JobRecord, LaunchRecord, Store
from remote import launch
from remote.checker import ClusterChecker
from remote.fanout import map_nodes
from remote.health import NodeHealth
from remote.inventory import Cluster
from remote.jobstate import NodeJobStates, query_nodes
from remote.pool import NodePool
from remote.transport import RunResult

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
SETTLE_SECONDS = 5.0
"""How long a launch watches the nodes after starting them: a node whose msrun dies at once
(missing, misconfigured) fails the launch; later failures are msrun's own business."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class NodeFailure:
    node: str
    stage: str
    """stage, start or settle: how far the node got."""
    reason: str


@dataclass(frozen=True)
class LaunchOutcome:
    plan: JobPlan
    failure: NodeFailure | None
    stopped: tuple[launch.StopReport, ...] = ()
    """When a launch fails, the nodes already started and then stopped."""

    @property
    def ok(self) -> bool:
        return self.failure is None


def job_files(plan: JobPlan, node: NodeLaunch) -> bytes:
    files = {CONFIG_NAME: plan.config_text.encode(), SCRIPT_NAME: node.script.encode()}
    if node.container_script is not None:
        files[CONTAINER_SCRIPT_NAME] = node.container_script.encode()
    if plan.ships_code:
        files.update({f"code/{name}": data for name, data in launch.code_files(PROJECT_ROOT).items()})
    return launch.job_archive(files, executable=[SCRIPT_NAME, CONTAINER_SCRIPT_NAME])


def record_plan(store: Store, plan: JobPlan, cluster: Cluster, *, template: str, at: float) -> None:
    store.create_job(
        JobRecord(id=plan.job_id, name=plan.name, cluster_name=cluster.name,
                  cluster_file=_absolute(cluster.source),
                  config_text=plan.config_text, template_path=template,
                  overrides={"set": list(plan.overrides)}, plan=plan.as_json(), state="launching",
                  created_at=at, updated_at=at,
                  log_locations={n.node: f"{n.job_dir}/logs" for n in plan.nodes}),
        [LaunchRecord(plan.job_id, n.node, n.node_rank, n.job_dir, updated_at=at) for n in plan.nodes],
        [EventRecord(plan.job_id, "launch", f"launching on {len(plan.nodes)} node(s), master "
                     f"{plan.master_addr}:{plan.master_port}", at)])


def _absolute(source: str) -> str:
    """The cluster file as a path that still works from another directory (`jobs` run elsewhere)."""
    path = Path(source)
    return str(path.resolve()) if path.exists() else source


def launch_job(plan: JobPlan, pool: NodePool, store: Store, *, settle: float = SETTLE_SECONDS,
               timeout: float = 60.0, progress: Progress = lambda _: None) -> LaunchOutcome:
    """Stage every node, start every node, watch them settle. Any failure, and an interruption
    (Ctrl-C) too, stops every node that was staged: a start whose answer was lost may still have
    started, and stopping a node that never started is harmless."""
    progress(f"copying the job to {len(plan.nodes)} node(s)")
    staged = _on_nodes(pool, plan, lambda n: launch.stage(pool.transport(n.node), n.job_dir,
                                                         job_files(plan, n), timeout=timeout))
    failure = _first_failure(staged, "stage", "copying the job directory")
    if failure is not None:
        return _failed(store, plan, failure, ())
    finished = False
    try:
        failure = _start_and_settle(plan, pool, store, settle=settle, timeout=timeout, progress=progress)
        finished = failure is None
    finally:
        if not finished:
            failure = failure or NodeFailure(plan.nodes[0].node, "start", "the launch was interrupted")
            stopped = stop_nodes(plan.job_id, [(n.node, n.job_dir) for n in plan.nodes], pool, grace=10,
                                 timeout=timeout)
            outcome = _failed(store, plan, failure, stopped)
    if not finished:
        return outcome
    store.set_job_state(plan.job_id, "running", at=time.time(),
                        events=[EventRecord(plan.job_id, "running", "every node started", time.time())])
    return LaunchOutcome(plan, None)


def _start_and_settle(plan: JobPlan, pool: NodePool, store: Store, *, settle: float, timeout: float,
                      progress: Progress) -> NodeFailure | None:
    by_name = {n.node: n for n in plan.nodes}
    progress("starting msrun on every node")
    started = _on_nodes(pool, plan, lambda n: launch.start(
        pool.transport(n.node), n.job_dir, process_marker(plan.job_id, n.node), timeout=timeout))
    now = time.time()
    store.put_launches([LaunchRecord(plan.job_id, name, by_name[name].node_rank, by_name[name].job_dir,
                                     pid=_pid(result), state="starting", updated_at=now)
                        for name, result in started.items() if result.ok])
    return _first_failure(started, "start", "starting launch.sh") or _settle(plan, pool, settle, timeout,
                                                                            progress)


def _on_nodes(pool: NodePool, plan: JobPlan, work: Callable[[NodeLaunch], RunResult]) -> dict[str, RunResult]:
    nodes = [pool.cluster.node(n.node) for n in plan.nodes]
    by_name = {n.node: n for n in plan.nodes}
    return {result.node: result for result in map_nodes(pool, nodes, lambda node: work(by_name[node.name]))}


def _first_failure(results: dict[str, RunResult], stage: str, doing: str) -> NodeFailure | None:
    """The first node that failed, said without the script's text (it is ours, and long)."""
    for name, result in results.items():
        if not result.ok:
            if result.error is not None or result.exit_code is None:
                return NodeFailure(name, stage, f"{doing}: {result.message}")
            detail = result.stderr.strip().splitlines()[-1:] or [""]
            return NodeFailure(name, stage, f"{doing} exited {result.exit_code} {detail[0]}".rstrip())
    return None


def _pid(result: RunResult) -> int | None:
    text = result.stdout.strip()
    return int(text) if text.isdigit() else None


def _settle(plan: JobPlan, pool: NodePool, settle: float, timeout: float,
            progress: Progress) -> NodeFailure | None:
    """Watch the nodes for `settle` seconds: a run that ends non-zero (or vanishes) fails the launch."""
    progress(f"watching the start for {settle:g} s")
    deadline = time.monotonic() + settle
    dirs = {pool.cluster.node(n.node): [n.job_dir] for n in plan.nodes}
    while True:
        for name, answer in query_nodes(pool, dirs, timeout=timeout).items():
            if not isinstance(answer, NodeJobStates):
                return NodeFailure(name, "settle", answer.reason)
            state = answer.states[0]
            if state.state == "lost" or (state.state == "exited" and state.exit_code != 0):
                node = next(n for n in plan.nodes if n.node == name)
                tail = launch.console_tail(pool.transport(name), node.job_dir, timeout=timeout)
                why = f"exited with code {state.exit_code}" if state.state == "exited" else "vanished"
                return NodeFailure(name, "settle", f"its run {why} at once" + (f":\n{tail}" if tail else ""))
        if time.monotonic() >= deadline:
            return None
        time.sleep(1.0)


def _failed(store: Store, plan: JobPlan, failure: NodeFailure,
            stopped: Sequence[launch.StopReport]) -> LaunchOutcome:
    now = time.time()
    message = f"{failure.node} failed to {failure.stage}: {failure.reason}"
    events = [EventRecord(plan.job_id, "launch-failed", message, now, node=failure.node)]
    events += [EventRecord(plan.job_id, "stopped", _stop_text(report), now, node=report.node)
               for report in stopped]
    stopped_nodes = {r.node for r in stopped if r.ok}
    store.put_launches([replace(launch_record, state="stopped" if launch_record.node in stopped_nodes
                                else launch_record.state, updated_at=now)
                        for launch_record in store.launches(plan.job_id)])
    store.set_job_state(plan.job_id, "failed", at=now, events=events)
    return LaunchOutcome(plan, failure, tuple(stopped))


def stop_nodes(job_id: str, targets: Sequence[tuple[str, str]], pool: NodePool, *, grace: int,
               timeout: float) -> tuple[launch.StopReport, ...]:
    """Stop the job on each (node, job directory), all at once."""
    job_dirs = dict(targets)
    specs = [pool.cluster.node(name) for name in job_dirs]
    limit = timeout + grace + 10

    def stop_one(node_name: str) -> launch.StopReport:
        return launch.stop(pool.transport(node_name), job_dirs[node_name],
                           process_marker(job_id, node_name), grace=grace, timeout=limit)

    return tuple(sorted(map_nodes(pool, specs, lambda spec: stop_one(spec.name)), key=lambda r: r.node))


def stop_job(store: Store, job_id: str, pool: NodePool, *, grace: int, timeout: float = 30.0
             ) -> tuple[launch.StopReport, ...]:
    """SIGTERM every rank of the job on every node, SIGKILL after `grace`, verify none is left.
    A job already finished is only cleaned up (anything left of it is stopped); its record stays."""
    record, launches = store.job(job_id), store.launches(job_id)
    now = time.time()
    if not record.finished:
        store.set_job_state(job_id, "stopping", at=now,
                            events=[EventRecord(job_id, "stop", "stop requested", now)])
    targets = [(lr.node, lr.job_dir) for lr in launches]
    reports = with_npu_check(stop_nodes(job_id, targets, pool, grace=grace, timeout=timeout), pool, timeout)
    now = time.time()
    events = [EventRecord(job_id, "stopped" if r.ok else "stop-failed", _stop_text(r), now, node=r.node)
              for r in reports]
    if record.finished:
        store.add_events(events)
        return reports
    store.put_launches([_after_stop(lr, {r.node: r for r in reports}[lr.node], now) for lr in launches],
                       events)
    if all(r.ok for r in reports):
        store.set_job_state(job_id, "stopped", at=now)
    return reports


def _after_stop(launch_record: LaunchRecord, report: launch.StopReport, now: float) -> LaunchRecord:
    if report.ok:
        return replace(launch_record, state="stopped", updated_at=now, reason="")
    if report.failure is not None:
        return replace(launch_record, state="unreachable", last_known=launch_record.effective_state,
                       updated_at=now, reason=_stop_text(report))
    return replace(launch_record, updated_at=now, reason=_stop_text(report))


def with_npu_check(reports: Sequence[launch.StopReport], pool: NodePool,
                   timeout: float) -> tuple[launch.StopReport, ...]:
    """On NPU nodes, ask npu-smi (through the health probe) whether any process of the job still holds
    an NPU: a rank can outlive its process table entry on the device for a while."""
    npu_nodes = [pool.cluster.node(r.node) for r in reports if r.failure is None
                 and pool.cluster.node(r.node).backend == "npu"]
    if not npu_nodes:
        return tuple(reports)
    health = {h.node: h for h in ClusterChecker(pool, npu_nodes, timeout=timeout).refresh()}
    return tuple(npu_leftovers(report, health.get(report.node)) for report in reports)


def npu_leftovers(report: launch.StopReport, health: NodeHealth | None) -> launch.StopReport:
    """The report, with the job's processes that the node's NPU process table still lists."""
    if health is None:
        return report
    on_npus = {p.pid for npu in health.npus for p in npu.processes} & set(report.found)
    return replace(report, on_npus=tuple(sorted(on_npus)))


def _stop_text(report: launch.StopReport) -> str:
    if report.failure is not None:
        return f"could not be stopped: {report.failure.describe()}"
    if report.remaining:
        return f"processes left after SIGKILL: {' '.join(map(str, report.remaining))}"
    if report.on_npus:
        return f"npu-smi still shows process(es) of the job: {' '.join(map(str, report.on_npus))}"
    killed = f", {len(report.killed)} needed SIGKILL" if report.killed else ""
    return f"no process of the job left ({len(report.found)} stopped{killed})"
