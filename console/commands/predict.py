"""`ascend-console predict JOB --prompt TEXT`: a finished training job's last checkpoint asked, by the
job's id alone (console/jobs/predict.py): found on its nodes, a predict job launched on the same nodes,
followed to its end, its answer printed (one entry per prompt, with the speed the logs told). Exit 0 with
an answer; 1 with the reason when there is no checkpoint, the launch or the run fails, or no answer came.
"""

from __future__ import annotations

import argparse

from rich.markup import escape

from console import exitcodes
from console.arguments import positive_seconds
from console.commands.jobs import named_job_and_cluster, with_store
from console.commands.launch import status_line
from console.commands.logs import print_answer
from console.jobargs import add_prompt_arguments, prompts_asked
from console.jobs.demo import TRAIN_LIMIT
from console.jobs.plan import PlanError
from console.jobs.predict import PredictAsk, PredictOutcome, predict_from
from console.render import print_error, print_json, stderr_console
from console.store import Store
from remote.inventory import Cluster
from remote.pool import NodePool

HELP = ("ask a finished training job's last checkpoint: a predict job on its nodes, followed to its end, "
        "its answer printed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="the training job: id, a unique prefix of it, or its name")
    add_prompt_arguments(parser)
    parser.add_argument("--limit", type=positive_seconds, default=TRAIN_LIMIT, metavar="SECONDS",
                        help=f"stop the predict job and fail if it has not ended by then "
                             f"(default: {TRAIN_LIMIT:g})")
    parser.add_argument("--json", action="store_true", help="print the outcome and the answer as JSON")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    try:
        prompts = prompts_asked(args)
    except PlanError as exc:
        raise exitcodes.UsageError(str(exc)) from exc
    if not prompts:
        raise exitcodes.UsageError("give a prompt: --prompt TEXT (repeatable) or --prompts FILE")
    ask = PredictAsk(prompts, args.max_new_tokens, limit=args.limit)
    return with_store(lambda store, _, given: predict(store, args.job, ask, given, as_json=args.json),
                      args, cluster)


def predict(store: Store, reference: str, ask: PredictAsk, cluster: Cluster, *, as_json: bool) -> int:
    found = named_job_and_cluster(store, reference, "predict", cluster)
    if isinstance(found, int):
        return found
    trained, nodes = found
    asking = f"asking {trained.id}'s last checkpoint…"
    with NodePool(nodes) as pool, stderr_console().status(asking) as status:
        outcome = predict_from(store, pool, trained, ask, progress=status_line(status))
    return report(outcome, as_json=as_json)


def report(outcome: PredictOutcome, *, as_json: bool) -> int:
    if as_json:
        print_json({"job_id": outcome.job_id, "checkpoint": outcome.checkpoint, "ok": outcome.ok,
                    "failure": outcome.failure,
                    "answer": outcome.answer.as_json() if outcome.answer is not None else None})
    else:
        err = stderr_console()
        if outcome.job_id is not None:
            err.print(f"predict job {escape(outcome.job_id)} on checkpoint {escape(str(outcome.checkpoint))}")
        if outcome.answer is not None:
            print_answer(outcome.answer, as_json=False)
        if outcome.failure is not None:
            print_error(f"predict failed: {outcome.failure}")
    return exitcodes.OK if outcome.ok and outcome.failure is None else exitcodes.NODE_FAILED
