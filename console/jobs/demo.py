"""The demo, the one place it lives (`ascend-console demo --headless` prints it; the TUI drives the same
functions): check the nodes, prepare the embedded corpus, plan and launch the tiny DeepSeek-V3 under
msrun, follow its loss until training ends, then ask the trained model a question.

Every step reports typed `DemoProgress` events to a callback, called on the thread running the step.
`run_demo` is the whole path; a screen can call its parts instead: `start_demo` (check → launch, the job
then runs detached), `follow_training` (loss events until the end, and the verdict), `ask_job`
(console/jobs/ask.py). The demo succeeded when training ended on every node with exit code 0, no
failure read in the logs, and the last loss lower than the first.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from console.jobs.ask import Answer, ask_job
from console.jobs.follow import JobFollow
from console.jobs.joblog import JobLogBatch
from console.jobs.launcher import LaunchProgress, LaunchResult, run_launch
from console.jobs.plan import msrun_count_text, shared_msrun_note
from console.jobs.refresh import refresh_on
from console.jobs.request import REQUEST_ERRORS, JobRequest, PlannedJob, plan_job
from console.jobs.runwatch import RunWatch
from console.jobs.service import stop_job
from console.store import Store
from remote.checker import check_nodes
from remote.health import Status
from remote.pool import NodePool

if TYPE_CHECKING:  # tokenizers loads only when the corpus is built
    from model.data.convert import Progress

DemoStage = Literal["check", "corpus", "plan", "launch", "train", "end", "ask"]
"""The steps in order."""
DEMO_QUESTION = "Return the number of"
TRAIN_LIMIT = 3600.0
"""Seconds the demo waits for training to end before it stops the job and fails."""
STOP_GRACE = 10


def demo_job_path() -> Path:
    """The tiny DeepSeek-V3 job the demo trains (configs/jobs/tiny_local.yaml)."""
    return Path(str(resources.files("configs") / "jobs" / "tiny_local.yaml"))


@dataclass(frozen=True)
class DemoProgress:
    """One thing the demo did or saw. A step begins with an event whose `node` is None."""

    stage: DemoStage
    message: str
    node: str | None = None
    ok: bool = True
    """False: this failed (the demo ends after the step's last event)."""
    step: int | None = None
    """train: the step of this loss (then `total` and `loss` are set too)."""
    total: int | None = None
    loss: float | None = None
    fraction: float | None = None
    """corpus: how far the tokenisation is, 0 to 1."""
    job_id: str | None = None
    """Set from the launch on: the job the demo runs."""


DemoCallback = Callable[[DemoProgress], None]


def _ignore(_: DemoProgress) -> None:
    pass


@dataclass(frozen=True)
class DemoOptions:
    template: Path = field(default_factory=demo_job_path)
    """The job trained."""
    question: str = DEMO_QUESTION
    """The prompt the trained model continues."""
    max_new_tokens: int = 24
    steps: int | None = None
    """Train this many steps instead of the job file's (tests); None: the real demo."""
    train_limit: float = TRAIN_LIMIT
    settle: float = 5.0


@dataclass(frozen=True)
class LossPoint:
    step: int
    total: int | None
    loss: float


@dataclass(frozen=True)
class Training:
    """How a followed job's training ended."""

    job_id: str
    exit_codes: dict[str, int]
    """Per node, its run's exit code (a node missing here never ended: lost, or the limit passed)."""
    nodes: tuple[str, ...]
    failures: tuple[str, ...] = ()
    """Failures read in the logs (a node's follow ending in error), and the limit passing."""
    first: LossPoint | None = None
    last: LossPoint | None = None

    @property
    def ended_well(self) -> bool:
        return (set(self.exit_codes) >= set(self.nodes) and not any(self.exit_codes.values())
                and not self.failures)

    @property
    def verdict(self) -> str | None:
        """None when training ended well with the loss lower at the end; else why not."""
        if self.failures:
            return self.failures[0]
        if not self.ended_well:
            codes = ", ".join(f"{n} {self.exit_codes.get(n, 'no exit code')}" for n in self.nodes)
            return f"training did not end well (exit codes: {codes})"
        if self.first is None or self.last is None or self.last.step == self.first.step:
            return "training ended without two loss steps to compare"
        if not self.last.loss < self.first.loss:
            return (f"the loss did not fall: {self.first.loss:.4f} at step {self.first.step}, "
                    f"{self.last.loss:.4f} at step {self.last.step}")
        return None


@dataclass(frozen=True)
class DemoStart:
    """The demo up to a running job: `failure` says which step stopped it, and why."""

    planned: PlannedJob | None = None
    launch: LaunchResult | None = None
    failure: str | None = None

    @property
    def job_id(self) -> str | None:
        recorded = self.launch is not None and self.launch.recorded
        return self.launch.planned.plan.job_id if self.launch is not None and recorded else None


@dataclass(frozen=True)
class DemoResult:
    ok: bool
    reason: str
    """What happened, in one sentence: the loss's fall, or why the demo failed."""
    start: DemoStart
    training: Training | None = None
    answer: Answer | None = None


def run_demo(pool: NodePool, store: Store, options: DemoOptions = DemoOptions(), *,
             progress: DemoCallback = _ignore) -> DemoResult:
    """The whole demo. Never raises for a node's or the job's failure: the result says what failed."""
    start = start_demo(pool, store, options, progress=progress)
    if start.failure is not None or start.job_id is None:
        return DemoResult(False, start.failure or "not launched", start)
    training = follow_training(store, pool, start.job_id, progress=progress, limit=options.train_limit)
    why = training.verdict
    if why is not None:
        progress(DemoProgress("end", why, ok=False, job_id=training.job_id))
        return DemoResult(False, why, start, training)
    assert training.first is not None and training.last is not None
    fell = (f"training ended: loss {training.first.loss:.4f} at step {training.first.step} -> "
            f"{training.last.loss:.4f} at step {training.last.step}")
    progress(DemoProgress("end", fell, job_id=training.job_id))
    answer = ask(pool, store, training.job_id, options, progress=progress)
    return DemoResult(True, fell, start, training, answer)


def ask(pool: NodePool, store: Store, job_id: str, options: DemoOptions, *,
        progress: DemoCallback = _ignore) -> Answer:
    """The trained model's answer to the demo's question (reported as `ask` events)."""
    progress(DemoProgress("ask", f"asking the trained model: {options.question!r}", job_id=job_id))
    answer = ask_job(pool, store.job(job_id), options.question, max_new_tokens=options.max_new_tokens)
    progress(DemoProgress("ask", answer.text if answer.text is not None else str(answer.error),
                          answer.node, answer.ok, job_id=job_id))
    return answer


# --- up to a running job -------------------------------------------------------------------------


def start_demo(pool: NodePool, store: Store, options: DemoOptions = DemoOptions(), *,
               progress: DemoCallback = _ignore) -> DemoStart:
    """Check the nodes, prepare the corpus, plan and launch; the job then runs detached."""
    failure = check(pool, progress)
    if failure is not None:
        return DemoStart(failure=failure)
    failure = prepare_corpus(pool, options, progress)
    if failure is not None:
        return DemoStart(failure=failure)
    progress(DemoProgress("plan", f"planning {options.template.name}"))
    try:
        planned = plan_job(demo_request(options), pool)
    except REQUEST_ERRORS as exc:
        progress(DemoProgress("plan", str(exc), ok=False))
        return DemoStart(failure=f"no plan: {exc}")
    for event in plan_events(planned):
        progress(event)
    result = run_launch(planned, pool, store, progress=_launch_events(progress, planned.plan.job_id))
    if result.failure is not None:
        return DemoStart(planned, result, result.failure.describe())
    return DemoStart(planned, result)


def check(pool: NodePool, progress: DemoCallback) -> str | None:
    """Every node's health; a node failing or unreachable stops the demo (WARN goes on)."""
    nodes = pool.cluster.nodes
    progress(DemoProgress("check", f"checking {len(nodes)} node(s) of cluster {pool.cluster.name}"))
    failed = []
    for health in check_nodes(pool, nodes):
        bad = health.status in (Status.FAIL, Status.UNREACHABLE)
        reasons = "; ".join(f.text for f in health.findings)
        progress(DemoProgress("check", f"{health.status.value}" + (f": {reasons}" if reasons else ""),
                              health.node, not bad))
        if bad:
            failed.append(f"{health.node} {health.status.value}" + (f" ({reasons})" if reasons else ""))
    return f"node(s) not fit to run: {', '.join(failed)}" if failed else None


def prepare_corpus(pool: NodePool, options: DemoOptions, progress: DemoCallback) -> str | None:
    """Build the embedded corpus and tokenizer here if missing, when the nodes are this machine (the
    ranks then find it); on remote nodes the ranks build it there on first use."""
    if any(node.transport != "local" for node in pool.cluster.nodes):
        progress(DemoProgress("corpus", "remote nodes: each rank builds the embedded corpus on first use"))
        return None
    from model.data.corpus import build_corpus, default_corpus_dir  # tokenizers: only when needed

    vocab, seq = corpus_shape(options.template)
    directory = default_corpus_dir()
    progress(DemoProgress("corpus", f"embedded corpus in {directory} (vocabulary {vocab}, "
                                    f"sequences of {seq})"))
    try:
        built = build_corpus(directory, vocab_size=vocab, seq_length=seq,
                             progress=corpus_progress(progress))
    except (OSError, ValueError) as exc:
        progress(DemoProgress("corpus", f"could not build it: {exc}", ok=False))
        return f"the embedded corpus could not be built in {directory}: {exc}"
    said = "built" if built.built else "already there"
    progress(DemoProgress("corpus", f"{said}: {built.sequences} sequences, {built.tokens} tokens",
                          fraction=1.0))
    return None


def corpus_progress(progress: DemoCallback) -> Callable[[Progress], None]:
    """The conversion's progress as `corpus` events, one every tenth of the way."""
    said = [-1]

    def report(done: Progress) -> None:
        fraction = done.bytes_read / done.total_bytes if done.total_bytes else 1.0
        if int(fraction * 10) > said[0]:
            said[0] = int(fraction * 10)
            progress(DemoProgress("corpus", f"tokenising: {fraction:.0%}, {done.sequences} sequences",
                                  fraction=fraction))
    return report


def corpus_shape(template: Path) -> tuple[int, int]:
    """(vocab_size, seq_length) the job's model reads the corpus with."""
    model = _mapping(_mapping(_load(template).get("model")).get("model_config"))
    return int(model.get("vocab_size", 2048)), int(model.get("seq_length", 128))


def demo_request(options: DemoOptions) -> JobRequest:
    """The demo's job; `steps` becomes the number of samples the ranks draw for that many steps."""
    overrides: tuple[str, ...] = ()
    if options.steps is not None:
        document = _load(options.template)
        batch = int(_mapping(document.get("runner_config")).get("batch_size", 1))
        data_parallel = int(_mapping(document.get("parallel_config")).get("data_parallel", 1))
        overrides = (f"train_dataset.data_loader.sizes=[{options.steps * batch * data_parallel}, 0, 0]",)
    return JobRequest(template=options.template, overrides=overrides, settle=options.settle)


def plan_events(planned: PlannedJob) -> list[DemoProgress]:
    """What the plan says, in words: ranks, msruns (and the nodes an msrun serves), the master."""
    plan = planned.plan
    events = [DemoProgress("plan", f"{plan.job_id}: {plan.workers} rank(s) on {msrun_count_text(plan)}, "
                                   f"master {plan.master_addr}:{plan.master_port} ({planned.port_note})",
                           job_id=plan.job_id)]
    for node in plan.nodes:
        shared = shared_msrun_note(node)
        events.append(DemoProgress("plan", f"node_rank {node.node_rank}, {node.local_workers} rank(s) in "
                                           f"{node.job_dir}" + (f"; {shared}" if shared else ""),
                                   node.node, job_id=plan.job_id))
    return events


def _launch_events(progress: DemoCallback, job_id: str) -> Callable[[LaunchProgress], None]:
    def report(event: LaunchProgress) -> None:
        progress(DemoProgress("launch", f"{event.stage}: {event.message}", event.node, event.ok,
                              job_id=job_id))
    return report


def _load(template: Path) -> dict[str, Any]:
    document = yaml.safe_load(template.read_text(encoding="utf-8"))
    return document if isinstance(document, dict) else {}


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# --- training ---------------------------------------------------------------------------------


def follow_training(store: Store, pool: NodePool, job_id: str, *, progress: DemoCallback = _ignore,
                    limit: float = TRAIN_LIMIT, cancel: threading.Event | None = None) -> Training:
    """Follow the job's logs (recording them in the store) until its runs end on every node, reporting
    each loss of the lowest rank printing the real loss as a `train` event. Past `limit` seconds the job
    is stopped and the training counts as failed; `cancel` set ends the follow (the job goes on)."""
    job = store.job(job_id)
    batches: queue.Queue[JobLogBatch] = queue.Queue()
    follow = JobFollow(job, pool, batches.put, store=store)
    losses = LossTrack(min(follow.layout.loss_ranks, default=0))
    progress(DemoProgress("train", f"following {job_id} on {', '.join(follow.nodes)}", job_id=job_id))
    watch = RunWatch(store, pool, job_id, follow)
    follow.start()
    watch.start()
    deadline = time.monotonic() + limit
    try:
        while not (follow.wait(0) and batches.empty()):
            if time.monotonic() > deadline or (cancel is not None and cancel.is_set()):
                break
            try:
                batch = batches.get(timeout=0.2)
            except queue.Empty:
                continue
            for point in losses.take(batch):
                progress(loss_event(point, batch.node, job_id))
    finally:
        watch.stop()
        follow.stop()
    passed = limit if time.monotonic() > deadline else None
    return _ended(store, pool, job_id, follow, losses, limit_passed=passed, progress=progress)


def shown_step(step: int, total: int | None) -> bool:
    """The loss steps worth a line: the first, every tenth, the last."""
    return step == 1 or step % 10 == 0 or step == total


def loss_event(point: LossPoint, node: str, job_id: str) -> DemoProgress:
    return DemoProgress("train", f"step {point.step}/{point.total or '?'} loss {point.loss:.4f}", node,
                        step=point.step, total=point.total, loss=point.loss, job_id=job_id)


def _ended(store: Store, pool: NodePool, job_id: str, follow: JobFollow, losses: LossTrack, *,
           limit_passed: float | None, progress: DemoCallback) -> Training:
    failures = [f"{node}: {why}" for node, why in sorted(follow.failures.items())]
    if limit_passed is not None:
        failures.append(f"training did not end in {limit_passed:g} s: the job was stopped")
        stop_job(store, job_id, pool, grace=STOP_GRACE)
    refresh_on(store, pool, [store.job(job_id)])
    codes = follow.exit_codes
    for node in follow.nodes:
        said = f"exited {codes[node]}" if node in codes else "did not end (lost, or still running)"
        progress(DemoProgress("end", f"msrun {said}", node, codes.get(node) == 0, job_id=job_id))
    return Training(job_id, dict(codes), tuple(follow.nodes), tuple(failures), losses.first, losses.last)


class LossTrack:
    """The loss series of one rank as batches bring it: each new step once, the first and the last."""

    def __init__(self, rank: int) -> None:
        self.rank = rank
        self.first: LossPoint | None = None
        self.last: LossPoint | None = None

    def take(self, batch: JobLogBatch) -> list[LossPoint]:
        """The new loss steps of the rank in the batch, in order."""
        points = []
        for event in batch.events:
            record = event.event.loss
            if event.rank != self.rank or record is None or record.loss is None:
                continue
            if self.last is not None and record.step <= self.last.step:
                continue
            point = LossPoint(record.step, record.total_steps, record.loss)
            self.first = self.first or point
            self.last = point
            points.append(point)
        return points
