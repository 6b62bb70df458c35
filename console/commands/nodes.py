"""`ascend-console nodes`: the cluster file as the console understood it."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from rich.markup import escape

from console import exitcodes
from console.fittable import Column, FitTable
from console.render import print_json, stdout_console
from remote.inventory import Cluster

HELP = "list the cluster's nodes with every setting resolved"
COLUMNS = (Column("name"), Column("transport", drop=2, short="via"), Column("host", kind="number"),
           Column("cluster_ip", kind="number", short="ip"), Column("user", drop=3),
           Column("port", kind="number", drop=1, justify="right"), Column("workdir", kind="path"),
           Column("devices", kind="number", short="dev", justify="right"))
"""At 80 columns: short headers first, then workdir under the table (whole), then user, transport, port."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", metavar="SET", help="node set (default: every node)")
    parser.add_argument("--json", action="store_true", help="print the nodes as JSON")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    nodes = cluster.select(args.nodes)
    if args.json:
        print_json({"cluster": cluster.name, "source": cluster.source,
                    "nodes": [asdict(n) for n in nodes]})
        return exitcodes.OK
    rows = [["" if values[c.name] is None else escape(str(values[c.name])) for c in COLUMNS]
            for values in map(asdict, nodes)]
    out = stdout_console()
    out.print(f"{escape(cluster.name)} ({escape(cluster.source)})")
    out.print(FitTable(COLUMNS, rows))
    return exitcodes.OK
