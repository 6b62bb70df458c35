"""`ascend-console status JOB`: one job node by node (rank, state, pid, exit code, where its logs are);
a serve job's endpoint (the URL on its node) and whether it serves now, asked on the node."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table

from console import exitcodes
from console.commands.jobs import (
    STATE_STYLE,
    add_view_arguments,
    fail_broken,
    named_job,
    refreshed,
    report_failures,
    with_store,
)
from console.fittable import Column, FitTable
from console.jobs.endpoint import probe_endpoint
from console.jobs.failure import FirstFailure
from console.jobs.follow import catch_up
from console.jobs.logview import RankProgress, rank_progress
from console.jobs.refresh import job_cluster
from console.jobs.servespec import ServeEndpoint
from console.jobs.view import (
    age_text,
    event_document,
    failure_document,
    job_document,
    log_path,
    node_state_text,
    state_text,
    when_text,
)
from console.records import EventRecord, JobRecord, LaunchRecord
from console.render import print_json, stderr_console, stdout_console
from console.store import Store
from model.logsummary import stalled
from remote.inventory import Cluster
from remote.pool import NodePool

HELP = "show one job on every node: rank, state, pid, exit code, job directory, logs, last events"
EVENTS_SHOWN = 10
NODE_COLUMNS = (Column("rank", kind="number", justify="right"), Column("node", kind="number"),
                Column("state"), Column("pid", kind="number", drop=2, justify="right"),
                Column("exit", kind="number", drop=1, justify="right"), Column("job dir", kind="path"),
                Column("logs", kind="path"), Column("note"))
"""At 80 columns the paths go under the table, whole, one a line (`node0 job dir: /…`), then pid."""
EVENT_COLUMNS = (Column("time", kind="number"), Column("node", kind="number"), Column("kind", kind="number"),
                 Column("message"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="the job id, a unique prefix of it, or the job's name "
                                                   "(`ascend-console jobs --all` lists them)")
    add_view_arguments(parser, "the job")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    return with_store(show_status, args, cluster)


def show_status(store: Store, args: argparse.Namespace, cluster: Cluster) -> int:
    err = stderr_console()
    job = named_job(store, args.job, "status")
    if isinstance(job, int):
        return job
    failures = [] if args.no_refresh or job.finished else [
        f for r in refreshed(store, cluster, [job.id], args.timeout) for f in r.failures]
    if not args.no_refresh and job.finished:  # a run found lost by a console before this check
        fail_broken(store, cluster, [job.id], args.timeout)
    unread = [] if args.no_refresh else _read_logs(store, store.job(job.id), cluster, args.timeout)
    job, launches = store.job(job.id), store.launches(job.id)
    events = store.events(job.id, last=EVENTS_SHOWN)
    progress = rank_progress(store.metrics(job.id))
    serving = _serving(store, job, cluster, ask=not args.no_refresh, timeout=args.timeout)
    now = time.time()
    # silence is judged only on logs just read: the store's copy would make every rank look hung
    read = [] if args.no_refresh else [lr for lr in launches if lr.node not in unread]
    hung = {(p.node, p.rank) for p in stalled_ranks(job, read, progress, now)}
    if args.json:
        print_json({**job_document(job, launches, now=now), **(serving or {}),
                    "first_failure": job.first_failure,
                    "stalled": [{"node": node, "rank": rank} for node, rank in sorted(hung)],
                    "progress": [{**p.as_json(), "stalled": (p.node, p.rank) in hung} for p in progress],
                    "events": [event_document(e) for e in events],
                    "failures": [failure_document(f) for f in failures],
                    "logs_unread": unread})
    else:
        report_failures(failures)
        for node in unread:
            err.print(f"[yellow]logs not read[/] {escape(node)}: no answer within {args.timeout:g} s")
        stdout_console().print(status_view(job, launches, events, now, progress, serving=serving,
                                           hung=[p for p in progress if (p.node, p.rank) in hung]))
    return exitcodes.UNREACHABLE if failures or unread else exitcodes.OK


def _serving(store: Store, job: JobRecord, cluster: Cluster, *, ask: bool,
             timeout: float) -> dict[str, object] | None:
    """A serve job's `endpoint` (on its node) and `ready`: it runs and, asked on the node now, /health and
    /v1/models answer (without asking: it was ready once and still runs, as last recorded)."""
    endpoint = ServeEndpoint.from_plan(job.plan)
    if endpoint is None:
        return None
    found: dict[str, object] = {"endpoint": endpoint.url, "serve_node": endpoint.node, "ready": False}
    if job.state != "running":
        return found
    if not ask:
        return {**found, "ready": any(e.kind == "ready" for e in store.events(job.id))}
    job_nodes = job_cluster(job.cluster_file, job.cluster_name, cluster)
    if isinstance(job_nodes, str):
        return {**found, "not_asked": job_nodes}
    with NodePool(job_nodes) as pool:
        probe = probe_endpoint(pool, endpoint, timeout=timeout)
    return {**found, "ready": probe.ready} | ({} if probe.ready else {"waiting_for": probe.waiting_for(),
                                                                      "probe_error": probe.error})


def _read_logs(store: Store, job: JobRecord, cluster: Cluster, timeout: float) -> list[str]:
    """Bring the store's loss history and errors up to date with the job's logs; nodes not read."""
    job_nodes = job_cluster(job.cluster_file, job.cluster_name, cluster)
    if isinstance(job_nodes, str):
        return sorted(launch.node for launch in store.launches(job.id))
    with NodePool(job_nodes) as pool, stderr_console().status("reading the logs…"):
        return catch_up(store, pool, job, timeout=timeout)


def stalled_ranks(job: JobRecord, launches: Sequence[LaunchRecord], progress: Sequence[RankProgress],
                  now: float) -> list[RankProgress]:
    """The ranks of a running node (as just read from it) whose last loss line is older than many of
    their step times (model.logsummary.stalled): hung, though their processes still run."""
    running = {launch.node for launch in launches if launch.state == "running"}
    if job.finished:
        return []
    return [p for p in progress if p.node in running and stalled(now - p.time, p.per_step_ms)]


def status_view(job: JobRecord, launches: Sequence[LaunchRecord], events: Sequence[EventRecord],
                now: float, progress: Sequence[RankProgress] = (), *,
                serving: dict[str, object] | None = None, hung: Sequence[RankProgress] = ()) -> Group:
    style = STATE_STYLE.get(job.state, "white")
    head = (f"[bold]{escape(job.id)}[/]  [{style}]{state_text(job)}[/]  cluster {escape(job.cluster_name)}"
            f"  started {when_text(job.created_at)} ({age_text(now - job.created_at)} ago)")
    for rank in hung:
        head += (f"\n[bold red]STALLED[/] {escape(rank.node)} rank {rank.rank}: no loss line for "
                 f"{age_text(now - rank.time)}")
    nodes = FitTable(NODE_COLUMNS, [
        [str(launch.node_rank), escape(launch.node), escape(node_state_text(launch)), _text(launch.pid),
         _text(launch.exit_code), escape(launch.job_dir), escape(log_path(job, launch)),
         escape(launch.reason)]
        for launch in launches], title="nodes", key=1)
    history = FitTable(EVENT_COLUMNS, [
        [when_text(event.time), escape(event.node or ""), escape(event.kind), escape(event.message)]
        for event in events], title="last events")
    parts: list[RenderableType] = [head]
    if serving is not None:
        ready = "[green]ready[/]" if serving["ready"] else "[yellow]not ready[/]"
        parts.append(f"endpoint {escape(str(serving['endpoint']))} on {escape(str(serving['serve_node']))}: "
                     f"{ready}  (reach it here: ascend-console forward {escape(job.id)})")
    if job.first_failure is not None:
        failure = FirstFailure(**job.first_failure)
        parts.append(f"[bold red]first failure[/] {escape(failure.describe())}"
                     + (f" at {when_text(failure.time)}" if failure.time else ""))
    ranks = progress_table(progress, finished=job.finished) if progress else "no loss lines read yet"
    parts += [nodes, *([] if serving is not None else [ranks]), history if events else "no events"]
    return Group(*parts)


def progress_table(progress: Sequence[RankProgress], *, finished: bool) -> Table:
    table = Table(title="progress", title_justify="left")
    for column in ("node", "rank", "step", "loss", "step time", "ETA"):
        table.add_column(column, no_wrap=True)
    for rank in progress:
        steps = f"{rank.step}/{rank.total_steps}" if rank.total_steps else str(rank.step)
        loss = rank.loss_text or ("N/A" if rank.loss is None else f"{rank.loss:.4f}")
        step_time = "" if rank.per_step_ms is None else f"{rank.per_step_ms:.0f} ms"
        eta = "" if rank.eta_seconds is None or finished else age_text(rank.eta_seconds)
        table.add_row(escape(rank.node), str(rank.rank), steps, loss, step_time, eta)
    return table


def _text(value: int | None) -> str:
    return "" if value is None else str(value)
