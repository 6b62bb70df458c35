"""`ascend-console logs`: a job's logs from every node, or log files on this machine, read as events.

`logs JOB` prints what the job's followed files hold (rank 0, the rank that prints the real loss, msrun's
own output, and every rank of a node where a worker failed), each line prefixed by node and rank;
`--follow` keeps going until every node's run has ended: its `exit_code` file read, or (asked every
RUN_CHECK seconds, console/jobs/runwatch.py) its run gone without one. Between the followers and the
terminal sits a bounded queue: a slow terminal slows the followers rather than filling memory.
`--json` prints one event per line instead (docs/logs-json.md). What is read is also recorded in the
store (loss history, errors, first failure). `logs JOB --answer` prints a predict job's answer, one entry
per prompt (console/jobs/answer.py), from what its logs hold now, else its result file. `logs --file
PATH...` parses copied logs of any MindFormers version; `--summary` condenses them.
"""

from __future__ import annotations

import argparse
import itertools
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape

from console import exitcodes
from console.arguments import positive_int, positive_seconds
from console.commands.jobs import named_job_and_cluster, with_store
from console.jobs.answer import JobAnswer, job_answer, speed_text
from console.jobs.ask import read_result_file
from console.jobs.follow import JobFollow, catch_up
from console.jobs.joblog import JobLogBatch
from console.jobs.logprinter import LogPrinter, shown
from console.jobs.refresh import refresh_on
from console.jobs.runwatch import RunWatch
from console.records import JobRecord
from console.render import print_error, print_json, stderr_console, stdout_console
from console.store import Store
from model.answers import RESULT_FILE
from model.logevents import LogEventParser
from model.logsummary import LogSummary, SummaryBuilder, summary_lines
from remote import nodeset
from remote.inventory import Cluster
from remote.pool import NodePool

HELP = "a job's logs from every node (--follow: until it ends), or log files here (--file)"
READ_TIMEOUT = 60.0
FILE_PART_LINES = 10_000
"""Lines of a file here read, parsed and printed at a time."""
QUEUE_BATCHES = 16
"""Batches waiting for the terminal (each at most the follower's batch_bytes of lines)."""
PUT_POLL = 0.2


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
    parser.add_argument("--answer", action="store_true",
                        help="a predict job's answer, one entry per prompt (with --json: one document)")
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
    if args.answer and (args.follow or args.errors or args.since_step or args.rank):
        raise exitcodes.UsageError("--answer prints the job's answer: no --follow, --errors, --since-step "
                                   "or --rank with it")
    return with_store(show_job_logs, args, cluster)


# --- files on this machine --------------------------------------------------------------------


def show_files(paths: Sequence[Path], args: argparse.Namespace) -> int:
    """Print (or summarise) files here, each read a part at a time: a 1 GB log is never held whole."""
    printer = LogPrinter(json=args.json, errors_only=args.errors, since_step=args.since_step)
    summary = SummaryBuilder() if args.summary else None
    for path in paths:
        try:
            _read_file(path, printer, summary)
        except OSError as exc:
            print_error(f"{path}: {exc.strerror or exc}")
            return exitcodes.code_for(exc)
    if summary is not None:
        _print_summary(summary.summary(), json=args.json)
    return exitcodes.OK


def _read_file(path: Path, printer: LogPrinter, summary: SummaryBuilder | None) -> None:
    parser = LogEventParser()
    first = 1
    with path.open("r", encoding="utf-8", errors="replace", newline="\n") as handle:
        while lines := [line.rstrip("\n") for line in itertools.islice(handle, FILE_PART_LINES)]:
            events = parser.feed(lines)
            if summary is not None:
                summary.add(events, str(path))
            else:
                printer.file(str(path), lines, events, first=first)
            first += len(lines)
    if summary is not None:
        summary.add(parser.flush(), str(path))
    else:
        printer.file(str(path), [], parser.flush(), first=first)


def _print_summary(summary: LogSummary, *, json: bool) -> None:
    if json:
        print_json(summary.as_json())
    else:
        stdout_console().print("\n".join(escape(shown(line)) for line in summary_lines(summary)))


# --- a job's files on its nodes -----------------------------------------------------------------


def show_job_logs(store: Store, args: argparse.Namespace, cluster: Cluster) -> int:
    found = named_job_and_cluster(store, args.job, "logs", cluster)
    if isinstance(found, int):
        return found
    job, job_nodes = found
    with NodePool(job_nodes) as pool:
        if args.answer:
            return show_answer(store, pool, job, as_json=args.json, timeout=args.timeout)
        return follow_logs(store, pool, job, LogOptions.from_args(args))


def show_answer(store: Store, pool: NodePool, job: JobRecord, *, as_json: bool, timeout: float) -> int:
    """The job's answer: its logs read up to now first (recorded in the store), else its result file."""
    if job.plan.get("kind", "train") != "predict":
        stderr_console().print(f"job {escape(job.id)} is a {escape(str(job.plan.get('kind', 'train')))} job: "
                               f"only a predict job answers (ask it with: ascend-console predict "
                               f"{escape(job.id)} --prompt TEXT)")
        return exitcodes.USAGE
    with stderr_console().status(f"reading {job.id}'s logs…"):
        silent = catch_up(store, pool, job, timeout=timeout)
        answer = job_answer(store.log_events(job.id, severity="info")) or read_result_file(pool, job,
                                                                                           timeout=timeout)
    for node in silent:
        stderr_console().print(f"[red]unreachable[/] {escape(node)}: not read in {timeout:g} s")
    if answer is None:
        stderr_console().print(f"no answer from job {escape(job.id)} yet: no rank printed a result line "
                               f"and no {RESULT_FILE} is in its job directory")
        return exitcodes.NODE_FAILED
    print_answer(answer, as_json=as_json)
    return exitcodes.OK


