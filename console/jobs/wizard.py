"""The launch wizard's model, without Textual: a draft of what the user chose, the overrides it comes to,
its problems per field (with the fix where one is known), the estimate, the derived config as a diff
against its template, and the draft kept as JSON in the state directory between sessions.

Everything here drives the one implementation that exists: `model.overrides.derive` renders, `validate`
judges, `model.estimate` sizes, `console.jobs.request.plan_job` plans (see docs/architecture.md).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

import configs
from console.jobs.request import JobRequest
from console.store import state_dir
from model.config import DIALECT_FIELDS, Dialect, JobSpec, parse_spec
from model.estimate import count_params, inference_memory, training_memory
from model.overrides import derive, known_field_paths
from model.validate import validate
from model.yamlsource import Problem, SourceError, dotted
from remote.inventory import Cluster, NodeSpec
from remote.paths import MissingPath, dataset_files, missing_paths
from remote.pool import NodePool

JobKind = Literal["pretrain", "finetune", "predict", "serve", "smoke"]
TEMPLATES = Path(configs.__file__).parent / "jobs"
DRAFT_FILE = "wizard-draft.json"
SMOKE_TEMPLATE = "tiny_local.yaml"


@dataclass(frozen=True)
class Kind:
    name: JobKind
    title: str
    help: str
    trains: bool
    """Training kinds are validated with micro-batches and the optimizer shard, and sized for training."""
    run_mode: str
    """MindFormers' `run_mode`, set when the template has one."""


KINDS: tuple[Kind, ...] = (
    Kind("pretrain", "Pretrain", "train a model from scratch on a tokenized dataset", True, "train"),
    Kind("finetune", "Finetune", "continue training from a checkpoint (given on the data page)", True,
         "finetune"),
    Kind("predict", "Predict", "generate from a trained checkpoint, once, then end", False, "predict"),
    Kind("serve", "Serve", "load a checkpoint for inference, sized for serving", False, "predict"),
    Kind("smoke", "Smoke test", "the small model on every node: proves msrun, network, NPUs", True,
         "train"),
)


def kind(name: JobKind) -> Kind:
    return next(k for k in KINDS if k.name == name)


# --- the fields people change -----------------------------------------------------------------------


@dataclass(frozen=True)
class FieldDef:
    key: str
    """The spec field (`model.hidden_size`), or for the learning-rate schedule a name of our own."""
    label: str
    help: str
    group: str


FIELDS: tuple[FieldDef, ...] = (
    FieldDef("model.hidden_size", "hidden size", "width of every layer (d_model)", "model size"),
    FieldDef("model.num_layers", "layers", "transformer blocks, MTP not counted", "model size"),
    FieldDef("model.num_heads", "heads", "attention heads; model_parallel must divide it", "model size"),
    FieldDef("model.intermediate_size", "intermediate", "dense MLP width of the first (dense) layers",
             "model size"),
    FieldDef("model.n_routed_experts", "experts", "routed experts per MoE layer", "MoE"),
    FieldDef("model.first_k_dense_replace", "dense layers first",
             "the first k layers use a dense MLP instead of MoE", "MoE"),
    FieldDef("model.num_experts_per_tok", "top-k", "routed experts chosen per token", "MoE"),
    FieldDef("model.scoring_func", "router", "sigmoid (DeepSeek-V3) or softmax scoring "
             "(research era: use_gating_sigmoid True/False)", "MoE"),
    FieldDef("parallel.data_parallel", "data parallel (dp)",
             "dp x mp x pp x cp must equal the devices of the chosen nodes", "parallel layout"),
    FieldDef("parallel.model_parallel", "model parallel (mp)", "tensor parallel ways", "parallel layout"),
    FieldDef("parallel.pipeline_stage", "pipeline stages (pp)", "layers split over this many stages",
             "parallel layout"),
    FieldDef("parallel.expert_parallel", "expert parallel (ep)", "routed experts split over this many "
             "devices; divides the experts and dp x mp", "parallel layout"),
    FieldDef("parallel.micro_batch_num", "micro-batches", "per step; at least pp keeps stages busy",
             "parallel layout"),
    FieldDef("parallel.optimizer_weight_shard_size", "optimizer shard",
             "-1: the whole data-parallel group, else a power of two dividing dp", "parallel layout"),
    FieldDef("model.seq_length", "sequence length", "tokens per sample (the dataset's too)", "training"),
    FieldDef("schedule.steps", "steps", "training steps (-1: the whole dataset)", "training"),
    FieldDef("schedule.epochs", "epochs", "passes over the dataset", "training"),
    FieldDef("schedule.learning_rate", "learning rate", "peak learning rate, e.g. 3.0e-4", "training"),
    FieldDef("schedule.warmup_steps", "warm-up steps", "steps of linear warm-up to the peak", "training"),
)

