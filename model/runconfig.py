"""What a rank needs beyond the architecture to run a research-era job config: seed, mode, schedule,
optimizer, checkpoints, tokenizer. Pure Python (no MindSpore), so the console can check it too.

The architecture, batch size and dataset path come from `model.config` (`JobSpec`); this reads the
rest, with the same file:line errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from model.config import JobSpec, spec_from_document
from model.yamlsource import FieldPath, LocatedDocument, Problem, SourceError, load_located_file
from model.yamlvalues import as_bool, as_float, as_int, as_str

Schedule = Literal["constant", "cosine", "linear"]

SCHEDULES: dict[str, Schedule] = {
    "ConstantWarmUpLR": "constant",
    "CosineWithWarmUpLR": "cosine",
    "LinearWithWarmUpLR": "linear",
}
"""MindFormers' lr_schedule types we implement, by the name its YAML uses."""

T = TypeVar("T")
D = TypeVar("D")


@dataclass(frozen=True)
class LearningRate:
    schedule: Schedule = "constant"
    peak: float = 1e-4
    warmup_steps: int = 0
    warmup_ratio: float | None = None
    """Fraction of the total steps; used when warmup_steps is not given."""
    total_steps: int = -1
    """-1: the whole run (epochs x steps per epoch)."""
    end: float = 0.0
    """Where cosine and linear decay end."""

    def at(self, step: int, total: int) -> float:
        """The rate for 0-based `step` of a `total`-step run."""
        total = self.total_steps if self.total_steps > 0 else total
        warmup = self.warmup_steps if self.warmup_ratio is None else int(self.warmup_ratio * total)
        if step < warmup:  # MindFormers' warm-up starts from 0 at the first step
            return self.peak * step / warmup
        if self.schedule == "constant":
            return self.peak
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if self.schedule == "linear":
            return self.end + (self.peak - self.end) * (1.0 - progress)
        return self.end + (self.peak - self.end) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class Optimizer:
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.0
    clip_norm: float | None = 1.0
    """`runner_wrapper.use_clip_grad` (max_grad_norm 1.0, MindFormers' default) or None."""


@dataclass(frozen=True)
class Checkpointing:
    save_steps: int = 0
    """0: only at the end (and on SIGTERM)."""
    keep: int = 5
    prefix: str = "deepseekv3"


@dataclass(frozen=True)
class RunConfig:
    seed: int = 0
    output_dir: str = "./output"
    graph_mode: bool = False
    """`context.mode`: 0 graph, 1 PyNative."""
    device_target: str = "CPU"
    epochs: int = 1
    train_samples: int | None = None
    """`train_dataset.data_loader.sizes[0]`: samples an epoch draws (the dataset repeats, reshuffled, to
    reach it, as Megatron's GPTDataset does); None or 0: one pass over the dataset."""
    print_every: int = 1
    resume: bool = False
    lr: LearningRate = LearningRate()
    optimizer: Optimizer = Optimizer()
    checkpoint: Checkpointing = Checkpointing()
    tokenizer_file: str | None = None
    """`processor.tokenizer.tokenizer_file` (or vocab_file): predict's tokenizer.json."""


def load_job(path: Path, *, output_dir: str | None = None) -> tuple[JobSpec, RunConfig]:
    """A rank's whole reading of its config file (SourceError with every problem); `output_dir`
    overrides the file's."""
    doc = load_located_file(path)
    job, run = spec_from_document(doc), run_config_from_document(doc)
    return job, run if output_dir is None else replace(run, output_dir=output_dir)


