"""MindFormers job configs in their three dialects, read into one typed, frozen spec.

The dialects name the same facts differently (see docs in /work/shared/reference/deepseek-v3.md):
research era (`model.model_config` + `moe_config` + `parallel_config`), mcore (`use_legacy: False`,
Hugging Face names under `model.model_config`) and pynative (`model:` + `parallelism:` + `training:`).
Each dialect is a table from spec field to document path. A field the document leaves out takes
DeepSeek-V3's published value (the dataclass default) and is listed in `JobSpec.defaulted`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from model.placement import (
    LayerPlan,
    Offset,
    even_counts,
    offsets_from_counts,
    parse_layers_per_stage,
)
from remote.yamlsource import (
    FieldPath,
    LocatedDocument,
    Problem,
    SourceError,
    dotted,
    load_located,
    load_located_file,
)

# `offset`: one int for every stage, one int per stage, or (with pp_interleave_num) one list per chunk
# (Offset is defined in model.placement)
Scoring = Literal["sigmoid", "softmax"]
Recompute = Literal["none", "selective", "full"]


class Dialect(str, Enum):
    """Which MindFormers layout a config file uses."""

    RESEARCH = "research"
    MCORE = "mcore"
    PYNATIVE = "pynative"


@dataclass(frozen=True)
class ModelSpec:
    """The architecture. Defaults are DeepSeek-V3's published 671B values, so `ModelSpec()` is that model."""

    num_layers: int = 61
    """Transformer blocks in the main model (MTP modules not counted)."""
    hidden_size: int = 7168
    num_heads: int = 128
    vocab_size: int = 129280
    """Embedding and output head are separate (not tied)."""
    seq_length: int = 4096
    max_position_embeddings: int = 163840
    intermediate_size: int = 18432
    """SwiGLU intermediate size of the dense MLP in the first `first_k_dense_replace` layers."""
    q_lora_rank: int = 1536
    kv_lora_rank: int = 512
    qk_nope_head_dim: int = 128
    qk_rope_head_dim: int = 64
    v_head_dim: int = 128
    n_routed_experts: int = 256
    n_shared_experts: int = 1
    num_experts_per_tok: int = 8
    """Top-k routed experts per token."""
    moe_intermediate_size: int = 2048
    first_k_dense_replace: int = 3
    """The first k layers use a dense MLP instead of MoE."""
    n_group: int = 8
    topk_group: int = 4
    routed_scaling_factor: float = 2.5
    scoring_func: Scoring = "sigmoid"
    mtp_depth: int = 1
    """Multi-token prediction modules (0 = none)."""
    mtp_loss_factor: float = 0.3
    offset: Offset = 0
    """Extra layers per pipeline stage on top of (num_layers + mtp_depth) // pipeline_stage."""
    bias_update_rate: float = 0.001
    """Auxiliary-loss-free balancing: after each step b_i += rate * sign(mean load - load_i)
    (research `moe_config.topk_bias_update_rate`, mcore/pynative `moe_router_bias_update_rate`)."""
    balance_via_bias: bool = True
    """Whether the per-expert selection bias b_i is used and updated (research
    `moe_config.balance_via_topk_bias`, mcore/pynative `moe_router_enable_expert_bias`)."""
    aux_loss_factor: float = 0.0001
    """Factor of the sequence-wise balance loss (research: the first of `moe_config.aux_loss_factors`,
    mcore/pynative `moe_aux_loss_coeff`)."""
    norm_topk_prob: bool = True
    """Whether the chosen experts' sigmoid scores are normalised to sum to 1 before routed_scaling_factor."""
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    """RoPE base (research `model_config.theta`)."""


