"""`ascend-console stop JOB`: SIGTERM every rank on every node, SIGKILL after the timeout, verify."""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from pathlib import Path

from rich.markup import escape

from console import exitcodes
from console.arguments import positive_int
from console.commands.jobs import with_store
from console.jobs.lookup import find_job, unknown_job_text
from console.jobs.service import StopOutcome, stop_job
from console.render import print_error, print_json, stderr_console, stdout_console
from console.stopview import StopBoard
from console.store import Store, UnknownJob
from remote.inventory import Cluster, InventoryError, load_cluster
from remote.launch import StopReport
from remote.pool import NodePool

HELP = "stop a job on every node (SIGTERM, then SIGKILL after --timeout) and verify nothing is left"
MIN_PREFIX = 8
"""Characters of an id prefix `stop` takes at least: `stop 2` would stop whichever job is alone in
starting with 2 (job ids start with the date, so 8 characters name a day)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help=f"the job id, a unique prefix of it (at least "
                        f"{MIN_PREFIX} characters), or the name of exactly one job "
                        "(see `ascend-console jobs`)")
    parser.add_argument("--timeout", type=positive_int, default=30, metavar="SECONDS",
                        help="seconds the ranks get to save and exit before SIGKILL (default: 30)")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    return with_store(_stop, args, cluster)


def _stop(store: Store, args: argparse.Namespace, cluster: Cluster) -> int:
    err = stderr_console()
    try:
        found = find_job(store, args.job)
    except UnknownJob as exc:
        print_error(unknown_job_text(exc, store))
        return exitcodes.USAGE
    if found.note:  # stopping is not undone: never on a guess between jobs of one name
        print_error(f"{found.note}; give the job id")
        return exitcodes.USAGE
    if found.by == "prefix" and len(args.job) < MIN_PREFIX:  # nor on a stray keystroke
        print_error(f"{args.job!r} is only the start of job {found.job.id}: "
                  f"give at least {MIN_PREFIX} characters of its id (or all of it)")
        return exitcodes.USAGE
    record = found.job
    job_cluster = _cluster_of(record.cluster_file, cluster)
    known = {node.name for node in job_cluster.nodes}
    missing = sorted({lr.node for lr in store.launches(record.id)} - known)
    if missing:
        print_error(f"the job ran on {', '.join(missing)}, which cluster "
                    f"{job_cluster.name} ({job_cluster.source}) does not have: give its "
                    "cluster file with -c")
        return exitcodes.CONFIG
    board = StopBoard(err, sorted({lr.node for lr in store.launches(record.id)}))
    with NodePool(job_cluster) as pool, err.status(board) if board.live else nullcontext():
        outcome = stop_job(store, record.id, pool, grace=args.timeout, progress=board)
    reports = outcome.reports
    if record.finished:
        err.print(f"{escape(record.id)} had already ended ({record.state}); cleaned up what was left")
    if args.json:
        print_json({"job_id": record.id, "stopped": outcome.ok, "checkpoint": _checkpoint_record(outcome),
                    "nodes": [{"node": r.node, "ok": r.ok, "found": list(r.found), "killed": list(r.killed),
                               "remaining": list(r.remaining), "on_npus": list(r.on_npus),
                               "unverified": list(r.unverified),
                               "error": None if r.failure is None else r.failure.describe()}
                              for r in reports]})
    else:
        _show(reports)
        _show_checkpoint(outcome)
    if all(r.ok for r in reports):
        return exitcodes.OK
    return exitcodes.UNREACHABLE if any(r.failure is not None for r in reports) else exitcodes.NODE_FAILED


def _show(reports: tuple[StopReport, ...]) -> None:
    out = stdout_console()
    for r in reports:
        if r.failure is not None:
            out.print(f"[red]{escape(r.node)}[/]: not stopped: {escape(r.failure.describe())}")
        elif r.remaining or r.on_npus:
            left = " ".join(map(str, r.remaining or r.on_npus))
            where = "on its NPUs" if r.on_npus and not r.remaining else "left"
            out.print(f"[red]{escape(r.node)}[/]: processes {where}: {left}")
        elif r.unverified:
            out.print(f"[red]{escape(r.node)}[/]: could not verify: {escape('; '.join(r.unverified))}")
        else:
            killed = f" ({len(r.killed)} needed SIGKILL)" if r.killed else ""
            out.print(f"[green]{escape(r.node)}[/]: no process of the job left{killed}")


def _checkpoint_record(outcome: StopOutcome) -> dict[str, str | None] | None:
    found = outcome.checkpoint
    return None if found is None else {"node": found.node, "path": found.path, "error": found.error}


def _show_checkpoint(outcome: StopOutcome) -> None:
    """The checkpoint rank 0 wrote, whole on its own line (a path to copy), or why there is none."""
    found = outcome.checkpoint
    if found is None:
        return
    out = stdout_console()
    if found.path is not None:
        out.print(f"checkpoint (rank 0, on {escape(found.node)}):")
        out.print(escape(found.path), soft_wrap=True)
    else:
        out.print(f"[yellow]no checkpoint[/]: {escape(found.error or '')}")


def _cluster_of(path: str, given: Cluster) -> Cluster:
    """The cluster the job was launched on (its file may have moved: then the one given)."""
    if path == given.source:
        return given
    try:
        return load_cluster(Path(path))
    except InventoryError:
        return given
