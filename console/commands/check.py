"""`ascend-console check`: every node's NPUs, links and system, judged OK / WARN / FAIL."""

from __future__ import annotations

import argparse
import json
import time

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table

from console import exitcodes
from console.arguments import positive_seconds
from console.healthdoc import (
    NOTHING,
    check_document,
    disk_cell,
    hbm_cell,
    jobs_cell,
    links_cell,
    max_cell,
    npus_cell,
    process_text,
    versions_cell,
)
from console.render import print_json, stderr_console, stdout_console
from remote.checker import ClusterChecker
from remote.health import NodeHealth, Status, summarize
from remote.inventory import Cluster, NodeSpec
from remote.pool import NodePool

HELP = "check every node's NPUs (npu-smi), links (hccn_tool), disk, versions and clock"
STATUS_STYLE = {
    Status.OK: "green", Status.WARN: "yellow", Status.UNKNOWN: "magenta",
    Status.FAIL: "bold red", Status.UNREACHABLE: "red",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", metavar="SET", help="node set (default: every node)")
    parser.add_argument("--json", action="store_true", help="print the stable JSON document")
    parser.add_argument("-v", "--verbose", action="store_true", help="one row per NPU as well")
    parser.add_argument("--watch", type=positive_seconds, metavar="SECONDS",
                        help="check again every SECONDS over the same connections (Ctrl-C stops)")
    parser.add_argument("--timeout", type=positive_seconds, default=30.0, metavar="SECONDS",
                        help="per node (default: 30)")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    nodes = cluster.select(args.nodes)
    out = stdout_console()
    with NodePool(cluster) as pool:
        checker = ClusterChecker(pool, nodes, timeout=args.timeout)
        reports = _check(checker)
        _show(out, args, cluster, nodes, reports)
        while args.watch:
            time.sleep(args.watch)
            reports = _check(checker)
            if not args.json:
                out.clear()
            _show(out, args, cluster, nodes, reports)
    return exit_code(reports)


def _check(checker: ClusterChecker) -> list[NodeHealth]:
    with stderr_console().status(f"checking {len(checker.nodes)} nodes…"):
        return checker.refresh()


def exit_code(reports: list[NodeHealth]) -> int:
    statuses = {r.status for r in reports}
    if statuses & {Status.FAIL, Status.UNREACHABLE}:
        return exitcodes.UNREACHABLE
    return exitcodes.NODE_FAILED if statuses & {Status.WARN, Status.UNKNOWN} else exitcodes.OK


def _show(out: Console, args: argparse.Namespace, cluster: Cluster, nodes: tuple[NodeSpec, ...],
          reports: list[NodeHealth]) -> None:
    summary = summarize(reports)
    if args.json:
        document = check_document(cluster.name, reports, summary)
        if args.watch:
            # one document per line, so a consumer can read the stream line by line
            print(json.dumps(document), flush=True)
        else:
            print_json(document)
        return
    devices = {n.name: n.devices for n in nodes}
    parts = [node_table(cluster.name, summary.text, reports, devices, out.width)]
    if args.verbose:
        parts += [npu_table(r) for r in reports if r.npus]
    out.print(Group(*parts))


# Columns a narrow terminal leaves out, so that the reasons keep room to be read.
WIDE_ONLY = ("power", "AICore", "versions", "job")
WIDE = 130


def node_table(title: str, summary: str, reports: list[NodeHealth], devices: dict[str, int],
               width: int = WIDE) -> Table:
    table = Table(title=f"{title}: {summary}", title_justify="left")
    columns = [c for c in ("node", "status", "NPUs", "HBM", "temp", "power", "AICore", "links", "disk",
                           "versions", "job") if width >= WIDE or c not in WIDE_ONLY]
    # the readings stay on one line each; the reasons take whatever width is left
    for column in columns:
        table.add_column(column, no_wrap=True)
    table.add_column("reasons", overflow="fold", ratio=1, min_width=16)
    for r in reports:
        style = STATUS_STYLE[r.status]
        cells = {
            "node": escape(r.node),
            "status": f"[{style}]{r.status.value}[/]" + (" [dim](stale)[/]" if r.stale else ""),
            "NPUs": npus_cell(r, devices[r.node]), "HBM": hbm_cell(r),
            "temp": max_cell([n.npu.temp_c for n in r.npus], " C"),
            "power": max_cell([n.npu.power_w for n in r.npus], " W"),
            "AICore": max_cell([n.npu.aicore_pct for n in r.npus], "%"),
            "links": links_cell(r), "disk": disk_cell(r), "versions": escape(versions_cell(r)),
            "job": escape(jobs_cell(r)),
        }
        table.add_row(*(cells[c] for c in columns), escape("; ".join(r.reasons)))
    return table


def npu_table(report: NodeHealth) -> Table:
    table = Table(title=f"{report.node}: NPUs", title_justify="left")
    for column in ("NPU", "chip", "name", "health", "HBM MB", "temp C", "power W", "AICore %",
                   "processes", "reasons"):
        table.add_column(column, overflow="fold")
    for n in report.npus:
        npu = n.npu
        processes = ", ".join(process_text(n, p) for p in n.processes)
        table.add_row(
            str(npu.id), str(npu.chip), escape(npu.name), f"[{STATUS_STYLE[n.status]}]{npu.health}[/]",
            f"{_num(npu.hbm_used_mb)}/{_num(npu.hbm_total_mb)}", _num(npu.temp_c), _num(npu.power_w),
            _num(npu.aicore_pct), escape(processes), escape("; ".join(n.reasons)),
        )
    return table


def _num(value: float | None) -> str:
    return NOTHING if value is None else f"{value:g}"