@dataclass(frozen=True)
class ParallelSpec:
    """The parallel layout. Defaults are 'no parallelism', MindFormers' own defaults."""

    data_parallel: int = 1
    """-1 (pynative `data_parallel_shard`) means: whatever devices the other axes leave."""
    model_parallel: int = 1
    """Tensor parallel."""
    pipeline_stage: int = 1
    expert_parallel: int = 1
    context_parallel: int = 1
    micro_batch_num: int = 1
    use_seq_parallel: bool = False
    optimizer_weight_shard_size: int = -1
    """Parallel-optimizer shard group; -1 shards across the whole data-parallel group."""
    parallel_optimizer: bool = False
    """`parallel.enable_parallel_optimizer` (MindSpore's default is off)."""
    pp_interleave_num: int = 1
    vocab_emb_dp: bool = False
    """True: the embedding and the output head are replicated over tensor parallel, not split (research
    `parallel_config.vocab_emb_dp`, whose MindFormers default is True; mcore converts it to False and
    pynative always splits the vocabulary)."""
    expert_tensor_parallel: int | None = None
    """How many ways each routed expert's matrices are split. None: over model_parallel, as research-era and
    mcore MoE shard them (experts over expert_parallel, each over model_parallel); pynative reads
    `parallelism.expert_tensor_parallel` (MindFormers' default 1)."""


@dataclass(frozen=True)
class TrainingSpec:
    """What the run trains with: batch sizes, dtypes, memory limit and the paths it reads."""

    batch_size: int = 1
    """Micro-batch size per data-parallel rank."""
    global_batch_size: int | None = None
    params_dtype: str = "float32"
    compute_dtype: str = "bfloat16"
    recompute: Recompute = "none"
    """The level of every layer, or with `full_recompute_layers` of the layers not fully recomputed."""
    full_recompute_layers: tuple[int, ...] | None = None
    """Per pipeline stage, how many of its layers (the first ones) are fully recomputed; None: all or none,
    as `recompute` says."""
    max_device_memory: str | None = None
    """MindSpore's `context.max_device_memory`, e.g. '58GB'; None means the device's HBM."""
    data_path: tuple[str, ...] = ()
    """As written: a Megatron blend alternates weights and path prefixes (`['1', '/data/wiki']`)."""
    load_checkpoint: str | None = None
    lr_schedule: str | None = None

    @property
    def data_prefixes(self) -> tuple[str, ...]:
        """The dataset path prefixes, without the blend weights."""
        paths = self.data_path
        if len(paths) % 2 == 0 and all(_is_number(p) for p in paths[::2]):
            return paths[1::2]
        return paths


@dataclass(frozen=True)
class Location:
    """Where a spec field was read: the dotted document path and its 1-based line."""

    path: str
    line: int | None


@dataclass(frozen=True)
class JobSpec:
    """One job config, whatever its dialect."""

    source: str
    dialect: Dialect
    model: ModelSpec
    parallel: ParallelSpec
    training: TrainingSpec
    defaulted: frozenset[str]
    """Spec fields (`model.n_group`, `parallel.context_parallel`) the file left out."""
    locations: Mapping[str, Location] = field(default_factory=dict, compare=False, hash=False)
    """Spec field -> where the file set it; for error messages that point into the file."""
    derived: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    """Spec fields computed from other fields rather than read (pynative micro_batch_num from the batch
    sizes), each with how; their `locations` point at the field they were computed from."""

    def location(self, spec_field: str) -> Location | None:
        return self.locations.get(spec_field)


REQUIRED = frozenset({"model.num_layers", "model.hidden_size", "model.num_heads"})