_SCHEDULE_PATHS: Mapping[Dialect, Mapping[str, str]] = {
    Dialect.RESEARCH: {"schedule.steps": "lr_schedule.total_steps", "schedule.epochs": "runner_config.epochs",
                       "schedule.learning_rate": "lr_schedule.learning_rate",
                       "schedule.warmup_steps": "lr_schedule.warmup_steps"},
    Dialect.PYNATIVE: {"schedule.steps": "training.steps",
                       "schedule.learning_rate": "optimizer.learning_rate",
                       "schedule.warmup_steps": "lr_scheduler.warmup_steps"},
}
_SCHEDULE_PATHS = {**_SCHEDULE_PATHS, Dialect.MCORE: _SCHEDULE_PATHS[Dialect.RESEARCH]}
_DATASET_SEQ = {Dialect.PYNATIVE: "train_dataset.dataloader.config.seq_length"}
_DATASET_SEQ_DEFAULT = "train_dataset.data_loader.config.seq_length"


@dataclass(frozen=True)
class FieldSlot:
    """One field as this template has it: where it lives and what the template says."""

    field: FieldDef
    path: str
    """The document path `derive` takes (`parallel_config.data_parallel`)."""
    value: str
    """The template's value as YAML text; '' when the template leaves it out (the default applies)."""


@dataclass(frozen=True)
class Template:
    """A job config read once: its text, dialect and spec."""

    path: Path
    text: str
    spec: JobSpec
    document: Mapping[str, Any]

    @property
    def dialect(self) -> Dialect:
        return self.spec.dialect

    @property
    def params(self) -> int:
        return count_params(self.spec.model).total

    def slots(self) -> tuple[FieldSlot, ...]:
        """The fields people change, in FIELDS order, each where this dialect keeps it."""
        paths = {f.target: dotted(f.path) for f in DIALECT_FIELDS[self.dialect]}
        paths.update(_SCHEDULE_PATHS[self.dialect])
        slots = []
        for field_def in FIELDS:
            path = paths.get(field_def.key)
            if path is None:
                continue
            found, value = lookup(self.document, path)
            parent, _, _ = path.rpartition(".")
            addable = tuple(path.split(".")) in known_field_paths() and \
                isinstance(lookup(self.document, parent)[1], dict)
            if found or addable:
                slots.append(FieldSlot(field_def, path, yaml_text(value) if found else ""))
        return tuple(slots)

    def path_of(self, spec_field: str) -> str:
        return next(dotted(f.path) for f in DIALECT_FIELDS[self.dialect] if f.target == spec_field)


def read_template(path: Path) -> Template:
    """Read and parse a job config; SourceError (file, line, field) when it cannot be used."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError([Problem(str(path), None, "", f"cannot read: {exc.strerror}")]) from exc
    spec = parse_spec(text, str(path))
    return Template(path, text, spec, yaml.safe_load(text))


def job_templates(directory: Path = TEMPLATES) -> list[Template]:
    """The job files shipped under configs/jobs/, those that parse, by name."""
    found = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            found.append(read_template(path))
        except SourceError:
            continue
    return found


def lookup(document: Any, path: str) -> tuple[bool, Any]:
    node = document
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def yaml_text(value: Any) -> str:
    """A value as one line of YAML flow text (`True`, `3.0e-3`, `['1', '/data/x']`)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value if _plain(value) else "'" + value.replace("'", "''") + "'"
    return yaml.safe_dump(value, default_flow_style=True, width=4096).strip()


def _float_text(value: float) -> str:
    text = repr(value)
    if "e" in text:
        mantissa, _, exponent = text.partition("e")
        mantissa = mantissa if "." in mantissa else f"{mantissa}.0"
        return f"{mantissa}e{exponent if exponent[0] in '+-' else '+' + exponent}"
    return text


def _plain(value: str) -> bool:
    try:
        return value != "" and yaml.safe_load(value) == value and "#" not in value and ": " not in value
    except yaml.YAMLError:
        return False


# --- the draft ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WizardDraft:
    """What the user chose so far. Empty strings and tuples mean "as the template has it"."""

    kind: JobKind = "pretrain"
    template: str = ""
    values: Mapping[str, str] = field(default_factory=dict)
    """Document path -> the value typed (YAML text), only for fields the user changed."""
    data_prefix: str = ""
    """A Megatron dataset prefix on the nodes (PREFIX.bin + PREFIX.idx)."""
    weights: str = ""
    """A checkpoint or weights path on the nodes."""
    nodes: tuple[str, ...] = ()
    """Chosen node names in cluster order; the first is the master (node_rank 0)."""
    master_port: int | None = None
    """None: the job file's or 8118, the next free one when taken."""
    page: int = 0
    """Where the user was: a wizard reopened there."""

    def with_value(self, path: str, text: str, template: Template) -> WizardDraft:
        """The draft with `path` set to `text`; typing the template's own value back forgets the edit."""
        values = dict(self.values)
        slot = next((s for s in template.slots() if s.path == path), None)
        if text.strip() == "" or (slot is not None and text.strip() == slot.value):
            values.pop(path, None)
        else:
            values[path] = text.strip()
        return dataclasses.replace(self, values=values)

    def as_json(self) -> dict[str, Any]:
        document = dataclasses.asdict(self)
        document["values"], document["nodes"] = dict(self.values), list(self.nodes)
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> WizardDraft:
        """A draft read back; ValueError for a document that is not one."""
        kinds: dict[str, JobKind] = {k.name: k.name for k in KINDS}
        kind_name = kinds.get(str(document.get("kind")))
        if kind_name is None:
            raise ValueError(f"unknown job kind {document.get('kind')!r}")
        values = document.get("values", {})
        port = document.get("master_port")
        if not isinstance(values, dict) or not (port is None or isinstance(port, int)):
            raise ValueError("values must be a mapping and master_port a number")
        return cls(kind=kind_name, template=str(document.get("template", "")),
                   values={str(k): str(v) for k, v in values.items()},
                   data_prefix=str(document.get("data_prefix", "")), weights=str(document.get("weights", "")),
                   nodes=tuple(str(n) for n in document.get("nodes", ())), master_port=port,
                   page=int(document.get("page", 0)))


