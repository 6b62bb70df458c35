"""`ascend-console plan`: what a launch would run on every node, byte for byte, without running it."""

from __future__ import annotations

import argparse

from rich.markup import escape

from console import exitcodes
from console.jobargs import add_job_arguments, planned_or_exit_code
from console.jobs.plan import msrun_count_text, shared_msrun_note
from console.jobs.request import PlannedJob
from console.render import print_json, stdout_console
from remote.inventory import Cluster
from remote.pool import NodePool

HELP = "show the per-node msrun commands and launch scripts a job would run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    with NodePool(cluster) as pool:
        planned = planned_or_exit_code(args, pool)
        if isinstance(planned, int):
            return planned
    if args.json:
        print_json({**planned.plan.as_json(), "port_check": planned.port_note})
    else:
        show_plan(planned)
    return exitcodes.OK


def show_plan(planned: PlannedJob) -> None:
    out = stdout_console()
    plan = planned.plan
    out.print(f"[bold]{escape(plan.job_id)}[/]: {plan.style} style, {plan.workers} rank(s) on "
              f"{msrun_count_text(plan)}; master {escape(plan.master_addr)}:{plan.master_port} "
              f"({escape(planned.port_note)})")
    for node in plan.nodes:
        out.print(f"\n[bold]{escape(node.node)}[/] node_rank {node.node_rank}, {node.local_workers} "
                  f"rank(s) in {escape(node.job_dir)}")
        shared = shared_msrun_note(node)
        if shared is not None:
            out.print(f"[yellow]{escape(shared)}[/] (docs/jobs.md)")
        # as written, never wrapped or cut: this is what will run
        out.print(node.script, markup=False, highlight=False, soft_wrap=True, end="")
        if node.container_script is not None:
            out.print("[dim]in the container:[/]")
            out.print(node.container_script, markup=False, highlight=False, soft_wrap=True, end="")
