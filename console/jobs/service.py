"""The job service: what a job puts on each node, and stopping it everywhere.

Used by the CLI and the TUI; the launch itself is console/jobs/launcher.py. Every state change is written
to the store as it happens, so a console killed mid-stop leaves a record that `jobs` can reattach to: the
`stopping` record names this process, and a console that finds it gone shows the job as its nodes are
(stopped, or still running for `stop` to be run again). A stop always wins: it writes without a
compare-and-set, and a launch or a refresh that read the job before it finds the version changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from console.jobs.ask import FoundCheckpoint, find_checkpoint, rank0_node
from console.jobs.owner import this_process
from console.jobs.plan import (
    CONFIG_NAME,
    CONTAINER_SCRIPT_NAME,
    SCRIPT_NAME,
    JobPlan,
    NodeLaunch,
    process_marker,
)
from console.records import EventRecord, JobRecord, LaunchRecord
from console.store import Store
from remote import launch
from remote.checker import ClusterChecker
from remote.fanout import map_nodes
from remote.health import NodeHealth, Status
from remote.inventory import NodeSpec
from remote.pool import NodePool
from remote.transport import ErrorKind, RunResult

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
STOP_ATTEMPTS = 2
STOP_RETRY_PAUSE = 2.0
"""A node a stop could not reach, or whose answer was lost, is asked again after this pause: a link that
blinks during a stop costs a retry, not a second `stop`. What still fails is reported, never assumed."""
StopStage = Literal["signalled", "exited", "failed", "verifying", "verified", "checkpoint"]


@dataclass(frozen=True)
class StopProgress:
    """One step of a stop on one node, for a live display."""

    node: str
    stage: StopStage
    message: str


StopCallback = Callable[[StopProgress], None]


def _ignore(_: StopProgress) -> None:
    pass


@dataclass(frozen=True)
class StopOutcome:
    """What a stop did on every node, and the checkpoint rank 0 saved (None: the job saves none, or its
    rank 0 was not stopped; a FoundCheckpoint without a path says why none was found)."""

    reports: tuple[launch.StopReport, ...]
    checkpoint: FoundCheckpoint | None = None

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)


def job_files(plan: JobPlan, node: NodeLaunch) -> bytes:
    """The archive unpacked into the node's job directory: config, launch script(s), the plan's other
    files (a predict job's prompts), shipped code; each file modified now, when it is staged."""
    files = {CONFIG_NAME: plan.config_text.encode(), SCRIPT_NAME: node.script.encode()}
    files.update({name: text.encode() for name, text in plan.files})
    if node.container_script is not None:
        files[CONTAINER_SCRIPT_NAME] = node.container_script.encode()
    if plan.ships_code:
        files.update({f"code/{name}": data for name, data in launch.code_files(PROJECT_ROOT).items()})
    return launch.job_archive(files, executable=[SCRIPT_NAME, CONTAINER_SCRIPT_NAME], mtime=time.time())


def unstage_nodes(job_id: str, targets: Sequence[tuple[str, str]], pool: NodePool, *, timeout: float
                  ) -> Iterator[tuple[str, str | None]]:
    """Remove the job directory of each (node, job directory) that no run was started in, all at once:
    a launch that started nothing leaves nothing. Each node removes only `job_id`'s directory, a plain
    one no start began in. (node, None once removed, else why it was not) in the order the nodes
    answer."""
    job_dirs = dict(targets)

    def unstage_one(spec: NodeSpec) -> RunResult:
        return launch.unstage(pool.transport(spec.name), job_dirs[spec.name], job_id, timeout=timeout)

    specs = [pool.cluster.node(name) for name in job_dirs]
    return ((result.node, failure_reason(result, f"removing {job_dirs[result.node]}"))
            for result in map_nodes(pool, specs, unstage_one))


def failure_reason(result: RunResult, doing: str) -> str | None:
    """Why a node's step failed, said without the script's text (it is ours, and long); None: it did not."""
    if result.ok:
        return None
    if result.error is not None or result.exit_code is None:
        return f"{doing}: {result.message}"
    detail = result.stderr.strip().splitlines()[-1:] or [""]
    return f"{doing} exited {result.exit_code} {detail[0]}".rstrip()


def stop_nodes(job_id: str, targets: Sequence[tuple[str, str]], pool: NodePool, *, grace: int,
               timeout: float, progress: StopCallback | None = None) -> tuple[launch.StopReport, ...]:
    """Stop the job on each (node, job directory), all at once; `progress` hears of each node as the
    signal goes out and as its answer comes back."""
    job_dirs = dict(targets)
    specs = [pool.cluster.node(name) for name in job_dirs]
    limit = timeout + grace + 10
    tell = progress or _ignore

    def stop_one(node_name: str) -> launch.StopReport:
        for attempt in range(STOP_ATTEMPTS):  # the stop script is idempotent: asking again is safe
            if attempt:
                time.sleep(STOP_RETRY_PAUSE)
            report = launch.stop(pool.transport(node_name), job_dirs[node_name],
                                 process_marker(job_id, node_name), grace=grace, timeout=limit)
            if not _link_failed(report):
                break
        return report

    for name in job_dirs:
        tell(StopProgress(name, "signalled", f"SIGTERM sent; waiting up to {grace} s for its ranks to save "
                                             "and exit"))
    reports = []
    for report in map_nodes(pool, specs, lambda spec: stop_one(spec.name)):
        gone = report.failure is None and not report.remaining and not report.unverified
        tell(StopProgress(report.node, "exited" if gone else "failed", _exited_text(report)))
        reports.append(report)
    return tuple(sorted(reports, key=lambda r: r.node))


def _link_failed(report: launch.StopReport) -> bool:
    """The node could not be asked, or its answer was lost (not: it answered, or the script timed out)."""
    return report.failure is not None and report.failure.error is ErrorKind.UNREACHABLE


def stop_job(store: Store, job_id: str, pool: NodePool, *, grace: int, timeout: float = 30.0,
             progress: StopCallback | None = None) -> StopOutcome:
    """SIGTERM every rank of the job on every node, SIGKILL after `grace`, verify none is left, then find
    the checkpoint rank 0 saved. A job already finished is only cleaned up (anything left of it is
    stopped); its record stays. `progress` hears of every node's step, from the calling thread."""
    record, launches = store.job(job_id), store.launches(job_id)
    now = time.time()
    if not record.finished:
        store.set_job_state(job_id, "stopping", at=now, owner=this_process("stop").dump(),
                            events=[EventRecord(job_id, "stop", "stop requested", now)])
    targets = [(lr.node, lr.job_dir) for lr in launches]
    stopped = stop_nodes(job_id, targets, pool, grace=grace, timeout=timeout, progress=progress)
    reports = with_npu_check(stopped, pool, timeout, progress=progress)
    for report in reports:
        if report.ok:
            (progress or _ignore)(StopProgress(report.node, "verified", stop_text(report)))
    outcome = StopOutcome(reports, saved_checkpoint(pool, record, reports, progress=progress))
    now = time.time()
    events = [EventRecord(job_id, "stopped" if r.ok else "stop-failed", stop_text(r), now, node=r.node)
              for r in reports]
    if record.finished:
        store.add_events(events)
        return outcome
    store.put_launches([after_stop(lr, {r.node: r for r in reports}[lr.node], now) for lr in launches],
                       events)
    if all(r.ok for r in reports):
        store.set_job_state(job_id, "stopped", at=now)
    else:  # this console's part is over (the TUI's process lives on): the refresh takes it after the lease
        store.set_job_state(job_id, "stopping", at=now, owner=None)
    return outcome


def saved_checkpoint(pool: NodePool, record: JobRecord, reports: Sequence[launch.StopReport], *,
                     progress: StopCallback | None = None) -> FoundCheckpoint | None:
    """The newest checkpoint rank 0 saved (as `predict JOB` finds it), once rank 0's node has no rank
    left; None for a job that saves none (predict, serve) or whose rank 0 could not be stopped."""
    if record.plan.get("kind", "train") != "train" or not record.plan.get("nodes"):
        return None
    node, _ = rank0_node(record)
    clear = {r.node for r in reports if r.failure is None and not r.remaining and not r.unverified}
    if node not in clear:
        return None
    found = find_checkpoint(pool, record)
    message = f"checkpoint written: {found.path}" if found.path else (found.error or "no checkpoint")
    (progress or _ignore)(StopProgress(found.node, "checkpoint", message))
    return found


def after_stop(launch_record: LaunchRecord, report: launch.StopReport, now: float) -> LaunchRecord:
    """A node's launch once the stop has answered for it: stopped, unreachable (its last state kept), or as
    it was with the stop's word."""
    if report.ok:
        return replace(launch_record, state="stopped", updated_at=now, reason="")
    if report.failure is not None:
        return replace(launch_record, state="unreachable", last_known=launch_record.effective_state,
                       updated_at=now, reason=stop_text(report))
    return replace(launch_record, updated_at=now, reason=stop_text(report))


def with_npu_check(reports: Sequence[launch.StopReport], pool: NodePool, timeout: float, *,
                   progress: StopCallback | None = None) -> tuple[launch.StopReport, ...]:
    """On NPU nodes, ask npu-smi (through the health probe) whether any process of the job still holds
    an NPU: a rank can outlive its process table entry on the device for a while."""
    npu_nodes = [pool.cluster.node(r.node) for r in reports if r.failure is None
                 and pool.cluster.node(r.node).backend == "npu"]
    if not npu_nodes:
        return tuple(reports)
    for spec in npu_nodes:
        (progress or _ignore)(StopProgress(spec.name, "verifying", "asking npu-smi whether its NPUs are "
                                                                   "free"))
    health = {h.node: h for h in ClusterChecker(pool, npu_nodes, timeout=timeout).refresh()}
    return tuple(npu_leftovers(report, health.get(report.node)) for report in reports)


def npu_leftovers(report: launch.StopReport, health: NodeHealth | None) -> launch.StopReport:
    """The report, with the job's processes that the node's NPU process table still lists; a table
    that could not be read leaves the stop unverified, never done."""
    unread = npu_table_unread(health)
    if unread is not None:
        return replace(report, unverified=(*report.unverified, unread))
    assert health is not None
    on_npus = {p.pid for npu in health.npus for p in npu.processes} & {*report.found, *report.earlier}
    return replace(report, on_npus=tuple(sorted(on_npus)))


def npu_table_unread(health: NodeHealth | None) -> str | None:
    """Why the node's NPU process table was not read now, or None when it was."""
    if health is None or health.stale:
        return "npu-smi could not be read (the node did not answer the probe)"
    said = [f.text for f in health.findings
            if f.text.startswith("npu-smi: ") and f.status in (Status.FAIL, Status.UNKNOWN)]
    return f"npu-smi could not be read: {said[0].removeprefix('npu-smi: ')}" if said else None


def stop_text(report: launch.StopReport) -> str:
    """What became of one node's processes, in a line."""
    killed = f", {len(report.killed)} needed SIGKILL" if report.killed else ""
    done = f"no process of the job left ({len(report.found)} stopped{killed})"
    return _stop_problem(report, npus=True) or done


def _exited_text(report: launch.StopReport) -> str:
    """A node's answer to the stop, before any npu-smi check."""
    killed = f"; {len(report.killed)} needed SIGKILL" if report.killed else ""
    done = f"ranks gone ({len(report.found)} process(es) ended{killed})"
    return _stop_problem(report, npus=False) or done


def _stop_problem(report: launch.StopReport, *, npus: bool) -> str | None:
    """Why the node's stop is not done, or None; `npus`: npu-smi's table has been read too."""
    if report.failure is not None:
        return f"could not be stopped: {report.failure.describe()}"
    if report.remaining:
        return f"processes left after SIGKILL: {' '.join(map(str, report.remaining))}"
    if npus and report.on_npus:
        return f"npu-smi still shows process(es) of the job: {' '.join(map(str, report.on_npus))}"
    if report.unverified:
        return f"could not verify the stop: {'; '.join(report.unverified)}"
    return None
