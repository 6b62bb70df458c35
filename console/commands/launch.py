"""`ascend-console launch`: preflight, then one msrun per node (a serve job: its server, until it serves),
all or nothing; prints the job id."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from rich.markup import escape
from rich.status import Status

from console import exitcodes
from console.arguments import positive_seconds
from console.commands.logs import LogOptions, follow_logs
from console.commands.plan import show_plan
from console.commands.preflight import add_force_argument, show_preflight
from console.jobargs import add_job_arguments, planned_or_exit_code
from console.jobs.launcher import LaunchProgress, LaunchResult, ProgressCallback, log_locations, run_launch
from console.jobs.request import SETTLE_SECONDS
from console.render import print_error, print_json, stderr_console, stdout_console
from console.store import Store, StoreError
from remote.inventory import Cluster
from remote.pool import NodePool

HELP = "launch a job: preflight, copy it to every node, start one msrun per node (all or nothing)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser)
    add_force_argument(parser)
    parser.add_argument("--settle", type=positive_seconds, default=SETTLE_SECONDS, metavar="SECONDS",
                        help=f"watch the start this long; a node failing in it fails the launch "
                             f"(default: {SETTLE_SECONDS:g})")
    parser.add_argument("--json", action="store_true",
                        help="print the outcome as JSON (with --follow: then one JSON event per line)")
    parser.add_argument("--follow", "-f", action="store_true",
                        help="then follow the job's logs until it ends (as `logs JOB --follow`)")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    err = stderr_console()
    with NodePool(cluster) as pool:
        planned = planned_or_exit_code(args, pool, force=args.force, settle=args.settle)
        if isinstance(planned, int):
            return planned
        try:
            store = Store.open_default()
        except StoreError as exc:
            print_error(str(exc))
            return exitcodes.CONFIG
        with store:
            with err.status(f"preflight on {len(planned.nodes)} node(s)…") as status:
                result = run_launch(planned, pool, store, progress=status_line(status))
            code = _report(result, as_json=args.json, one_line=args.follow)
            if result.ok and args.follow:
                options = LogOptions(follow=True, json=args.json)
                return follow_logs(store, pool, store.job(planned.plan.job_id), options)
            return code


def status_line(status: Status) -> ProgressCallback:
    """The launch's progress as the spinner's one line: the step, or the node that last answered."""
    def show(event: LaunchProgress) -> None:
        status.update(escape(event.message if event.node is None else f"{event.node}: {event.message}"))
    return show


def _report(result: LaunchResult, *, as_json: bool, one_line: bool) -> int:
    """The outcome on the terminal; with `one_line`, JSON on one line (events follow it, one a line)."""
    failure = result.failure
    if failure is not None and failure.stage == "preflight":
        return _report_no_go(result, as_json=as_json)
    if failure is not None and failure.stage == "record":  # the same job id twice in one second
        print_error(f"{failure.reason}: launch again, or give --name")
        return exitcodes.CONFIG
    plan = result.planned.plan
    logs = log_locations(plan)
    if as_json:
        document = {"job_id": plan.job_id, "launched": result.ok, "logs": logs,
                    "endpoint": None if plan.serve is None else plan.serve.url,
                    "failure": None if failure is None else asdict(failure),
                    "stopped": [r.node for r in result.stopped], "preflight": result.preflight.as_json()}
        if one_line:
            print(json.dumps(document), flush=True)
        else:
            print_json(document)
    elif failure is not None:
        _show_failure(result)
    else:
        _show_launched(result, logs)
    return exitcodes.OK if result.ok else exitcodes.NODE_FAILED


def _report_no_go(result: LaunchResult, *, as_json: bool) -> int:
    if as_json:
        print_json({"job_id": None, "launched": False, "preflight": result.preflight.as_json()})
    else:
        show_preflight(result.preflight)
        print_error("not launched: fix the checks above, or name them with --force")
    return exitcodes.NODE_FAILED


def _show_failure(result: LaunchResult) -> None:
    err = stderr_console()
    assert result.failure is not None
    show_plan(result.planned)
    failure = result.failure
    print_error(f"launch failed: {failure.node or 'all'} ({failure.stage}): {failure.reason}")
    if result.stopped:
        started = ", ".join(r.node for r in result.stopped)
        err.print(f"stopped the node(s) already started: {escape(started)}")


def _show_launched(result: LaunchResult, logs: dict[str, str]) -> None:
    err = stderr_console()
    job_id, serve = result.planned.plan.job_id, result.planned.plan.serve
    stdout_console().print(job_id)
    for node, path in logs.items():
        err.print(f"  {escape(node)}: logs in {escape(path)}")
    if serve is not None:
        err.print(f"serving at {escape(serve.url)} on {escape(serve.node)}; reach it here with: "
                  f"ascend-console forward {escape(job_id)}")
    err.print(f"follow with: ascend-console logs {escape(job_id)} --follow; status: ascend-console status "
              f"{escape(job_id)}; stop: ascend-console stop {escape(job_id)}")