def overrides(draft: WizardDraft, template: Template) -> tuple[str, ...]:
    """The `PATH=VALUE` list the draft comes to, in a stable order: kind, fields, data, weights."""
    found: list[str] = []
    has_mode, mode = lookup(template.document, "run_mode")
    wanted = kind(draft.kind).run_mode
    if has_mode and mode != wanted:
        found.append(f"run_mode={wanted}")
    for slot in template.slots():
        if slot.path in draft.values:
            found.append(f"{slot.path}={draft.values[slot.path]}")
            if slot.field.key == "model.seq_length":
                found += _dataset_seq(template, draft.values[slot.path])
    if draft.data_prefix:
        found.append(f"{template.path_of('training.data_path')}=['1', {_quoted(draft.data_prefix)}]")
    if draft.weights:
        found.append(f"{template.path_of('training.load_checkpoint')}={_quoted(draft.weights)}")
    return tuple(found)


def _dataset_seq(template: Template, value: str) -> list[str]:
    """The dataset's seq_length follows the model's, where the template has one."""
    path = _DATASET_SEQ.get(template.dialect, _DATASET_SEQ_DEFAULT)
    return [f"{path}={value}"] if lookup(template.document, path)[0] else []


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def request_for(draft: WizardDraft, template: Template) -> JobRequest:
    """The job request the launch takes: the same template, overrides, nodes and port."""
    return JobRequest(template=template.path, overrides=overrides(draft, template),
                      nodes=",".join(draft.nodes) or None, port=draft.master_port)


def derived_text(draft: WizardDraft, template: Template) -> str:
    """The derived config, exactly as `derive` writes it (SourceError when an override is refused)."""
    return derive(template.path, overrides(draft, template))


def save_derived(draft: WizardDraft, template: Template, path: Path) -> Path:
    """Write the derived config to `path` (the same bytes `derive` gives for the same overrides)."""
    path.write_bytes(derived_text(draft, template).encode("utf-8"))
    return path


def diff_text(template: Template, derived: str) -> str:
    """The derived config as a unified diff against its template (comments kept on both sides)."""
    return "".join(difflib.unified_diff(
        template.text.splitlines(keepends=True), derived.splitlines(keepends=True),
        fromfile=template.path.name, tofile="derived.yaml", n=2))


# --- checking a draft -------------------------------------------------------------------------------


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


def check_draft(draft: WizardDraft, template: Template, nodes: Sequence[NodeSpec]) -> DraftCheck:
    """Derive, parse, validate and estimate the draft on `nodes`; every problem keyed by its field."""
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
    estimate = None if any(p.severity == "error" for p in problems) else _estimate(job, devices, trains)
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


def _estimate(job: JobSpec, devices: int, trains: bool) -> EstimateSummary | None:
    """Parameters and memory per device per stage: training's for training kinds, else serving's."""
    try:
        params = count_params(job.model)
        if trains:
            memory = training_memory(job, devices, devices=devices)
            stages = tuple(StageFit(s.stage, s.num_layers, s.total, s.headroom) for s in memory.stages)
            limit, source, fits = memory.limit_bytes, memory.limit_source, memory.fits
        else:
            serving = inference_memory(job, batch=1, seq_len=job.model.seq_length, devices=devices)
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


# --- the draft between sessions ---------------------------------------------------------------------


def draft_path(directory: Path | None = None) -> Path:
    return (directory or state_dir()) / DRAFT_FILE


def save_draft(draft: WizardDraft, directory: Path | None = None) -> Path:
    path = draft_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(draft.as_json(), indent=1), encoding="utf-8")
    partial.replace(path)
    return path


def load_draft(directory: Path | None = None) -> WizardDraft | None:
    """The draft a wizard left, or None (none, or unreadable: a broken draft is not worth an error)."""
    try:
        document = json.loads(draft_path(directory).read_text(encoding="utf-8"))
        return WizardDraft.from_json(document) if isinstance(document, dict) else None
    except (OSError, ValueError, TypeError):
        return None


def discard_draft(directory: Path | None = None) -> None:
    draft_path(directory).unlink(missing_ok=True)
