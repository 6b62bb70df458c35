"""`ascend-console status JOB`: one job node by node (rank, state, pid, exit code, where its logs are)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from rich.console import Group
from rich.markup import escape
from rich.table import Table

from console import exitcodes
from console.commands.jobs import STATE_STYLE, add_view_arguments, refreshed, report_failures, with_store
from console.jobs.view import (
    age_text,
    event_document,
    failure_document,
    job_document,
    log_path,
    node_state_text,
    state_text,
    unknown_job_text,
    when_text,
)
from console.render import print_json, stderr_console, stdout_console
from console.store import EventRecord, JobRecord, LaunchRecord, Store, UnknownJob
from remote.inventory import Cluster

HELP = "show one job on every node: rank, state, pid, exit code, job directory, logs, last events"
EVENTS_SHOWN = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="the job id (`ascend-console jobs --all` lists them)")
    add_view_arguments(parser, "the job")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    return with_store(show_status, args, cluster)


def show_status(store: Store, args: argparse.Namespace, cluster: Cluster) -> int:
    try:
        job = store.job(args.job)
    except UnknownJob as missing:
        stderr_console().print(f"ascend-console status: {escape(unknown_job_text(missing, _ids(store)))}")
        return exitcodes.USAGE
    failures = [] if args.no_refresh or job.finished else [
        f for r in refreshed(store, cluster, [job.id], args.timeout) for f in r.failures]
    job, launches = store.job(job.id), store.launches(job.id)
    events = store.events(job.id, last=EVENTS_SHOWN)
    now = time.time()
    if args.json:
        print_json({**job_document(job, launches, now=now),
                    "events": [event_document(e) for e in events],
                    "failures": [failure_document(f) for f in failures]})
    else:
        report_failures(failures)
        stdout_console().print(status_view(job, launches, events, now))
    return exitcodes.UNREACHABLE if failures else exitcodes.OK


def _ids(store: Store) -> list[str]:
    return [job.id for job in store.jobs()]


def status_view(job: JobRecord, launches: Sequence[LaunchRecord], events: Sequence[EventRecord],
                now: float) -> Group:
    style = STATE_STYLE.get(job.state, "white")
    head = (f"[bold]{escape(job.id)}[/]  [{style}]{state_text(job)}[/]  cluster {escape(job.cluster_name)}"
            f"  started {when_text(job.created_at)} ({age_text(now - job.created_at)} ago)")
    nodes = Table(title_justify="left", title="nodes")
    for column in ("rank", "node", "state", "pid", "exit", "job dir", "logs", "note"):
        nodes.add_column(column, overflow="fold", no_wrap=column in ("rank", "pid", "exit"))
    for launch in launches:
        nodes.add_row(str(launch.node_rank), escape(launch.node), escape(node_state_text(launch)),
                      _text(launch.pid), _text(launch.exit_code), escape(launch.job_dir),
                      escape(log_path(job, launch)), escape(launch.reason))
    history = Table(title="last events", title_justify="left")
    for column in ("time", "node", "kind", "message"):
        history.add_column(column, overflow="fold")
    for event in events:
        history.add_row(when_text(event.time), escape(event.node or ""), escape(event.kind),
                        escape(event.message))
    return Group(head, nodes, history if events else "no events")


def _text(value: int | None) -> str:
    return "" if value is None else str(value)
