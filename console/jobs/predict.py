"""Predicting from a finished training job, by its id alone: its last rank-0 checkpoint found on its
nodes (console/jobs/ask.py), a predict job of the same style launched on the same nodes with the
training's rendered config (console/jobs/launcher.py), followed to its end, and its answer read back
(console/jobs/answer.py). The CLI's `predict JOB` prints it; a screen could call the same function.
"""

from __future__ import annotations

import posixpath
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from console.jobs.answer import JobAnswer, job_answer
from console.jobs.ask import find_checkpoint, read_result_file
from console.jobs.demo import TRAIN_LIMIT, follow_training
from console.jobs.launcher import LaunchProgress, run_launch
from console.jobs.plan import Style, machines
from console.jobs.refresh import refresh_on
from console.jobs.request import REQUEST_ERRORS, SETTLE_SECONDS, JobRequest, plan_job
from console.records import JobRecord
from console.store import Store
from remote import nodeset
from remote.inventory import NodeSpec
from remote.pool import NodePool
from remote.transfer import DistributionError, distribute


@dataclass(frozen=True)
class PredictOutcome:
    """What became of a predict run: its answer, or the reason there is none."""

    job_id: str | None
    """The predict job, once launched."""
    checkpoint: str | None
    answer: JobAnswer | None = None
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.answer is not None and self.failure is None


@dataclass(frozen=True)
class PredictAsk:
    prompts: tuple[str, ...]
    max_new_tokens: int | None = None
    limit: float = TRAIN_LIMIT
    """Seconds the predict job may run before it is stopped and counted as failed."""
    settle: float = SETTLE_SECONDS


def _ignore(_: LaunchProgress) -> None:
    pass


def predict_from(store: Store, pool: NodePool, trained: JobRecord, ask: PredictAsk, *,
                 progress: Callable[[LaunchProgress], None] = _ignore) -> PredictOutcome:
    """Ask a training job's last checkpoint; never raises for a node, a launch or a run failing."""
    if trained.plan.get("kind") == "predict":
        return PredictOutcome(None, None, failure=f"{trained.id} is a predict job: name a training job")
    if trained.plan.get("style") != "model":
        # MindFormers runs in its own checkout and saves sharded checkpoints there: not this layout.
        return PredictOutcome(None, None, failure=(
            f"{trained.id} is a {trained.plan.get('style')}-style job: predict JOB knows this project's "
            "model only; launch --kind predict --checkpoint PATH with its checkpoint"))
    refreshed = refresh_on(store, pool, [trained])  # nothing when the job had already ended
    failures = [f for done in refreshed for f in done.failures]
    if failures:
        unasked = "; ".join(f"{f.node}: {f.reason}" for f in failures)
        return PredictOutcome(None, None, failure=f"{trained.id}'s nodes could not be asked ({unasked})")
    job = refreshed[0].job if refreshed else store.job(trained.id)
    if not job.finished:
        why = f"{trained.id} is still {job.state}: ask it once it has ended (or stop it: it saves)"
        return PredictOutcome(None, None, failure=why)
    found = find_checkpoint(pool, trained)
    if found.path is None:
        return PredictOutcome(None, None, failure=found.error)
    not_copied = copy_checkpoint(pool, trained, found.node, found.path)
    if not_copied is not None:
        return PredictOutcome(None, found.path, failure=not_copied)
    with tempfile.TemporaryDirectory(prefix="ascend-predict-") as directory:
        config = Path(directory) / f"{trained.name}.yaml"
        config.write_text(trained.config_text, encoding="utf-8")
        request = predict_request(trained, config, found.path, ask)
        try:
            planned = plan_job(request, pool)
        except REQUEST_ERRORS as exc:
            return PredictOutcome(None, found.path, failure=f"no plan: {exc}")
    result = run_launch(planned, pool, store, progress=progress)
    job_id = planned.plan.job_id
    if result.failure is not None:
        recorded = job_id if result.recorded else None
        return PredictOutcome(recorded, found.path, failure=result.failure.describe())
    run = follow_training(store, pool, job_id, limit=ask.limit)
    answer = job_answer(store.log_events(job_id, severity="info")) or read_result_file(
        pool, store.job(job_id), timeout=60.0)
    if not run.ended_well:
        return PredictOutcome(job_id, found.path, answer, failure=_run_failure(run.failures, run.exit_codes))
    if answer is None:
        return PredictOutcome(job_id, found.path, failure="the run ended without an answer in its logs")
    return PredictOutcome(job_id, found.path, answer)


def copy_checkpoint(pool: NodePool, trained: JobRecord, holder: str, checkpoint: str) -> str | None:
    """Every rank of the predict job loads the checkpoint: put it at the same path on the training's
    machines that do not share `holder`'s disk. None when done (or nothing to do), else why not."""
    needing = machines_without(holder, [pool.cluster.node(name) for name in trained_machines(trained)])
    if not needing:
        return None
    try:
        copied = distribute(pool, needing, checkpoint, posixpath.dirname(checkpoint),
                            from_node=pool.cluster.node(holder))
    except DistributionError as exc:
        return f"copying {checkpoint} from {holder}: {exc}"
    if copied.ok:
        return None
    return "copying the checkpoint failed: " + "; ".join(f"{n.node}: {n.error or 'not verified'}"
                                                         for n in copied.failed)


def machines_without(holder: str, nodes: Sequence[NodeSpec]) -> list[NodeSpec]:
    """One node of each machine address other than `holder`'s (nodes sharing an address share a disk)."""
    return [group[0] for group in machines(nodes) if all(node.name != holder for node in group)]


def trained_machines(trained: JobRecord) -> list[str]:
    return [m for node in trained.plan.get("nodes", []) for m in node.get("machines", [node["node"]])]


def predict_request(trained: JobRecord, config: Path, checkpoint: str, ask: PredictAsk) -> JobRequest:
    """A predict job like the training: same nodes, style and config, the checkpoint rendered in."""
    style: Style | None = trained.plan.get("style")
    return JobRequest(template=config, nodes=nodeset.fold(trained_machines(trained)), style=style,
                      name=f"{trained.name}-predict",
                      settle=ask.settle, kind="predict", prompts=ask.prompts, checkpoint=checkpoint,
                      max_new_tokens=ask.max_new_tokens)


def _run_failure(failures: Sequence[str], codes: dict[str, int]) -> str:
    if failures:
        return failures[0]
    said = ", ".join(f"{node} exited {code}" for node, code in codes.items()) or "no node's run ended"
    return f"the predict run did not end well ({said})"
