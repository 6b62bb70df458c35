"""`ascend-console demo`: the whole path on the embedded local cluster (console/jobs/demo.py), printed.

Check the nodes, prepare the embedded corpus, plan and launch the tiny DeepSeek-V3 under msrun, follow
its loss until training ends, ask the trained model a question. Exit 0 only when training ended well
with its last loss lower than its first; otherwise 1, with the reason.
"""

from __future__ import annotations

import argparse

from rich.markup import escape

from console import exitcodes
from console.arguments import positive_int, positive_seconds
from console.jobs.demo import (
    DEMO_QUESTION,
    TRAIN_LIMIT,
    DemoOptions,
    DemoProgress,
    DemoResult,
    run_demo,
    shown_step,
)
from console.render import print_error, stderr_console, stdout_console
from console.store import Store, StoreError
from remote.inventory import Cluster, embedded_default_path, load_cluster
from remote.pool import NodePool

HELP = ("the demo on the embedded local cluster: check, prepare the corpus, launch the tiny DeepSeek-V3 "
        "under msrun, follow its loss to the end, ask the trained model")
STAGE_TITLES = {"check": "the nodes", "corpus": "the embedded corpus", "plan": "the plan",
                "launch": "launch", "train": "training", "end": "the end", "ask": "the trained model"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--headless", action="store_true",
                        help="print the progress instead of opening the console (for CI and scripts)")
    parser.add_argument("--question", default=DEMO_QUESTION,
                        help=f"what the trained model is asked to continue (default: {DEMO_QUESTION!r})")
    parser.add_argument("--train-limit", type=positive_seconds, default=TRAIN_LIMIT, metavar="SECONDS",
                        help=f"stop the job and fail if training has not ended by then "
                             f"(default: {TRAIN_LIMIT:g})")
    parser.add_argument("--steps", type=positive_int, help=argparse.SUPPRESS)  # the suite's short run


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    if args.cluster is None:  # the demo's cluster is the embedded one, whatever the user's default
        cluster = load_cluster(embedded_default_path())
    options = DemoOptions(question=args.question, steps=args.steps, train_limit=args.train_limit)
    if not args.headless:
        from console.cli import run_dashboard

        return run_dashboard(args, cluster, mode="jobs", demo=options)
    try:
        store = Store.open_default()
    except StoreError as exc:
        print_error(str(exc))
        return exitcodes.CONFIG
    printer = DemoPrinter()
    with store, NodePool(cluster) as pool:
        try:
            result = run_demo(pool, store, options, progress=printer.show)
        except KeyboardInterrupt:
            job = printer.job_id
            if job is not None:
                stderr_console().print(f"stopped the demo; job {escape(job)} goes on "
                                       f"(`ascend-console stop {escape(job)}` stops it)")
            raise
    return report(result)


class DemoPrinter:
    """Each event on its own line under a title per step; of the loss, the first step, every tenth and
    the last."""

    def __init__(self) -> None:
        self.out = stdout_console()
        self.stage: str | None = None
        self.job_id: str | None = None

    def show(self, event: DemoProgress) -> None:
        self.job_id = event.job_id or self.job_id
        if event.stage != self.stage:
            self.stage = event.stage
            self.out.print(f"[bold]== {STAGE_TITLES[event.stage]}[/]")
        if event.step is not None and not shown_step(event.step, event.total):
            return
        where = f"{event.node}: " if event.node else ""
        mark = "" if event.ok else "[red]failed[/] "
        text = (where + event.message).rstrip().replace("\n", "\n    ")
        self.out.print(f"  {mark}{escape(text)}", highlight=False)


def report(result: DemoResult) -> int:
    out = stdout_console()
    if not result.ok:
        print_error(f"demo failed: {result.reason}")
        return exitcodes.NODE_FAILED
    out.print(f"[green]demo passed[/]: {escape(result.reason)}")
    if result.answer is not None and not result.answer.ok:
        out.print(f"(the model could not be asked: {escape(str(result.answer.error))})")
    job = result.start.job_id
    if job is not None:
        out.print(f"the job: ascend-console status {escape(job)}; in the console: ascend-console job "
                  f"{escape(job)}")
    return exitcodes.OK
