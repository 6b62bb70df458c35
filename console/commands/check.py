"""`ascend-console check`: can every node be reached, and what is it?"""

from __future__ import annotations

import argparse
import time

from rich.table import Table

from console import exitcodes
from console.render import STATUS_STYLE, print_json, stderr_console, stdout_console
from remote.fanout import FanoutResult, collect, fan_out
from remote.inventory import Cluster
from remote.pool import NodePool
from remote.transport import RunResult

HELP = "check that every node answers (reachability, login, hostname, kernel)"
IDENTITY_COMMAND = ["uname", "-n", "-r", "-m"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", metavar="SET", help="node set (default: every node)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--timeout", type=float, default=20.0, metavar="SECONDS",
                        help="per node (default: 20)")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    nodes = cluster.select(args.nodes)
    started = time.monotonic()
    with NodePool(cluster) as pool, stderr_console().status(f"checking {len(nodes)} nodes…"):
        outcome = collect(
            fan_out(pool, nodes, IDENTITY_COMMAND, timeout=args.timeout), nodes, started)
    rows = [node_record(cluster, r) for r in outcome.results]
    if args.json:
        print_json({"cluster": cluster.name, "source": cluster.source, "nodes": rows,
                    "summary": outcome.summary()})
    else:
        stdout_console().print(_table(cluster, rows, outcome))
    return exitcodes.OK if outcome.all_ok else exitcodes.UNREACHABLE


def node_record(cluster: Cluster, result: RunResult) -> dict[str, object]:
    node = cluster.node(result.node)
    hostname, kernel, machine = ([*result.stdout.split(), "", "", ""])[:3] if result.ok else ("", "", "")
    return {
        "name": node.name,
        "host": node.host,
        "transport": node.transport,
        "status": result.status,
        "hostname": hostname,
        "kernel": kernel,
        "machine": machine,
        "answer_ms": round(result.elapsed * 1000, 1),
        "reason": result.message or result.stderr.strip(),
    }


def _table(cluster: Cluster, rows: list[dict[str, object]], outcome: FanoutResult) -> Table:
    counts = outcome.summary()
    table = Table(title=f"{cluster.name}: {counts['ok']}/{counts['nodes']} nodes answer",
                  title_justify="left")
    for column in ("node", "host", "status", "hostname", "kernel", "ms", "reason"):
        table.add_column(column, overflow="fold")
    for row in rows:
        status = str(row["status"])
        table.add_row(
            str(row["name"]), str(row["host"]),
            f"[{STATUS_STYLE.get(status, 'red')}]{status}[/]",
            str(row["hostname"]), str(row["kernel"]), f"{row['answer_ms']:.0f}", str(row["reason"]),
        )
    return table
