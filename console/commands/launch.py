"""`ascend-console launch`: preflight, then one msrun per node, all or nothing; prints the job id."""

from __future__ import annotations

import argparse
import json
import time

from rich.markup import escape

from console import exitcodes
from console.arguments import positive_seconds
from console.commands.logs import LogOptions, follow_logs
from console.commands.plan import show_plan
from console.commands.preflight import add_force_argument, show_preflight
from console.jobs.preflight import Preflight, preflight
from console.jobs.request import JobRequest, add_job_arguments, request_or_exit_code
from console.jobs.service import SETTLE_SECONDS, LaunchOutcome, launch_job, record_plan
from console.render import print_json, stderr_console, stdout_console
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
        request = request_or_exit_code(args, cluster, pool)
        if isinstance(request, int):
            return request
        plan = request.plan
        with err.status(f"preflight on {len(request.nodes)} node(s)…"):
            verdict = preflight(request, pool, force=args.force)
        if not verdict.go:
            if args.json:
                print_json({"job_id": None, "launched": False, "preflight": verdict.as_json()})
            else:
                show_preflight(verdict)
                err.print("[red]not launched[/]: fix the checks above, or name them with --force")
            return exitcodes.NODE_FAILED
        try:
            store = Store.open_default()
        except StoreError as exc:
            err.print(f"[red]error[/]: {escape(str(exc))}")
            return exitcodes.CONFIG
        with store:
            try:
                record_plan(store, plan, cluster, template=str(args.template), at=time.time())
            except StoreError as exc:  # the same job id twice in one second
                err.print(f"[red]error[/]: {escape(str(exc))}: launch again, or give --name")
                return exitcodes.CONFIG
            with err.status("launching…") as status:
                outcome = launch_job(plan, pool, store, settle=args.settle, progress=status.update)
            code = _report(outcome, request, verdict, as_json=args.json, one_line=args.follow)
            if outcome.ok and args.follow:
                options = LogOptions(follow=True, json=args.json)
                return follow_logs(store, pool, store.job(plan.job_id), options)
            return code


def _report(outcome: LaunchOutcome, request: JobRequest, verdict: Preflight, *, as_json: bool,
            one_line: bool) -> int:
    """The outcome on the terminal; with `one_line`, JSON on one line (events follow it, one a line)."""
    err = stderr_console()
    plan = request.plan
    logs = {n.node: f"{n.job_dir}/logs" for n in plan.nodes}
    if as_json:
        document = {"job_id": plan.job_id, "launched": outcome.ok, "logs": logs,
                    "failure": None if outcome.failure is None else outcome.failure.__dict__,
                    "stopped": [r.node for r in outcome.stopped], "preflight": verdict.as_json()}
        if one_line:
            print(json.dumps(document), flush=True)
        else:
            print_json(document)
    elif outcome.failure is not None:
        show_plan(request)
        err.print(f"[red]launch failed[/]: {escape(outcome.failure.node)} ({outcome.failure.stage}): "
                  f"{escape(outcome.failure.reason)}")
        if outcome.stopped:
            started = ", ".join(r.node for r in outcome.stopped)
            err.print(f"stopped the node(s) already started: {escape(started)}")
    else:
        out = stdout_console()
        out.print(plan.job_id)
        for node, path in logs.items():
            err.print(f"  {escape(node)}: logs in {escape(path)}")
        job_id = escape(plan.job_id)
        err.print(f"follow with: ascend-console logs {job_id} --follow; status: ascend-console status "
                  f"{job_id}; stop: ascend-console stop {job_id}")
    return exitcodes.OK if outcome.ok else exitcodes.NODE_FAILED
