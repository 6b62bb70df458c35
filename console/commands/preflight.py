"""`ascend-console preflight`: go / no-go per node for a job, without launching it."""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from console import exitcodes
from console.jobargs import add_job_arguments, planned_or_exit_code
from console.jobs.preflight import CHECKS, Preflight, preflight
from console.render import print_json, stderr_console, stdout_console
from remote.inventory import Cluster
from remote.pool import NodePool

HELP = ("check every node is ready for a job (health, NPUs free, versions, port, disk, paths, what the "
        "launch style needs, layout)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser)
    add_force_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the verdicts as JSON")


def add_force_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="append", default=[], metavar="CHECK", choices=CHECKS,
                        help=f"go despite this failed check (repeatable): {', '.join(CHECKS)}")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    with NodePool(cluster) as pool:
        planned = planned_or_exit_code(args, pool, force=args.force)
        if isinstance(planned, int):
            return planned
        with stderr_console().status(f"checking {len(planned.nodes)} node(s)…"):
            verdict = preflight(planned, pool)
    if args.json:
        print_json(verdict.as_json())
    else:
        show_preflight(verdict)
    return exitcodes.OK if verdict.go else exitcodes.NODE_FAILED


def show_preflight(verdict: Preflight) -> None:
    table = Table(title="preflight: " + ("[green]GO[/]" if verdict.go else "[red]NO-GO[/]"))
    for column in ("check", "node", "verdict", "detail"):
        table.add_column(column)
    for v in verdict.verdicts:
        mark = "[green]ok[/]" if v.ok else ("[yellow]forced[/]" if v.forced else "[red]no[/]")
        table.add_row(v.check, escape(v.node or "all"), mark, escape(v.message))
    stdout_console().print(table)
