"""Health reports as plain data (the stable `check --json` document) and short display texts."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from remote.health import FleetSummary, NodeHealth, NpuReport, Status
from remote.probes.npusmi import NpuProcess

JSON_VERSION = 1
# what a cell shows when there is nothing to show (an en dash)
NOTHING = "\u2013"
JOB_TIME = re.compile(r"^[0-9]{8}-[0-9]{6}-")  # console/jobs/plan.py job_id_for


def node_document(health: NodeHealth) -> dict[str, Any]:
    return {
        "name": health.node,
        "host": health.host,
        "status": health.status.value,
        "stale": health.stale,
        "reasons": list(health.reasons),
        "npus": [npu_document(n) for n in health.npus],
        "links": [
            {"device": link.device, "link": link.link, "net_health": link.net_health, "ip": link.ip,
             "status": link.status.value}
            for link in health.links
        ],
        "system": asdict(health.system) if health.system is not None else None,
        "jobs": [{"id": job.id, "ranks": list(job.ranks), "npus": list(job.npus)} for job in health.jobs],
        "checked_at": round(health.checked_at, 3),
        "elapsed": round(health.elapsed, 3),
    }


def npu_document(report: NpuReport) -> dict[str, Any]:
    npu = report.npu
    return {
        "id": npu.id, "chip": npu.chip, "name": npu.name, "health": npu.health,
        "status": report.status.value, "reasons": list(report.reasons),
        "hbm_used_mb": npu.hbm_used_mb, "hbm_total_mb": npu.hbm_total_mb,
        "temp_c": npu.temp_c, "power_w": npu.power_w, "aicore_pct": npu.aicore_pct,
        "bus_id": npu.bus_id,
        "processes": [process_document(report, p) for p in report.processes],
    }


def process_document(report: NpuReport, process: NpuProcess) -> dict[str, Any]:
    job = report.job_of(process.pid)
    return {"pid": process.pid, "name": process.name, "memory_mb": process.memory_mb,
            "job": job.job if job else None, "rank": job.rank if job else None}


def process_text(report: NpuReport, process: NpuProcess, *, memory: bool = False) -> str:
    """`277624 python (job 20261206-214024-tiny rank 0, 51270 MB)`: a console job's process says whose
    it is; `memory` adds the HBM it holds."""
    job = report.job_of(process.pid)
    notes = [job.label] if job else []
    notes += [f"{process.memory_mb} MB"] if memory else []
    return f"{process.pid} {process.name}".strip() + (f" ({', '.join(notes)})" if notes else "")


def jobs_cell(health: NodeHealth) -> str:
    """The ids of the jobs the node runs; blank when it runs none."""
    return ", ".join(job.id for job in health.jobs)


def job_name(job_id: str) -> str:
    """`pretrain` of `20261206-214024-pretrain`: the name a person gave, without the launch time."""
    return JOB_TIME.sub("", job_id) or job_id


def check_document(cluster: str, reports: list[NodeHealth], summary: FleetSummary) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "cluster": cluster,
        "nodes": [node_document(r) for r in reports],
        "summary": {**asdict(summary), "text": summary.text},
    }


def npus_cell(health: NodeHealth, devices: int) -> str:
    if health.system is not None and health.system.backend == "cpu":
        cpus = health.system.cpus
        return f"CPU x{cpus}" if cpus else "CPU"
    if not health.npus:
        return NOTHING
    ok = sum(n.status is Status.OK for n in health.npus)
    return f"{ok}/{max(devices, len(health.npus))}"


def hbm_cell(health: NodeHealth) -> str:
    used = [n.npu.hbm_used_mb for n in health.npus if n.npu.hbm_used_mb is not None]
    total = [n.npu.hbm_total_mb for n in health.npus if n.npu.hbm_total_mb is not None]
    if not used or not total:
        return NOTHING
    return f"{sum(used) / 1024:.0f}/{sum(total) / 1024:.0f} GB"


def max_cell(values: list[float | None], unit: str) -> str:
    known = [v for v in values if v is not None]
    return f"{max(known):g}{unit}" if known else NOTHING


def links_cell(health: NodeHealth) -> str:
    if not health.links:
        return NOTHING
    up = sum(link.link == "UP" for link in health.links)
    return f"{up}/{len(health.links)}"


def disk_cell(health: NodeHealth) -> str:
    disk = health.system.disk if health.system else None
    return f"{disk.avail_kb / 1024 / 1024:.0f} GiB" if disk else NOTHING


def versions_cell(health: NodeHealth) -> str:
    system = health.system
    if system is None:
        return NOTHING
    parts = [f"drv {system.driver_version}" if system.driver_version else "",
             f"ms {system.mindspore_version}" if system.mindspore_version else ""]
    return " ".join(p for p in parts if p) or NOTHING
