"""Health reports as plain data (the stable `check --json` document) and short display texts."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from remote.health import FleetSummary, NodeHealth, NpuReport, Status

JSON_VERSION = 1
# what a cell shows when there is nothing to show (an en dash)
NOTHING = "\u2013"


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
        "processes": [{"pid": p.pid, "name": p.name, "memory_mb": p.memory_mb} for p in report.processes],
    }


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
    return f"{disk.avail_kb / 1024 / 1024:.0f} GB" if disk else NOTHING


def versions_cell(health: NodeHealth) -> str:
    system = health.system
    if system is None:
        return NOTHING
    parts = [f"drv {system.driver_version}" if system.driver_version else "",
             f"ms {system.mindspore_version}" if system.mindspore_version else ""]
    return " ".join(p for p in parts if p) or NOTHING