class _Invalid(ValueError):
    """A value of the wrong type; the message says what would be valid."""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})" if not isinstance(value, str) else repr(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"expected an integer, got {_describe(value)}")
    return value


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid(f"expected a number, got {_describe(value)}")
    return float(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected True or False, got {_describe(value)}")
    return value


def _first_float(value: Any) -> float:
    """Research-era `aux_loss_factors`: one per `aux_loss_types`; the first is the sequence-wise one."""
    if isinstance(value, list):
        if not value:
            raise _Invalid("expected a list of at least one number, got []")
        return _float(value[0])
    return _float(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {_describe(value)}")
    return value


def _optional_str(value: Any) -> str | None:
    return None if value is None or value == "" else _str(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def _str_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise _Invalid(f"expected a list of paths (and blend weights), got {_describe(value)}")
    return tuple(str(v) for v in value)


def _offset(value: Any) -> Offset:
    try:
        return _int(value)
    except _Invalid:
        pass
    if isinstance(value, list) and all(not isinstance(v, list) for v in value):
        try:
            return tuple(_int(v) for v in value)
        except _Invalid:
            pass
    if isinstance(value, list) and all(isinstance(v, list) for v in value):
        try:
            return tuple(tuple(_int(x) for x in v) for v in value)
        except _Invalid:
            pass
    raise _Invalid(f"expected an integer, a list of integers (one per stage) or a list of such lists, "
                   f"got {_describe(value)}")


def _scoring(value: Any) -> Scoring:
    if value in ("sigmoid", "softmax"):
        return value  # type: ignore[no-any-return]
    raise _Invalid(f"expected 'sigmoid' or 'softmax', got {_describe(value)}")


def _scoring_from_gating(value: Any) -> Scoring:
    """Research era: `use_gating_sigmoid: True` means a sigmoid router."""
    return "sigmoid" if _bool(value) else "softmax"


def _recompute(value: Any) -> Recompute:
    """`recompute_config` (`recompute`: bool, int or per-stage list; `select_recompute`) or a level name."""
    if value in ("none", "selective", "full"):
        return value  # type: ignore[no-any-return]
    if not isinstance(value, dict):
        raise _Invalid(f"expected a recompute_config mapping or none/selective/full, got {_describe(value)}")
    recompute = value.get("recompute")
    if not isinstance(recompute, list) and _truthy(recompute):
        return "full"
    return "selective" if _truthy(value.get("select_recompute")) else "none"


def _full_recompute_layers(value: Any) -> tuple[int, ...] | None:
    """`recompute_config.recompute` as a list: how many layers of each pipeline stage are fully recomputed
    (the published 671b config: [3, 4, ..., 3, 2, 0]). None when it is one switch for every layer."""
    recompute = value.get("recompute") if isinstance(value, dict) else None
    if not isinstance(recompute, list):
        return None
    if not all(type(n) is int and n >= 0 for n in recompute):
        raise _Invalid(f"recompute: expected True/False or a list of layer counts, one per pipeline stage, "
                       f"got {_describe(recompute)}")
    return tuple(n for n in recompute if isinstance(n, int))


def _recompute_mode(value: Any) -> Recompute:
    """Pynative `recompute.mode`: None, 'full' or 'select' (MindFormers' RecomputeConfig)."""
    modes: dict[Any, Recompute] = {None: "none", "None": "none", "full": "full", "select": "selective"}
    if isinstance(value, (str, type(None))) and value in modes:
        return modes[value]
    raise _Invalid(f"expected None, 'full' or 'select', got {_describe(value)}")


def _layer_plan(value: Any) -> LayerPlan | None:
    try:
        return parse_layers_per_stage(value)
    except ValueError as exc:
        raise _Invalid(str(exc)) from None


def _truthy(value: Any) -> bool:
    if isinstance(value, list):
        return any(_truthy(v) for v in value)
    return bool(value)


Parse = Callable[[Any], object]
_LAYER_PLAN = "pynative.layer_plan"
"""A table target that is not a spec field: the parsed `pipeline_parallel_layers_per_stage`."""


@dataclass(frozen=True)
class _Field:
    target: str
    """`section.name` in the spec, e.g. `model.num_layers`."""
    path: FieldPath
    parse: Parse


def _table(rows: list[tuple[str, str, Parse]]) -> tuple[_Field, ...]:
    return tuple(_Field(target, tuple(path.split(".")), parse) for target, path, parse in rows)


_SHARED_PARALLEL: list[tuple[str, str, Parse]] = [
    ("parallel.data_parallel", "parallel_config.data_parallel", _int),
    ("parallel.model_parallel", "parallel_config.model_parallel", _int),
    ("parallel.pipeline_stage", "parallel_config.pipeline_stage", _int),
    ("parallel.expert_parallel", "parallel_config.expert_parallel", _int),
    ("parallel.context_parallel", "parallel_config.context_parallel", _int),
    ("parallel.micro_batch_num", "parallel_config.micro_batch_num", _int),
    ("parallel.use_seq_parallel", "parallel_config.use_seq_parallel", _bool),
    ("parallel.optimizer_weight_shard_size",
     "parallel.parallel_optimizer_config.optimizer_weight_shard_size", _int),
    ("parallel.parallel_optimizer", "parallel.enable_parallel_optimizer", _bool),
    ("training.batch_size", "runner_config.batch_size", _int),
    ("training.recompute", "recompute_config", _recompute),
    ("training.full_recompute_layers", "recompute_config", _full_recompute_layers),
    ("training.max_device_memory", "context.max_device_memory", _optional_str),
    ("training.data_path", "train_dataset.data_loader.config.data_path", _str_list),
    ("training.load_checkpoint", "load_checkpoint", _optional_str),
    ("training.lr_schedule", "lr_schedule.type", _optional_str),
]

_MLA: list[tuple[str, str, Parse]] = [
    (f"model.{name}", f"model.model_config.{name}", _int)
    for name in ("vocab_size", "seq_length", "max_position_embeddings", "intermediate_size",
                 "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
]

def _hf_router_fields(prefix: str) -> list[tuple[str, str, Parse]]:
    """mcore and pynative name the balancing, norm and RoPE fields alike, under `prefix`."""
    return [
        ("model.bias_update_rate", f"{prefix}moe_router_bias_update_rate", _float),
        ("model.balance_via_bias", f"{prefix}moe_router_enable_expert_bias", _bool),
        ("model.aux_loss_factor", f"{prefix}moe_aux_loss_coeff", _float),
        ("model.norm_topk_prob", f"{prefix}norm_topk_prob", _bool),
        ("model.rms_norm_eps", f"{prefix}rms_norm_eps", _float),
        ("model.rope_theta", f"{prefix}rope_theta", _float),
    ]


_RESEARCH = _table([
    ("model.num_layers", "model.model_config.num_layers", _int),
    ("parallel.vocab_emb_dp", "parallel_config.vocab_emb_dp", _bool),
    ("model.hidden_size", "model.model_config.hidden_size", _int),
    ("model.num_heads", "model.model_config.num_heads", _int),
    *_MLA,
    ("model.n_routed_experts", "moe_config.expert_num", _int),
    ("model.n_shared_experts", "moe_config.shared_expert_num", _int),
    ("model.num_experts_per_tok", "moe_config.num_experts_chosen", _int),
    ("model.moe_intermediate_size", "moe_config.moe_intermediate_size", _int),
    ("model.first_k_dense_replace", "moe_config.first_k_dense_replace", _int),
    ("model.n_group", "moe_config.n_group", _int),
    ("model.topk_group", "moe_config.topk_group", _int),
    ("model.routed_scaling_factor", "moe_config.routed_scaling_factor", _float),
    ("model.scoring_func", "moe_config.use_gating_sigmoid", _scoring_from_gating),
    ("model.mtp_depth", "model.model_config.mtp_depth", _int),
    ("model.mtp_loss_factor", "model.model_config.mtp_loss_factor", _float),
    ("model.offset", "model.model_config.offset", _offset),
    ("model.bias_update_rate", "moe_config.topk_bias_update_rate", _float),
    ("model.balance_via_bias", "moe_config.balance_via_topk_bias", _bool),
    ("model.aux_loss_factor", "moe_config.aux_loss_factors", _first_float),
    ("model.norm_topk_prob", "moe_config.norm_topk_prob", _bool),
    ("model.rms_norm_eps", "model.model_config.rms_norm_eps", _float),
    ("model.rope_theta", "model.model_config.theta", _float),
    ("parallel.pp_interleave_num", "model.model_config.pp_interleave_num", _int),
    ("training.params_dtype", "model.model_config.param_init_type", _str),
    ("training.compute_dtype", "model.model_config.compute_dtype", _str),
    *_SHARED_PARALLEL,
])

_MCORE = _table([
    ("model.num_layers", "model.model_config.num_hidden_layers", _int),
    ("model.hidden_size", "model.model_config.hidden_size", _int),
    ("model.num_heads", "model.model_config.num_attention_heads", _int),
    *_MLA,
    *[(f"model.{name}", f"model.model_config.{name}", _int)
      for name in ("n_routed_experts", "n_shared_experts", "num_experts_per_tok", "moe_intermediate_size",
                   "first_k_dense_replace", "n_group", "topk_group")],
    ("model.routed_scaling_factor", "model.model_config.routed_scaling_factor", _float),
    ("model.scoring_func", "model.model_config.scoring_func", _scoring),
    ("model.mtp_depth", "model.model_config.num_nextn_predict_layers", _int),
    ("model.mtp_loss_factor", "model.model_config.mtp_loss_factor", _float),
    ("model.offset", "model.model_config.offset", _offset),
    *_hf_router_fields("model.model_config."),
    ("parallel.pp_interleave_num", "model.model_config.pp_interleave_num", _int),
    ("training.params_dtype", "model.model_config.params_dtype", _str),
    ("training.compute_dtype", "model.model_config.compute_dtype", _str),
    *_SHARED_PARALLEL,
])

_PYNATIVE = _table([
    ("model.num_layers", "model.num_hidden_layers", _int),
    ("model.hidden_size", "model.hidden_size", _int),
    ("model.num_heads", "model.num_attention_heads", _int),
    *[(f"model.{name}", f"model.{name}", _int)
      for name in ("vocab_size", "seq_length", "max_position_embeddings", "intermediate_size",
                   "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
                   "n_routed_experts", "n_shared_experts", "num_experts_per_tok", "moe_intermediate_size",
                   "first_k_dense_replace", "n_group", "topk_group")],
    ("model.routed_scaling_factor", "model.routed_scaling_factor", _float),
    ("model.scoring_func", "model.scoring_func", _scoring),
    ("model.mtp_depth", "model.num_nextn_predict_layers", _int),
    ("model.mtp_loss_factor", "model.mtp_loss_scaling_factor", _float),
    *_hf_router_fields("model."),
    ("parallel.data_parallel", "parallelism.data_parallel_shard", _int),
    ("parallel.model_parallel", "parallelism.tensor_parallel", _int),
    ("parallel.pipeline_stage", "parallelism.pipeline_parallel", _int),
    ("parallel.expert_parallel", "parallelism.expert_parallel", _int),
    ("parallel.context_parallel", "parallelism.context_parallel", _int),
    ("parallel.pp_interleave_num", "parallelism.pipeline_parallel_interleave_num", _int),
    ("parallel.expert_tensor_parallel", "parallelism.expert_tensor_parallel", _int),
    (_LAYER_PLAN, "parallelism.pipeline_parallel_layers_per_stage", _layer_plan),
    ("training.batch_size", "training.local_batch_size", _int),
    ("training.global_batch_size", "training.global_batch_size", _optional_int),
    ("training.params_dtype", "model.params_dtype", _str),
    ("training.compute_dtype", "model.compute_dtype", _str),
    ("training.recompute", "recompute.mode", _recompute_mode),
    ("training.max_device_memory", "context.max_device_memory", _optional_str),
    ("training.data_path", "train_dataset.dataloader.config.data_path", _str_list),
    ("training.load_checkpoint", "checkpoint.load_path", _optional_str),
    ("training.lr_schedule", "lr_scheduler.type", _optional_str),
])

DIALECT_FIELDS: Mapping[Dialect, tuple[_Field, ...]] = {
    Dialect.RESEARCH: _RESEARCH,
    Dialect.MCORE: _MCORE,
    Dialect.PYNATIVE: _PYNATIVE,
}


def detect_dialect(doc: LocatedDocument) -> Dialect:
    """research: `model.model_config`; mcore: the same with `use_legacy: False`;
    pynative: `model` + `parallelism`."""
    data = doc.data
    model = data.get("model") if isinstance(data, dict) else None
    if isinstance(model, dict) and isinstance(model.get("model_config"), dict):
        return Dialect.MCORE if data.get("use_legacy") is False else Dialect.RESEARCH
    if isinstance(model, dict) and isinstance(data.get("parallelism"), dict):
        return Dialect.PYNATIVE
    raise SourceError([doc.problem((), "unknown config dialect: expected model.model_config (research era, "
                                       "or mcore with use_legacy: False) or model + parallelism (pynative)")])


def load_spec(path: Path) -> JobSpec:
    """Read a MindFormers job config file into a JobSpec; every problem in it in one SourceError."""
    return spec_from_document(load_located_file(path))


def parse_spec(text: str, source: str) -> JobSpec:
    return spec_from_document(load_located(text, source))


def spec_from_document(doc: LocatedDocument) -> JobSpec:
    dialect = detect_dialect(doc)
    values: dict[str, object] = {}
    locations: dict[str, Location] = {}
    problems: list[Problem] = []
    for spec_field in DIALECT_FIELDS[dialect]:
        before = len(problems)
        found, raw = _lookup(doc, spec_field.path, problems)
        if not found:
            if spec_field.target in REQUIRED and len(problems) == before:
                message = f"missing: {dotted(spec_field.path)} is required in the {dialect.value} dialect"
                problems.append(doc.problem(spec_field.path, message))
            continue
        try:
            values[spec_field.target] = spec_field.parse(raw)
        except _Invalid as exc:
            problems.append(doc.problem(spec_field.path, str(exc)))
        locations[spec_field.target] = Location(dotted(spec_field.path), doc.line_of(spec_field.path))
    derived: dict[str, str] = {}
    if dialect is Dialect.PYNATIVE and not problems:
        _derive_pynative(doc, values, locations, derived, problems)
    if dialect is Dialect.RESEARCH and "parallel.vocab_emb_dp" not in values:
        values["parallel.vocab_emb_dp"] = True
        derived["parallel.vocab_emb_dp"] = "MindFormers' default when parallel_config leaves it out"
    if problems:
        raise SourceError(list(dict.fromkeys(problems)))
    return _build(doc.source, dialect, values, locations, derived)


def _lookup(doc: LocatedDocument, path: FieldPath, problems: list[Problem]) -> tuple[bool, Any]:
    node: Any = doc.data
    for depth, part in enumerate(path):
        if not isinstance(node, dict):
            if node is not None:
                problems.append(doc.problem(path[:depth], f"expected a mapping, got {_describe(node)}"))
            return False, None
        if part not in node:
            return False, None
        node = node[part]
    return True, node


# ---------------------------------------------------------------- pynative: fields computed, not read

_LAYERS_PER_STAGE: FieldPath = ("parallelism", "pipeline_parallel_layers_per_stage")
AUTO_PLACEMENT = "even placement (pipeline_parallel_layers_per_stage is auto or left out)"


def _derive_pynative(doc: LocatedDocument, values: dict[str, object], locations: dict[str, Location],
                     derived: dict[str, str], problems: list[Problem]) -> None:
    """What MindFormers' pynative trainer computes instead of reading (checked against its source,
    mindformers/pynative: config/config.py, trainer/trainer.py, distributed/pipeline_parallel.py):

    - sequence parallel: on whenever tensor_parallel > 1. `parallelism.sequence_parallel` is a declared
      key of its ParallelismConfig (its sample YAMLs set it even with tp 1), but we could not confirm that
      anything reads it, and the pynative tensor-parallel plan shards the sequence with the tensors; we
      derive it from tp and ignore the key.
    - micro-batches: global_batch_size // (dp x local_batch_size) (the trainer's accumulation steps, which
      the pipeline schedule runs as micro-batches), when the file gives global_batch_size and a dp other
      than -1. MindFormers takes dp as world_size // (tp x pp x cp); we take `data_parallel_shard`.
    - layer placement: `pipeline_parallel_layers_per_stage` as research-era offsets (model/placement.py).
    """
    get = functools.partial(_value_or_default, values)
    values.setdefault("parallel.expert_tensor_parallel", 1)  # MindFormers' pynative default
    tp = get("parallel.model_parallel")
    values["parallel.use_seq_parallel"] = tp > 1
    derived["parallel.use_seq_parallel"] = f"on when tensor_parallel > 1 (tensor_parallel {tp})"
    _point_at(locations, "parallel.use_seq_parallel", "parallel.model_parallel")
    global_batch, dp, local = values.get("training.global_batch_size"), get("parallel.data_parallel"), \
        get("training.batch_size")
    if isinstance(global_batch, int) and dp > 0 and local > 0:
        values["parallel.micro_batch_num"] = global_batch // (dp * local)
        derived["parallel.micro_batch_num"] = (f"global_batch_size // (data_parallel_shard x "
                                               f"local_batch_size) = {global_batch} // ({dp} x {local})")
        _point_at(locations, "parallel.micro_batch_num", "training.global_batch_size")
    _derive_offset(doc, values, locations, derived, problems)


def _derive_offset(doc: LocatedDocument, values: dict[str, object], locations: dict[str, Location],
                   derived: dict[str, str], problems: list[Problem]) -> None:
    plan, location = values.pop(_LAYER_PLAN, None), locations.pop(_LAYER_PLAN, None)
    get = functools.partial(_value_or_default, values)
    layers, pp = get("model.num_layers"), get("parallel.pipeline_stage")
    chunks = get("parallel.pp_interleave_num")
    if min(layers, pp, chunks) < 1:
        return  # validate.py reports the impossible size
    if isinstance(plan, LayerPlan):
        problem = _plan_problem(plan, layers, pp, chunks)
        if problem:
            problems.append(doc.problem(_LAYERS_PER_STAGE, problem))
            return
        counts, derived["model.offset"] = plan.counts, "from pipeline_parallel_layers_per_stage"
    else:
        counts, derived["model.offset"] = even_counts(layers, pp, chunks), AUTO_PLACEMENT
    values["model.offset"] = offsets_from_counts(counts, layers, get("model.mtp_depth"))
    locations["model.offset"] = location or Location(dotted(_LAYERS_PER_STAGE), None)


def _plan_problem(plan: LayerPlan, layers: int, pp: int, chunks: int) -> str | None:
    if len(plan.counts[0]) != pp:
        return f"has {len(plan.counts[0])} entries; pipeline_parallel is {pp}: give one per pipeline stage"
    if len(plan.counts) != chunks:
        return (f"gives {len(plan.counts)} chunk(s) per stage; pipeline_parallel_interleave_num is {chunks}: "
                f"give one 'start-end' range per chunk, separated by commas")
    held = sum(sum(chunk) for chunk in plan.counts)
    if held != layers:
        return f"the stages hold {held} layers, but num_hidden_layers is {layers}"
    return None


def _value_or_default(values: Mapping[str, object], target: str) -> Any:
    if target in values:
        return values[target]
    section, name = target.split(".")
    return next(f.default for f in fields(_SECTIONS[section]) if f.name == name)


def _point_at(locations: dict[str, Location], target: str, source: str) -> None:
    if source in locations:
        locations[target] = locations[source]


def _build(source: str, dialect: Dialect, values: dict[str, object],
           locations: dict[str, Location], derived: dict[str, str]) -> JobSpec:
    sections: dict[str, dict[str, Any]] = {"model": {}, "parallel": {}, "training": {}}
    for target, value in values.items():
        section, name = target.split(".")
        sections[section][name] = value
    every = {f"{section}.{name}" for section, cls in _SECTIONS.items() for name in _field_names(cls)}
    return JobSpec(
        source=source,
        dialect=dialect,
        model=ModelSpec(**sections["model"]),
        parallel=ParallelSpec(**sections["parallel"]),
        training=TrainingSpec(**sections["training"]),
        defaulted=frozenset(every - values.keys()),
        locations=locations,
        derived=derived,
    )


def _field_names(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


_SECTIONS: Mapping[str, type] = {"model": ModelSpec, "parallel": ParallelSpec, "training": TrainingSpec}
