"""The training loop behind `python -m model.train` (MindSpore side).

One step: forward + backward through `DeepseekV3`, gradients all-reduced across ranks (mean) and
clipped by global norm, one AdamW update; then the per-expert loads are summed over all ranks and
every router's selection bias is nudged towards balance. In graph mode (`context.mode: 0`) the step
is compiled once with `ms.jit`; the bias update stays outside it (it is a sign and an add per expert).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops

from model.config import JobSpec
from model.deepseek import checkpoint
from model.deepseek.batches import Batch, TokenSequences, epoch_batches, steps_per_epoch
from model.deepseek.moe import update_bias
from model.deepseek.network import DeepseekV3
from model.deepseek.ranks import start_communication
from model.estimate import training_flops_per_token
from model.logformat import LossRecord
from model.loglines import CHECKPOINT_SAVED
from model.runconfig import RunConfig

log = logging.getLogger("mindformers")

StepResult = tuple[float, float, float, float, float]
"""total, lm, mtp and balance loss, global gradient norm."""

Report = Callable[[LossRecord, int, float], None]
"""Called with each step's record, the batch size and the step's seconds."""


class StopFlag(Protocol):
    """Set (to the signal number) when the rank should save and stop after the current step."""

    signal: int | None


class Trainer:
    def __init__(self, job: JobSpec, run: RunConfig, *, max_steps: int | None = None,
                 data: TokenSequences | None = None) -> None:
        ms.set_context(mode=ms.GRAPH_MODE if run.graph_mode else ms.PYNATIVE_MODE)
        ms.set_device("CPU" if run.device_target.upper() == "CPU" else "Ascend")
        self.job, self.run_config = job, run
        self.sharding = start_communication()
        layout = job.parallel
        if max(layout.model_parallel, layout.pipeline_stage, layout.context_parallel) > 1:
            log.warning("this trainer is data-parallel over all %d rank(s); model_parallel %d, "
                        "pipeline_stage %d and context_parallel %d are not applied", self.sharding.world,
                        layout.model_parallel, layout.pipeline_stage, layout.context_parallel)
        ms.set_seed(run.seed)
        self.data = data if data is not None else open_training_data(job)
        self.batch_size = job.training.batch_size
        self.samples = run.train_samples or self.data.sequence_count
        self.per_epoch = steps_per_epoch(self.samples, self.batch_size, self.sharding)
        if self.per_epoch == 0:
            raise ValueError(f"{self.samples} samples cannot make one batch of "
                             f"{self.batch_size} on each of {self.sharding.world} rank(s)")
        # --max-steps only says where this process stops: the schedule and the logged totals stay
        # the planned run's, so that a run resumed later carries on along the same curve
        planned = run.epochs * self.per_epoch
        self.total = planned if max_steps is None else min(max_steps, planned)
        self.planned = planned
        self._check_ranks_agree()
        self.network = DeepseekV3(job.model, balance_factor=job.model.aux_loss_factor)
        rates = np.array([run.lr.at(step, planned) for step in range(planned)], np.float32)
        self.rates = rates
        opt = run.optimizer
        # decay matrices only: norms' scales (1-D) are not decayed, as Megatron and MindFormers do
        params = self.network.trainable_params()
        groups = [{"params": [p for p in params if len(p.shape) > 1], "weight_decay": opt.weight_decay},
                  {"params": [p for p in params if len(p.shape) <= 1], "weight_decay": 0.0}]
        self.optimizer = nn.AdamWeightDecay(groups, learning_rate=Tensor(rates), beta1=opt.beta1,
                                            beta2=opt.beta2, eps=opt.eps)
        self.step_function = self._compile_step()
        self.flops_per_token = training_flops_per_token(job.model).total

    def _check_ranks_agree(self) -> None:
        """Every rank must run the same number of steps, or some would wait forever in an all-reduce:
        ranks reading different datasets (the embedded corpus differs between Python builds) stop here."""
        if self.sharding.world == 1:
            return
        mine = np.array([self.planned, self.total, self.samples], np.float32)
        summed = ops.AllReduce()(Tensor(mine)).asnumpy()
        if not np.array_equal(summed, mine * self.sharding.world):
            raise ValueError(f"the ranks disagree on the run: this rank plans {self.planned} steps of "
                             f"{self.samples} samples, the mean over the ranks is "
                             f"{summed[0] / self.sharding.world:g} steps of "
                             f"{summed[2] / self.sharding.world:g}: give every node the same dataset")

    def _compile_step(self) -> Callable[..., tuple[Tensor, ...]]:
        gradients = ms.value_and_grad(self.network, None, self.optimizer.parameters, has_aux=True)
        reducer = nn.DistributedGradReducer(self.optimizer.parameters, mean=True,
                                            degree=self.sharding.world) if self.sharding.world > 1 else None
        clip = self.run_config.optimizer.clip_norm

        def step(input_ids: Tensor, labels: Tensor, loss_mask: Tensor) -> tuple[Tensor, ...]:
            (total, lm, mtp, balance, loads), grads = gradients(input_ids, labels, loss_mask)
            if reducer is not None:
                grads = reducer(grads)
            norm = ops.sqrt(sum(ops.square(grad).sum() for grad in grads))
            if clip is not None:
                grads = ops.clip_by_global_norm(grads, clip)
            self.optimizer(grads)
            return total, lm, mtp, balance, loads, norm

        return ms.jit(step) if self.run_config.graph_mode else step

    def run(self, stop: StopFlag, report: Report) -> int:
        step = self._resume()
        log.info(".........Starting Training Model..........")
        if self.run_config.graph_mode:
            log.info(".........Model Compiling, Please Wait a Moment...........")
        log.info("rank %d of %d; %d steps (%d an epoch, batch %d a rank)", self.sharding.rank,
                 self.sharding.world, self.total, self.per_epoch, self.batch_size)
        while step < self.total:
            epoch, done_in_epoch = divmod(step, self.per_epoch)
            for batch in itertools.islice(self._batches(epoch), done_in_epoch, None):
                began = time.perf_counter()
                result, stopping = self._train_step(batch, stop)
                seconds = time.perf_counter() - began
                step += 1
                if step % self.run_config.print_every == 0 or step == self.total:
                    report(self._record(step, result, seconds), self.batch_size, seconds)
                if stopping:
                    log.info("stopping on signal %s after step %d", stop.signal or "(another rank's)", step)
                    self._save(step)
                    return 0
                if step >= self.total:
                    break
                if self._should_save(step):
                    self._save(step)
        self._save(step)
        log.info(".........Training Over!.............")
        return 0

    def _batches(self, epoch: int) -> Iterator[Batch]:
        return epoch_batches(self.data, seq_length=self.job.model.seq_length, batch_size=self.batch_size,
                             sharding=self.sharding, epoch=epoch, seed=self.run_config.seed,
                             samples=self.samples)

    def _train_step(self, batch: Batch, stop: StopFlag) -> tuple[StepResult, bool]:
        """One step; and whether any rank has been told to stop (then all stop after this step)."""
        total, lm, mtp, balance, loads, norm = self.step_function(
            Tensor(batch.input_ids), Tensor(batch.labels), Tensor(batch.loss_mask))
        stopping = self._share_loads_and_stop(loads.asnumpy(), stop)
        return (float(total.asnumpy()), float(lm.asnumpy()), float(mtp.asnumpy()),
                float(balance.asnumpy()), float(norm.asnumpy())), stopping

    def _share_loads_and_stop(self, loads: np.ndarray[Any, Any], stop: StopFlag) -> bool:
        """One all-reduce (a sum: the CPU backend has no other) carries every router's expert loads and
        whether a rank was told to stop. The loads over the global batch nudge each router's bias, the
        same on every rank; the stop is agreed, or the ranks going on would wait forever in the next
        all-reduce for the ones gone."""
        asked = 0.0 if stop.signal is None else 1.0
        packed = np.append(loads.astype(np.float32).ravel(), np.float32(asked))
        if self.sharding.world > 1:
            packed = ops.AllReduce()(Tensor(packed)).asnumpy()
        counts = packed[:-1].reshape(loads.shape)
        model = self.job.model
        if model.balance_via_bias and counts.shape[0]:
            for router, load in zip(self.network.routers(), counts, strict=True):
                update_bias(router, load, model.bias_update_rate)
        return bool(packed[-1] > 0)

    def _record(self, step: int, result: StepResult, seconds: float) -> LossRecord:
        total, lm, mtp, balance, norm = result
        parts = {"lm_loss": lm, "load_balancing_loss": balance}
        if self.job.model.mtp_depth:
            parts["mtp_loss"] = mtp
        tokens = self.batch_size * self.job.model.seq_length
        return LossRecord(
            step=step, total_steps=self.planned, loss=total,
            epoch=self._epoch_of(step), epochs=self._epoch_of(self.planned),
            step_in_epoch=(step - 1) % self.per_epoch + 1, steps_per_epoch=self.per_epoch,
            per_step_ms=int(seconds * 1000), lr=float(self.rates[min(step - 1, len(self.rates) - 1)]),
            global_norm=norm, throughput_tflops=self.flops_per_token * tokens / max(seconds, 1e-9) / 1e12,
            parts=parts)

    def _should_save(self, step: int) -> bool:
        every = self.run_config.checkpoint.save_steps
        return every > 0 and step % every == 0

    def _save(self, step: int) -> None:
        settings, rank = self.run_config.checkpoint, self.sharding.rank
        path = checkpoint.save(self.network, self.optimizer,
                               directory=checkpoint.rank_directory(self.run_config.output_dir, rank),
                               prefix=settings.prefix, rank=rank, epoch=self._epoch_of(step), step=step,
                               keep=settings.keep)
        log.info(CHECKPOINT_SAVED + "%s", path)

    def _epoch_of(self, step: int) -> int:
        """1-based epoch of 1-based global step (step 0, before training, is in epoch 1)."""
        return (max(step, 1) - 1) // self.per_epoch + 1

    def _resume(self) -> int:
        source = self.job.training.load_checkpoint
        if not source:
            return 0
        path = Path(source)
        if path.is_dir():  # MindFormers points at the checkpoint directory: take this rank's newest
            rank = self.sharding.rank
            prefix = self.run_config.checkpoint.prefix
            saved = checkpoint.saved_checkpoints(path / f"rank_{rank}", prefix, rank)
            if not saved:
                raise FileNotFoundError(f"no checkpoint for rank {rank} under {path}")
            path = saved[-1].path
        loaded = checkpoint.load(path, self.network, self.optimizer if self.run_config.resume else None)
        log.info("loaded checkpoint %s (step %d)", path, loaded.step)
        return loaded.step if self.run_config.resume else 0


def open_training_data(job: JobSpec) -> TokenSequences:
    """The config's dataset; with an empty data_path, the embedded corpus (built on first use)."""
    from model.data.corpus import build_corpus
    from model.data.indexed import IndexedDataset

    prefixes = [prefix for prefix in job.training.data_prefixes if prefix]
    if len(prefixes) > 1:
        raise ValueError(f"a blend of {len(prefixes)} datasets; this trainer reads one prefix")
    if prefixes:
        return IndexedDataset(prefixes[0])
    corpus = build_corpus(vocab_size=job.model.vocab_size, seq_length=job.model.seq_length)
    log.info("no data_path: training on the embedded corpus %s", corpus.prefix)
    return IndexedDataset(corpus.prefix)