def run_config_from_document(doc: LocatedDocument) -> RunConfig:
    """Every problem in the file at once, as one SourceError."""
    reader = _Reader(doc)
    monitor = _callback(doc, "CheckpointMonitor")
    printer = _callback(doc, "MFLossMonitor")
    config = RunConfig(
        seed=reader.get(("seed",), as_int, 0),
        output_dir=reader.get(("output_dir",), as_str, "./output"),
        graph_mode=reader.get(("context", "mode"), _mode, False),
        device_target=reader.get(("context", "device_target"), as_str, "CPU"),
        epochs=reader.get(("runner_config", "epochs"), _positive, 1),
        train_samples=reader.get(("train_dataset", "data_loader", "sizes", 0), as_int, 0) or None,
        print_every=reader.get((*printer, "per_print_times"), _positive, 1) if printer else 1,
        resume=reader.get(("resume_training",), as_bool, False),
        lr=_learning_rate(reader),
        optimizer=Optimizer(
            beta1=reader.get(("optimizer", "betas", 0), as_float, 0.9),
            beta2=reader.get(("optimizer", "betas", 1), as_float, 0.95),
            eps=reader.get(("optimizer", "eps"), as_float, 1e-8),
            weight_decay=reader.get(("optimizer", "weight_decay"), as_float, 0.0),
            clip_norm=1.0 if reader.get(("runner_wrapper", "use_clip_grad"), as_bool, True) else None,
        ),
        checkpoint=Checkpointing(
            save_steps=reader.get((*monitor, "save_checkpoint_steps"), as_int, 0) if monitor else 0,
            keep=reader.get((*monitor, "keep_checkpoint_max"), _positive, 5) if monitor else 5,
            prefix=reader.get((*monitor, "prefix"), as_str, "deepseekv3") if monitor else "deepseekv3",
        ),
        tokenizer_file=(reader.get(("processor", "tokenizer", "tokenizer_file"), _optional_path, None)
                        or reader.get(("processor", "tokenizer", "vocab_file"), _optional_path, None)),
    )
    reader.finish()
    return config


def _learning_rate(reader: _Reader) -> LearningRate:
    kind: Schedule = reader.get(("lr_schedule", "type"), _schedule, "constant")
    return LearningRate(
        schedule=kind,
        peak=reader.get(("lr_schedule", "learning_rate"), as_float, 1e-4),
        warmup_steps=reader.get(("lr_schedule", "warmup_steps"), as_int, 0),
        warmup_ratio=reader.get(("lr_schedule", "warmup_ratio"), as_float, None),
        total_steps=reader.get(("lr_schedule", "total_steps"), as_int, -1),
        end=reader.get(("lr_schedule", "lr_end"), as_float, 0.0),
    )


def _callback(doc: LocatedDocument, kind: str) -> FieldPath:
    """The path of the first `callbacks` entry of `type: kind`, or () if there is none."""
    entries = doc.data.get("callbacks") if isinstance(doc.data, dict) else None
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        if isinstance(entry, dict) and entry.get("type") == kind:
            return ("callbacks", index)
    return ()


class _Reader:
    def __init__(self, doc: LocatedDocument) -> None:
        self.doc = doc
        self.problems: list[Problem] = []

    def get(self, path: FieldPath, parse: Callable[[Any], T], default: D) -> T | D:
        node: Any = self.doc.data
        for part in path:
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    return default
            elif not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        try:
            return parse(node)
        except (TypeError, ValueError) as exc:
            self.problems.append(self.doc.problem(path, str(exc)))
            return default

    def finish(self) -> None:
        if self.problems:
            raise SourceError(self.problems)


def _positive(value: Any) -> int:
    number = as_int(value)
    if number < 1:
        raise ValueError(f"expected 1 or more, got {value!r}")
    return number


def _mode(value: Any) -> bool:
    if value in (0, "GRAPH_MODE", "graph"):
        return True
    if value in (1, "PYNATIVE_MODE", "pynative"):
        return False
    raise ValueError(f"expected 0 (graph) or 1 (PyNative), got {value!r}")


def _schedule(value: Any) -> Schedule:
    if value not in SCHEDULES:
        raise ValueError(f"unsupported lr_schedule type {value!r}; use one of {', '.join(SCHEDULES)}")
    return SCHEDULES[value]


def _optional_path(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a path, got {value!r}")
    return value
