"""The launch wizard's model, without Textual: the job kinds, the templates and the fields people change
in them, a draft of what the user chose, and the overrides, request and derived config it comes to.
Judging a draft on its nodes is console/jobs/wizardcheck.py; what the wizard writes to disk (the
derived config, its diff, the draft between sessions) is console/jobs/wizardfiles.py.

Everything here drives the one implementation that exists: `model.overrides.derive` renders, `validate`
judges, `model.estimate` sizes, `console.jobs.request.plan_job` plans (see docs/architecture.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

import configs
from console.jobs.request import JobRequest
from model.config import DIALECT_FIELDS, Dialect, JobSpec, parse_spec
from model.estimate import count_params
from model.overrides import derive, known_field_paths
from model.yamlsource import Problem, SourceError, dotted

JobKind = Literal["pretrain", "finetune", "predict", "serve", "smoke"]
TEMPLATES = Path(configs.__file__).parent / "jobs"
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
    data_text: str = ""
    """A text file on this machine to convert into the dataset (then data_prefix names the result)."""
    tokenizer: str = ""
    """The tokenizer.json on this machine that converts data_text; empty: the embedded corpus's."""
    weights: str = ""
    """A checkpoint or weights path on the nodes."""
    weights_here: str = ""
    """A checkpoint or weights path on this machine to copy to the nodes (then weights names the copy)."""
    weights_hub: str = ""
    """A hub repository id to fetch onto the nodes (then weights names the download)."""
    prompt: str = ""
    """A predict job's prompt."""
    nodes: tuple[str, ...] = ()
    """Chosen node names in cluster order."""
    master: str = ""
    """The chosen node that is node_rank 0; empty, or a node no longer chosen: the first chosen."""
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

    def with_texts(self, texts: Mapping[str, str]) -> WizardDraft:
        """The draft with some of its plain text fields (`data_prefix`, `weights_hub`, ...) set."""
        unknown = set(texts) - set(_TEXT_FIELDS)
        if unknown:
            raise ValueError(f"not text fields of a draft: {sorted(unknown)}")
        changes: dict[str, Any] = dict(texts)
        return dataclasses.replace(self, **changes)

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
        texts = {name: str(document.get(name, "")) for name in _TEXT_FIELDS}
        return cls(kind=kind_name, values={str(k): str(v) for k, v in values.items()},
                   nodes=tuple(str(n) for n in document.get("nodes", ())), master_port=port,
                   page=int(document.get("page", 0)), **texts)

    @property
    def master_node(self) -> str | None:
        return master_of(self.nodes, self.master)


_TEXT_FIELDS = ("template", "data_prefix", "data_text", "tokenizer", "weights", "weights_here", "weights_hub",
                "prompt", "master")
"""The draft's plain text fields: a draft saved before a field existed reads it back empty."""


def master_of(nodes: tuple[str, ...], master: str) -> str | None:
    """The chosen node that will be node_rank 0: `master` while it is chosen, else the first chosen; None
    while no node is chosen."""
    return master if master in nodes else next(iter(nodes), None)


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
    """The job request the launch takes: the same template, overrides, nodes, master and port; a predict
    job with its prompt and checkpoint (the weights on the nodes), a serve job a server."""
    predicting = draft.kind == "predict"
    return JobRequest(template=template.path, overrides=overrides(draft, template),
                      nodes=",".join(draft.nodes) or None, master=draft.master_node, port=draft.master_port,
                      kind="predict" if predicting else "serve" if draft.kind == "serve" else "train",
                      prompts=(draft.prompt,) if predicting and draft.prompt.strip() else (),
                      checkpoint=draft.weights or None if predicting else None)


def derived_text(draft: WizardDraft, template: Template) -> str:
    """The derived config, exactly as `derive` writes it (SourceError when an override is refused)."""
    return derive(template.path, overrides(draft, template))
