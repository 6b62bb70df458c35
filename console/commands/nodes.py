"""`ascend-console nodes`: the cluster file as the console understood it."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from rich.markup import escape
from rich.table import Table

from console import exitcodes
from console.render import print_json, stdout_console
from remote.inventory import Cluster

HELP = "list the cluster's nodes with every setting resolved"
COLUMNS = ("name", "transport", "host", "cluster_ip", "user", "port", "workdir", "devices")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", metavar="SET", help="node set (default: every node)")
    parser.add_argument("--json", action="store_true", help="print the nodes as JSON")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    nodes = cluster.select(args.nodes)
    if args.json:
        print_json({"cluster": cluster.name, "source": cluster.source,
                    "nodes": [asdict(n) for n in nodes]})
        return exitcodes.OK
    table = Table(title=escape(f"{cluster.name} ({cluster.source})"), title_justify="left")
    for column in COLUMNS:
        table.add_column(column)
    for node in nodes:
        values = asdict(node)
        table.add_row(*("" if values[c] is None else escape(str(values[c])) for c in COLUMNS))
    stdout_console().print(table)
    return exitcodes.OK
