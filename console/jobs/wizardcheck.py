"""Judging a launch wizard draft on the nodes it would run on: its problems per field (with the fix where
one is known), the estimate per pipeline stage, and which of its inputs are missing on which node."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import yaml

from console.jobs.wizard import Template, WizardDraft, derived_text, kind, lookup
from model.config import JobSpec, parse_spec
from model.estimate import NPU_910B, DeviceMemory, count_params, inference_memory, training_memory
from model.validate import validate
from model.yamlsource import SourceError
from remote.inventory import Cluster, NodeSpec
from remote.paths import MissingPath, dataset_files, missing_paths
from remote.pool import NodePool


@dataclass(frozen=True)
class Fix:
    path: str
    value: str

    def __str__(self) -> str:
        return f"set {self.path.rsplit('.', 1)[-1]} to {self.value}"


@dataclass(frozen=True)
class FieldProblem:
    path: str
    """The document path of the field to change ('' when about the config as a whole)."""
    severity: Literal["error", "warning"]
    message: str
    fix: Fix | None = None


@dataclass(frozen=True)
class StageFit:
    stage: int
    layers: int
    total: int
    headroom: int


@dataclass(frozen=True)
class EstimateSummary:
    params: int
    activated: int
    stages: tuple[StageFit, ...]
    limit_bytes: int
    limit_source: str
    fits: bool
    training: bool


@dataclass(frozen=True)
class DraftCheck:
    """A draft judged against the nodes it would run on."""

    text: str | None
    """The derived config (None: an override was refused)."""
    problems: tuple[FieldProblem, ...]
    estimate: EstimateSummary | None
    devices: int

    @property
    def errors(self) -> tuple[FieldProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    def at(self, path: str) -> tuple[FieldProblem, ...]:
        return tuple(p for p in self.problems if p.path == path)

    @property
    def launchable(self) -> bool:
        return self.text is not None and not self.errors and (self.estimate is None or self.estimate.fits)


def chosen_nodes(draft: WizardDraft, cluster: Cluster) -> tuple[NodeSpec, ...]:
    """The draft's nodes, or every node of the cluster while none is chosen."""
    by_name = {node.name: node for node in cluster.nodes}
    picked = tuple(by_name[name] for name in draft.nodes if name in by_name)
    return picked or cluster.nodes


def check_draft(draft: WizardDraft, template: Template, nodes: Sequence[NodeSpec],
                device: DeviceMemory = NPU_910B) -> DraftCheck:
    """Derive, parse, validate and estimate the draft on `nodes` (each rank judged against `device`);
    every problem keyed by its field."""
    devices = len(nodes) * (nodes[0].devices if nodes else 1)
    try:
        text = derived_text(draft, template)
        job = parse_spec(text, str(template.path))
    except SourceError as exc:
        problems = tuple(FieldProblem(p.field, "error", p.message) for p in exc.problems)
        return DraftCheck(None, problems, None, devices)
    trains = kind(draft.kind).trains
    found = validate(job, nodes=max(len(nodes), 1), devices_per_node=nodes[0].devices if nodes else 1,
                     training=trains)
    problems = tuple(FieldProblem(p.path, p.severity, p.message, suggested_fix(p.path, p.message, text))
                     for p in found)
    errors = any(p.severity == "error" for p in problems)
    estimate = None if errors else _estimate(job, devices, trains, device)
    if estimate is None and not problems:
        problems = (FieldProblem("", "error", "the estimate could not be made: check the dtypes and "
                                 "max_device_memory"),)
    return DraftCheck(text, problems, estimate, devices)


_SET_TO = re.compile(r"set (?:\w+|it) to (-?\d+)")
_VALID = re.compile(r"valid: ([\d, ]+)")


def suggested_fix(path: str, message: str, text: str) -> Fix | None:
    """The fix a validation message names ("set data_parallel to 2", "valid: 1, 2, 4"), as a value for
    the field at `path`; for a list of valid values, the largest one not above the current value."""
    named = _SET_TO.search(message)
    if named:
        return Fix(path, named.group(1))
    listed = _VALID.search(message)
    if not listed:
        return None
    valid = [int(v) for v in listed.group(1).replace(" ", "").split(",") if v]
    found, current = lookup(yaml.safe_load(text), path)
    below = [v for v in valid if found and isinstance(current, int) and v <= current]
    return Fix(path, str(max(below) if below else valid[0])) if valid else None


def _estimate(job: JobSpec, devices: int, trains: bool, device: DeviceMemory) -> EstimateSummary | None:
    """Parameters and memory per device per stage: training's for training kinds, else serving's."""
    try:
        params = count_params(job.model)
        if trains:
            memory = training_memory(job, devices, device, devices=devices)
            stages = tuple(StageFit(s.stage, s.num_layers, s.total, s.headroom) for s in memory.stages)
            limit, source, fits = memory.limit_bytes, memory.limit_source, memory.fits
        else:
            serving = inference_memory(job, batch=1, seq_len=job.model.seq_length, device=device,
                                       devices=devices)
            stages = tuple(StageFit(s.stage, s.num_layers, s.total, s.headroom) for s in serving.stages)
            limit, source, fits = serving.limit_bytes, serving.limit_source, serving.fits
    except ValueError:
        return None
    return EstimateSummary(params.total, params.activated, stages, limit, source, fits, trains)


def estimate_lines(summary: EstimateSummary) -> list[str]:
    """The estimate as short lines: parameters, then per stage its memory and whether it fits."""
    lines = [f"{_count(summary.params)} params, {_count(summary.activated)} active · "
             f"{'training' if summary.training else 'serving'} memory per device, limit "
             f"{_gib(summary.limit_bytes)} ({summary.limit_source})"]
    for stage in summary.stages:
        verdict = "fits" if stage.headroom >= 0 else f"does not fit by {_gib(-stage.headroom)}"
        lines.append(f"  stage {stage.stage}: {stage.layers} layers, {_gib(stage.total)} per device, "
                     f"{verdict}")
    return lines


def _count(number: int) -> str:
    for size, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if number >= size:
            return f"{number / size:.1f}{unit}"
    return str(number)


def _gib(number: int) -> str:
    return f"{number / 2**30:.1f} GiB"


def params_text(template: Template) -> str:
    return _count(template.params)


# --- inputs on the nodes ----------------------------------------------------------------------------


def input_paths(draft: WizardDraft, template: Template) -> list[str]:
    """The files the job will read on every node: the dataset's .bin/.idx and the weights."""
    prefixes = [draft.data_prefix] if draft.data_prefix else list(template.spec.training.data_prefixes)
    paths = dataset_files(prefixes)
    weights = draft.weights or template.spec.training.load_checkpoint
    return paths + ([weights] if weights else [])


def missing_inputs(pool: NodePool, nodes: Sequence[NodeSpec], draft: WizardDraft, template: Template,
                   *, timeout: float = 20.0) -> list[MissingPath]:
    """Which input paths are absent on which nodes (blocking: one round trip per node)."""
    return missing_paths(pool, nodes, input_paths(draft, template), timeout=timeout)
