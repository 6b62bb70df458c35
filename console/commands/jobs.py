"""`ascend-console jobs`: the jobs in the store, their states refreshed from the nodes first."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from rich import box
from rich.markup import escape
from rich.table import Table

from console import exitcodes
from console.arguments import positive_seconds
from console.jobs.lookup import find_job, unknown_job_text
from console.jobs.lostrun import fail_lost_runs
from console.jobs.refresh import DEFAULT_TIMEOUT, JobRefresh, job_cluster, refresh_jobs
from console.jobs.view import age_text, failure_document, job_document, nodes_text, state_text, when_text
from console.records import JobRecord, LaunchRecord
from console.render import print_error, print_json, stderr_console, stdout_console
from console.store import Store, StoreError, UnknownJob
from remote.inventory import Cluster
from remote.jobstate import NodeQueryFailure

HELP = "list jobs (not yet finished, or finished since last asked) with their nodes' states"
STATE_STYLE = {
    "running": "green", "starting": "cyan", "launching": "cyan", "stopping": "yellow",
    "exited": "green", "failed": "bold red", "stopped": "yellow", "lost": "red", "planned": "dim",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true", help="every job in the store, finished ones too")
    add_view_arguments(parser, "the jobs")


def add_view_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """--json, --no-refresh and --timeout, as `jobs` and `status` both take them."""
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON")
    parser.add_argument("--no-refresh", action="store_true",
                        help="show what the store holds without asking the nodes")
    parser.add_argument("--timeout", type=positive_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"per node, when refreshing (default: {DEFAULT_TIMEOUT:g})")


def with_store(work: Callable[[Store, argparse.Namespace, Cluster], int], args: argparse.Namespace,
               cluster: Cluster) -> int:
    """`work` on the user's store; an unusable store is a configuration error, with the file named."""
    try:
        with Store.open_default() as store:
            return work(store, args, cluster)
    except StoreError as exc:
        print_error(str(exc))
        return exitcodes.CONFIG


def named_job(store: Store, reference: str, command: str) -> JobRecord | int:
    """The job a user named (id, unique id prefix or name), saying on stderr how a name was chosen;
    or the usage exit code, having said why there is none."""
    try:
        found = find_job(store, reference)
    except UnknownJob as missing:
        print_error(unknown_job_text(missing, store))
        return exitcodes.USAGE
    if found.note:
        stderr_console().print(escape(found.note))
    return found.job


def named_job_and_cluster(store: Store, reference: str, command: str, cluster: Cluster
                          ) -> tuple[JobRecord, Cluster] | int:
    """The job a user named and the cluster it ran on; or the exit code, having said why not."""
    job = named_job(store, reference, command)
    if isinstance(job, int):
        return job
    nodes = job_cluster(job.cluster_file, job.cluster_name, cluster)
    if isinstance(nodes, str):
        print_error(nodes)
        return exitcodes.CONFIG
    return job, nodes


def refreshed(store: Store, cluster: Cluster, job_ids: Sequence[str] | None, timeout: float
              ) -> list[JobRefresh]:
    """The jobs read again from their nodes; a job whose run vanished, or failed while other nodes run,
    is failed and stopped everywhere (console/jobs/lostrun.py), and said."""
    with stderr_console().status("asking the nodes…"):
        done = refresh_jobs(store, job_ids=job_ids, timeout=timeout, cluster=cluster)
    fail_broken(store, cluster, [r.job.id for r in done], timeout)
    return done


def fail_broken(store: Store, cluster: Cluster, job_ids: Sequence[str], timeout: float) -> None:
    """Fail and stop every job of `job_ids` whose run vanished or failed on a node, saying so."""
    err = stderr_console()
    with err.status("checking for runs that ended in failure…"):
        found = fail_lost_runs(store, cluster, job_ids, timeout=timeout)
    for lost in found:
        verified = "" if all(r.ok for r in lost.stopped) else " [red](not verified everywhere)[/]"
        err.print(f"[red]failed[/] {escape(lost.job_id)}: {escape(lost.said())}; the job failed and every "
                  f"node was stopped{verified}")


def report_failures(failures: Sequence[NodeQueryFailure]) -> None:
    """Nodes that could not be asked are said, never skipped in silence."""
    err = stderr_console()
    for failure in failures:
        err.print(f"[red]unreachable[/] {escape(failure.reason)}")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    return with_store(list_jobs, args, cluster)


def list_jobs(store: Store, args: argparse.Namespace, cluster: Cluster) -> int:
    # by default the jobs unfinished before this refresh: a job that ended meanwhile is seen once
    shown = {job.id for job in store.jobs(unfinished_only=not args.all)}
    results = [] if args.no_refresh else refreshed(store, cluster, None, args.timeout)
    failures = [f for r in results for f in r.failures]
    rows = [(job, store.launches(job.id)) for job in store.jobs() if job.id in shown]
    now = time.time()
    if args.json:
        print_json({"jobs": [job_document(job, launches, now=now) for job, launches in rows],
                    "failures": [failure_document(f) for f in failures]})
    else:
        report_failures(failures)
        stdout_console().print(jobs_table(rows, now))
    return exitcodes.UNREACHABLE if failures else exitcodes.OK


def jobs_table(rows: Sequence[tuple[JobRecord, Sequence[LaunchRecord]]], now: float) -> Table | str:
    if not rows:
        return "no unfinished jobs (`ascend-console jobs --all` lists finished ones too)"
    table = Table(title="jobs", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("id", "state", "nodes", "started", "age"):
        table.add_column(column, no_wrap=column != "nodes",
                         min_width=12 if column == "nodes" else None)
    for job, launches in rows:
        table.add_row(escape(job.id), f"[{STATE_STYLE.get(job.state, 'white')}]{state_text(job)}[/]",
                      escape(nodes_text(launches)), when_text(job.created_at, short=True),
                      age_text(now - job.created_at))
    return table
