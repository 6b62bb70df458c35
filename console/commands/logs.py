"""`ascend-console logs`: a job's logs from every node, or log files on this machine, read as events.

`logs JOB` prints what the job's followed files hold (rank 0, the rank that prints the real loss, msrun's
own output, and every rank of a node where a worker failed), each line prefixed by node and rank;
`--follow` keeps going until every node's run has ended. `--json` prints one event per line instead
(docs/logs-json.md). What is read is also recorded in the store (loss history, errors, first failure).
`logs --file PATH...` parses copied logs of any MindFormers version; `--summary` condenses them.
"""

from __future__ import annotations

import argparse
import queue
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape

from console import exitcodes
from console.arguments import positive_int, positive_seconds
from console.commands.jobs import with_store
from console.jobs.follow import JobFollow, JobLogBatch
from console.jobs.logprinter import LogPrinter
from console.jobs.lookup import find_job, unknown_job_text
from console.jobs.refresh import job_cluster, refresh_on
from console.render import print_json, stderr_console, stdout_console
from console.store import JobRecord, Store, UnknownJob
from model.logevents import LogEventParser
from model.logsummary import summarize, summary_lines
from remote import nodeset
from remote.inventory import Cluster
from remote.pool import NodePool

HELP = "a job's logs from every node (--follow: until it ends), or log files here (--file)"
READ_TIMEOUT = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", nargs="?", metavar="JOB",
                        help="job id, a unique prefix of it, or the job's name")
    parser.add_argument("--file", nargs="+", type=Path, metavar="PATH",
                        help="parse these log files on this machine instead of a job's")
    parser.add_argument("--rank", type=int, action="append", metavar="N",
                        help="show this rank's log (repeatable; default: rank 0 and the last rank)")
    parser.add_argument("--nodes", metavar="SET", help="only these nodes of the job, e.g. node[0-3]")
    parser.add_argument("--follow", "-f", action="store_true",
                        help="keep following until the job ends (exit 0 if it ended well, 1 if not)")
    parser.add_argument("--since-step", type=positive_int, metavar="N",
                        help="rank logs from the loss line of step N on")
    parser.add_argument("--errors", action="store_true", help="only errors, each with its lines")
    parser.add_argument("--json", action="store_true", help="one JSON object per event per line")
    parser.add_argument("--summary", action="store_true",
                        help="with --file: steps, losses, step time, throughput and the errors found")
    parser.add_argument("--timeout", type=positive_seconds, default=READ_TIMEOUT, metavar="SECONDS",
                        help=f"without --follow: give up on a node that sends nothing for this long "
                             f"(default: {READ_TIMEOUT:g})")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    if args.file:
        if args.job or args.follow or args.nodes:
            raise exitcodes.UsageError("--file reads files on this machine: no JOB, --follow or --nodes "
                                       "with it")
        return show_files(args.file, args)
    if args.job is None:
        raise exitcodes.UsageError("name a JOB (`ascend-console jobs --all` lists them), or give --file PATH")
    if args.summary:
        raise exitcodes.UsageError("--summary goes with --file (for a job: `ascend-console status JOB`)")
    return with_store(show_job_logs, args, cluster)


# --- files on this machine --------------------------------------------------------------------


def show_files(paths: Sequence[Path], args: argparse.Namespace) -> int:
    printer = LogPrinter(json=args.json, errors_only=args.errors, since_step=args.since_step)
    everything = []
    for path in paths:
        try:
            with path.open("r", encoding="utf-8", errors="replace", newline="\n") as handle:
                lines = [line.rstrip("\n") for line in handle]
        except OSError as exc:
            stderr_console().print(f"[red]error[/]: {escape(str(path))}: {escape(exc.strerror or str(exc))}")
            return exitcodes.CONFIG
        parser = LogEventParser()
        events = parser.feed(lines) + parser.flush()
        everything += events
        if not args.summary:
            printer.file(str(path), lines, events)
    if args.summary:
        summary = summarize(everything)
        if args.json:
            print_json(summary.as_json())
        else:
            stdout_console().print("\n".join(escape(line) for line in summary_lines(summary)))
    return exitcodes.OK


