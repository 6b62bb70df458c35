"""`ascend-console job JOB`: the TUI, opened on one job's screen (live logs, loss chart, errors, ranks)."""

from __future__ import annotations

import argparse

from console.commands.jobs import named_job, with_store
from console.store import Store
from remote.inventory import Cluster

HELP = "open the console on one job: its logs live, the loss chart, errors with who failed first, every rank"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="the job id, a unique prefix of it, or the job's name")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    return with_store(_open, args, cluster)


def _open(store: Store, args: argparse.Namespace, cluster: Cluster) -> int:
    job = named_job(store, args.job, "job")
    if isinstance(job, int):
        return job
    from console.cli import run_dashboard

    return run_dashboard(args, cluster, mode="jobs", job_id=job.id)
