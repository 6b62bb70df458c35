"""`ascend-console job JOB`: the TUI, opened on one job's screen (live logs, loss chart, errors, ranks)."""

from __future__ import annotations

import argparse

from rich.markup import escape

from console import exitcodes
from console.commands.jobs import with_store
from console.jobs.lookup import find_job, unknown_job_text
from console.render import stderr_console
from console.store import Store, UnknownJob
from remote.inventory import Cluster

HELP = "open the console on one job: its logs live, the loss chart, errors with who failed first, every rank"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="the job id, a unique prefix of it, or the job's name")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    return with_store(_open, args, cluster)


def _open(store: Store, args: argparse.Namespace, cluster: Cluster) -> int:
    try:
        found = find_job(store, args.job)
    except UnknownJob as missing:
        stderr_console().print(f"ascend-console job: {escape(unknown_job_text(missing, store))}")
        return exitcodes.USAGE
    from console.cli import run_dashboard

    return run_dashboard(args, cluster, mode="jobs", job_id=found.job.id)