def print_answer(answer: JobAnswer, *, as_json: bool) -> None:
    """The answer's texts, one block a prompt, each with its timing when the logs told it."""
    if as_json:
        print_json(answer.as_json())
        return
    out = stdout_console()
    for index, text in enumerate(answer.texts):
        speed = answer.speed_of(index)
        head = f"── prompt {index + 1}" + (f" · {speed_text(speed)}" if speed is not None else "")
        out.print(escape(head), style="bold", highlight=False)
        out.print("\n".join(shown(line) for line in text.split("\n")), highlight=False, markup=False)


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


class BatchQueue:
    """The followers' batches on their way to the terminal: at most `size` wait; a follower putting
    one more waits for room (checking every PUT_POLL seconds whether the queue was closed)."""

    def __init__(self, size: int = QUEUE_BATCHES) -> None:
        self._queue: queue.Queue[JobLogBatch] = queue.Queue(size)
        self._closed = threading.Event()

    def put(self, batch: JobLogBatch) -> None:
        """Blocks while the queue is full; once closed, returns at once (the batch is not shown)."""
        while not self._closed.is_set():
            try:
                self._queue.put(batch, timeout=PUT_POLL)
            except queue.Full:
                continue
            return

    def get(self, timeout: float) -> JobLogBatch:
        """Raises queue.Empty after `timeout` seconds with nothing."""
        return self._queue.get(timeout=timeout)

    def empty(self) -> bool:
        return self._queue.empty()

    def close(self) -> None:
        """Followers blocked in put return: the command is ending."""
        self._closed.set()


def follow_logs(store: Store, pool: NodePool, job: JobRecord, options: LogOptions) -> int:
    """Print the job's logs (to their end, or until the job ends with `follow`); the exit code."""
    nodes = _nodes_asked(options.nodes)
    batches = BatchQueue()
    follow = JobFollow(job, pool, batches.put, store=store, ranks=options.ranks, nodes=nodes,
                       until_eof=not options.follow)
    _check_ranks(follow, options.ranks, job)
    if not follow.nodes:
        known = ", ".join(n.node for n in follow.layout.nodes)
        raise exitcodes.UsageError(f"--nodes {options.nodes}: none of them runs job {job.id} (it runs on "
                                   f"{known})")
    printer = LogPrinter(json=options.json, errors_only=options.errors_only, since_step=options.since_step,
                         ranks=options.ranks)
    watch = RunWatch(store, pool, job.id, follow) if options.follow else None
    follow.start()
    if watch is not None:
        watch.start()
    try:
        silent = _drain(follow, batches, printer, idle_limit=None if options.follow else options.timeout)
    except KeyboardInterrupt:
        stderr_console().print(f"stopped following; job {escape(job.id)} goes on "
                               f"(`ascend-console stop {escape(job.id)}` stops it)")
        return exitcodes.INTERRUPTED
    finally:
        if watch is not None:
            watch.stop()
        batches.close()
        follow.stop()
        while not batches.empty():
            printer.batch(batches.get(0))
    return _outcome(store, pool, job, follow, silent=silent, options=options)


def _outcome(store: Store, pool: NodePool, job: JobRecord, follow: JobFollow, *, silent: Sequence[str],
             options: LogOptions) -> int:
    """The exit code; what the printer has not said already (failures it has: in their batch)."""
    err = stderr_console()
    for node in silent:
        err.print(f"[red]unreachable[/] {escape(node)}: nothing read from it in {options.timeout:g} s")
    failures = follow.failures
    if not options.follow:
        return exitcodes.UNREACHABLE if silent else exitcodes.NODE_FAILED if failures else exitcodes.OK
    for node in sorted(follow.lost_nodes):
        err.print(f"[red]lost[/] {escape(node)}: its run ended without an exit code")
    refresh_on(store, pool, [store.job(job.id)])
    codes = follow.exit_codes
    ended_well = set(codes) >= set(follow.nodes) and not any(codes.values()) and not failures
    return exitcodes.OK if ended_well else exitcodes.NODE_FAILED


def _nodes_asked(pattern: str | None) -> list[str] | None:
    if not pattern:
        return None
    try:
        return nodeset.expand(pattern)
    except nodeset.NodeSetError as exc:
        raise exitcodes.UsageError(f"--nodes {pattern}: {exc}") from exc


def _check_ranks(follow: JobFollow, ranks: Sequence[int] | None, job: JobRecord) -> None:
    world = follow.layout.world
    wrong = sorted({r for r in ranks or () if not 0 <= r < world})
    if wrong:
        valid = "0" if world == 1 else f"0-{world - 1}"
        raise exitcodes.UsageError(f"--rank {', '.join(map(str, wrong))}: job {job.id} has ranks {valid}")


def _drain(follow: JobFollow, batches: BatchQueue, printer: LogPrinter,
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
