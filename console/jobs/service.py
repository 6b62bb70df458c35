"""The job service: what a job puts on each node, and stopping it everywhere.

Used by the CLI and the TUI; the launch itself is console/jobs/launcher.py. Every state change is written
to the store as it happens, so a console killed mid-stop leaves a record that `jobs` can reattach to.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from console.jobs.plan import (
    CONFIG_NAME,
    CONTAINER_SCRIPT_NAME,
    SCRIPT_NAME,
    JobPlan,
    NodeLaunch,
    process_marker,
)
from console.records import EventRecord, LaunchRecord
from console.store import Store
from remote import launch
from remote.checker import ClusterChecker
from remote.fanout import map_nodes
from remote.health import NodeHealth
from remote.pool import NodePool

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


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
    events = [EventRecord(job_id, "stopped" if r.ok else "stop-failed", stop_text(r), now, node=r.node)
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
                       updated_at=now, reason=stop_text(report))
    return replace(launch_record, updated_at=now, reason=stop_text(report))


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


def stop_text(report: launch.StopReport) -> str:
    """What became of one node's processes, in a line."""
    if report.failure is not None:
        return f"could not be stopped: {report.failure.describe()}"
    if report.remaining:
        return f"processes left after SIGKILL: {' '.join(map(str, report.remaining))}"
    if report.on_npus:
        return f"npu-smi still shows process(es) of the job: {' '.join(map(str, report.on_npus))}"
    killed = f", {len(report.killed)} needed SIGKILL" if report.killed else ""
    return f"no process of the job left ({len(report.found)} stopped{killed})"