# --- a job's files on its nodes -----------------------------------------------------------------


def show_job_logs(store: Store, args: argparse.Namespace, cluster: Cluster) -> int:
    err = stderr_console()
    try:
        found = find_job(store, args.job)
    except UnknownJob as missing:
        err.print(f"ascend-console logs: {escape(unknown_job_text(missing, store))}")
        return exitcodes.USAGE
    if found.note:
        err.print(escape(found.note))
    job = found.job
    job_nodes = job_cluster(job.cluster_file, job.cluster_name, cluster)
    if isinstance(job_nodes, str):
        err.print(f"[red]error[/]: {escape(job_nodes)}")
        return exitcodes.CONFIG
    with NodePool(job_nodes) as pool:
        return follow_logs(store, pool, job, LogOptions.from_args(args))


@dataclass(frozen=True)
class LogOptions:
    """What `logs` (and `launch --follow`) show of a job."""

    follow: bool = False
    json: bool = False
    errors_only: bool = False
    since_step: int | None = None
    ranks: tuple[int, ...] | None = None
    nodes: str | None = None
    timeout: float = READ_TIMEOUT

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> LogOptions:
        return cls(follow=args.follow, json=args.json, errors_only=args.errors, since_step=args.since_step,
                   ranks=tuple(args.rank) if args.rank else None, nodes=args.nodes, timeout=args.timeout)


def follow_logs(store: Store, pool: NodePool, job: JobRecord, options: LogOptions) -> int:
    """Print the job's logs (to their end, or until the job ends with `follow`); the exit code."""
    nodes = nodeset.expand(options.nodes) if options.nodes else None
    batches: queue.Queue[JobLogBatch] = queue.Queue()
    follow = JobFollow(job, pool, batches.put, store=store, ranks=options.ranks, nodes=nodes,
                       until_eof=not options.follow)
    if not follow.nodes:
        stderr_console().print(f"[red]error[/]: none of {escape(options.nodes or '')} runs job "
                               f"{escape(job.id)}")
        return exitcodes.USAGE
    printer = LogPrinter(json=options.json, errors_only=options.errors_only, since_step=options.since_step,
                         ranks=options.ranks)
    follow.start()
    try:
        silent = _drain(follow, batches, printer, idle_limit=None if options.follow else options.timeout)
    except KeyboardInterrupt:
        stderr_console().print(f"stopped following; job {escape(job.id)} goes on "
                               f"(`ascend-console stop {escape(job.id)}` stops it)")
        return exitcodes.INTERRUPTED
    finally:
        follow.stop()
        while not batches.empty():
            printer.batch(batches.get())
    for node in silent:
        stderr_console().print(f"[red]unreachable[/] {escape(node)}: nothing read from it in "
                               f"{options.timeout:g} s")
    if not options.follow:
        return exitcodes.UNREACHABLE if silent else exitcodes.OK
    refresh_on(store, pool, [store.job(job.id)])
    codes = follow.exit_codes
    return exitcodes.OK if codes and not any(codes.values()) else exitcodes.NODE_FAILED


def _drain(follow: JobFollow, batches: queue.Queue[JobLogBatch], printer: LogPrinter,
           idle_limit: float | None) -> list[str]:
    """Print batches until the follow is done; the nodes that stayed silent past `idle_limit`."""
    heard = {node: time.monotonic() for node in follow.nodes}
    while not (follow.wait(0) and batches.empty()):
        try:
            batch = batches.get(timeout=0.2)
        except queue.Empty:
            if idle_limit is not None:
                silent = [n for n, at in heard.items() if time.monotonic() - at > idle_limit
                          and n not in follow.done_nodes]
                if silent:
                    return silent
            continue
        if batch.lines or batch.events or batch.exit_code is not None:
            heard[batch.node] = time.monotonic()
        printer.batch(batch)
    return []
