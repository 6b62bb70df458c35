"""MindFormers job configs in their three dialects, read into one typed, frozen spec.

The dialects name the same facts differently (see docs in /work/shared/reference/deepseek-v3.md):
research era (`model.model_config` + `moe_config` + `parallel_config`), mcore (`use_legacy: False`,
Hugging Face names under `model.model_config`) and pynative (`model:` + `parallelism:` + `training:`).
Each dialect is a table from spec field to document path. A field the document leaves out takes what
MindFormers would use (docs/estimates.md, "Where values come from"): in the mcore dialect the value of
`pretrained_model_dir`'s config.json when the caller read it (model/pretrained.py), else the model class's
own default (model/classdefaults.py); `JobSpec.defaulted` says which, field by field.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from model.classdefaults import CLASS_DEFAULT, CLASS_DEFAULTS, CONFIG_JSON, source_of_default
from model.keys import run_mode_of, unknown_key_problems, unknown_keys
from model.placement import (
    LayerPlan,
    Offset,
    even_counts,
    offsets_from_counts,
    parse_layers_per_stage,
)
from model.pretrained import QUANT_METHOD, Pretrained
from model.spec import (
    Dialect,
    InferenceSpec,
    JobSpec,
    Location,
    ModelSpec,
    ParallelSpec,
    Recompute,
    Scoring,
    TrainingSpec,
)
from model.yamlsource import (
    FieldPath,
    LocatedDocument,
    Problem,
    SourceError,
    dotted,
    load_located,
    load_located_file,
)
from model.yamlvalues import (
    InvalidValue,
    as_bool,
    as_float,
    as_int,
    as_optional_int,
    as_optional_str,
    as_str,
    as_str_list,
    describe,
    truthy,
)

__all__ = [  # the spec types are re-exported: readers of configs import them from here
    "DIALECT_FIELDS",
    "Dialect",
    "InferenceSpec",
    "JobSpec",
    "Location",
    "ModelSpec",
    "ParallelSpec",
    "Recompute",
    "Scoring",
    "TrainingSpec",
    "defaulted_paths",
    "detect_dialect",
    "load_spec",
    "parse_spec",
    "pretrained_model_dir",
    "spec_from_document",
]


def _first_float(value: Any) -> float:
    """Research-era `aux_loss_factors`: one per `aux_loss_types`; the first is the sequence-wise one."""
    if isinstance(value, list):
        if not value:
            raise InvalidValue("expected a list of at least one number, got []")
        return as_float(value[0])
    return as_float(value)


def _offset(value: Any) -> Offset:
    try:
        return as_int(value)
    except InvalidValue:
        pass
    if isinstance(value, list) and all(not isinstance(v, list) for v in value):
        try:
            return tuple(as_int(v) for v in value)
        except InvalidValue:
            pass
    if isinstance(value, list) and all(isinstance(v, list) for v in value):
        try:
            return tuple(tuple(as_int(x) for x in v) for v in value)
        except InvalidValue:
            pass
    raise InvalidValue(f"expected an integer, a list of integers (one per stage) or a list of such lists, "
                   f"got {describe(value)}")


def _scoring(value: Any) -> Scoring:
    if value in ("sigmoid", "softmax"):
        return value  # type: ignore[no-any-return]
    raise InvalidValue(f"expected 'sigmoid' or 'softmax', got {describe(value)}")


def _scoring_from_gating(value: Any) -> Scoring:
    """Research era: `use_gating_sigmoid: True` means a sigmoid router."""
    return "sigmoid" if as_bool(value) else "softmax"


def _recompute(value: Any) -> Recompute:
    """`recompute_config` (`recompute`: bool, int or per-stage list; `select_recompute`) or a level name."""
    if value in ("none", "selective", "full"):
        return value  # type: ignore[no-any-return]
    if not isinstance(value, dict):
        raise InvalidValue("expected a recompute_config mapping or none/selective/full, "
                           f"got {describe(value)}")
    recompute = value.get("recompute")
    if not isinstance(recompute, list) and truthy(recompute):
        return "full"
    return "selective" if truthy(value.get("select_recompute")) else "none"


def _full_recompute_layers(value: Any) -> tuple[int, ...] | None:
    """`recompute_config.recompute` as a list: how many layers of each pipeline stage are fully recomputed
    (the published 671b config: [3, 4, ..., 3, 2, 0]). None when it is one switch for every layer."""
    recompute = value.get("recompute") if isinstance(value, dict) else None
    if not isinstance(recompute, list):
        return None
    if not all(type(n) is int and n >= 0 for n in recompute):
        raise InvalidValue("recompute: expected True/False or a list of layer counts, one per pipeline "
                           f"stage, got {describe(recompute)}")
    return tuple(n for n in recompute if isinstance(n, int))


def _recompute_mode(value: Any) -> Recompute:
    """Pynative `recompute.mode`: None, 'full' or 'select' (MindFormers' RecomputeConfig)."""
    modes: dict[Any, Recompute] = {None: "none", "None": "none", "full": "full", "select": "selective"}
    if isinstance(value, (str, type(None))) and value in modes:
        return modes[value]
    raise InvalidValue(f"expected None, 'full' or 'select', got {describe(value)}")


def _layer_plan(value: Any) -> LayerPlan | None:
    try:
        return parse_layers_per_stage(value)
    except ValueError as exc:
        raise InvalidValue(str(exc)) from None


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
    ("parallel.data_parallel", "parallel_config.data_parallel", as_int),
    ("parallel.model_parallel", "parallel_config.model_parallel", as_int),
    ("parallel.pipeline_stage", "parallel_config.pipeline_stage", as_int),
    ("parallel.expert_parallel", "parallel_config.expert_parallel", as_int),
    ("parallel.context_parallel", "parallel_config.context_parallel", as_int),
    ("parallel.micro_batch_num", "parallel_config.micro_batch_num", as_int),
    ("parallel.use_seq_parallel", "parallel_config.use_seq_parallel", as_bool),
    ("parallel.optimizer_weight_shard_size",
     "parallel.parallel_optimizer_config.optimizer_weight_shard_size", as_int),
    ("parallel.parallel_optimizer", "parallel.enable_parallel_optimizer", as_bool),
    ("training.batch_size", "runner_config.batch_size", as_int),
    ("training.recompute", "recompute_config", _recompute),
    ("training.full_recompute_layers", "recompute_config", _full_recompute_layers),
    ("training.max_device_memory", "context.max_device_memory", as_optional_str),
    ("training.data_path", "train_dataset.data_loader.config.data_path", as_str_list),
    ("training.load_checkpoint", "load_checkpoint", as_optional_str),
    ("training.lr_schedule", "lr_schedule.type", as_optional_str),
    ("inference.block_size", "model.model_config.block_size", as_optional_int),
    ("inference.num_blocks", "model.model_config.num_blocks", as_optional_int),
]

_MLA: list[tuple[str, str, Parse]] = [
    (f"model.{name}", f"model.model_config.{name}", as_int)
    for name in ("vocab_size", "seq_length", "max_position_embeddings", "intermediate_size",
                 "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
]

def _hf_router_fields(prefix: str) -> list[tuple[str, str, Parse]]:
    """mcore and pynative name the balancing, norm and RoPE fields alike, under `prefix`."""
    return [
        ("model.bias_update_rate", f"{prefix}moe_router_bias_update_rate", as_float),
        ("model.balance_via_bias", f"{prefix}moe_router_enable_expert_bias", as_bool),
        ("model.aux_loss_factor", f"{prefix}moe_aux_loss_coeff", as_float),
        ("model.norm_topk_prob", f"{prefix}norm_topk_prob", as_bool),
        ("model.rms_norm_eps", f"{prefix}rms_norm_eps", as_float),
        ("model.rope_theta", f"{prefix}rope_theta", as_float),
    ]


_RESEARCH = _table([
    ("model.num_layers", "model.model_config.num_layers", as_int),
    ("parallel.vocab_emb_dp", "parallel_config.vocab_emb_dp", as_bool),
    ("model.hidden_size", "model.model_config.hidden_size", as_int),
    ("model.num_heads", "model.model_config.num_heads", as_int),
    *_MLA,
    ("model.n_routed_experts", "moe_config.expert_num", as_int),
    ("model.n_shared_experts", "moe_config.shared_expert_num", as_int),
    ("model.num_experts_per_tok", "moe_config.num_experts_chosen", as_int),
    ("model.moe_intermediate_size", "moe_config.moe_intermediate_size", as_int),
    ("model.first_k_dense_replace", "moe_config.first_k_dense_replace", as_int),
    ("model.n_group", "moe_config.n_group", as_int),
    ("model.topk_group", "moe_config.topk_group", as_int),
    ("model.topk_method", "moe_config.topk_method", as_optional_str),
    ("model.routed_scaling_factor", "moe_config.routed_scaling_factor", as_float),
    ("model.scoring_func", "moe_config.use_gating_sigmoid", _scoring_from_gating),
    ("model.mtp_depth", "model.model_config.mtp_depth", as_int),
    ("model.mtp_loss_factor", "model.model_config.mtp_loss_factor", as_float),
    ("model.offset", "model.model_config.offset", _offset),
    ("model.bias_update_rate", "moe_config.topk_bias_update_rate", as_float),
    ("model.balance_via_bias", "moe_config.balance_via_topk_bias", as_bool),
    ("model.aux_loss_factor", "moe_config.aux_loss_factors", _first_float),
    ("model.norm_topk_prob", "moe_config.norm_topk_prob", as_bool),
    ("model.rms_norm_eps", "model.model_config.rms_norm_eps", as_float),
    ("model.rope_theta", "model.model_config.theta", as_float),
    ("parallel.pp_interleave_num", "model.model_config.pp_interleave_num", as_int),
    ("training.params_dtype", "model.model_config.param_init_type", as_str),
    ("training.compute_dtype", "model.model_config.compute_dtype", as_str),
    *_SHARED_PARALLEL,
])

_MCORE = _table([
    ("model.num_layers", "model.model_config.num_hidden_layers", as_int),
    ("model.hidden_size", "model.model_config.hidden_size", as_int),
    ("model.num_heads", "model.model_config.num_attention_heads", as_int),
    *_MLA,
    *[(f"model.{name}", f"model.model_config.{name}", as_int)
      for name in ("n_routed_experts", "n_shared_experts", "num_experts_per_tok", "moe_intermediate_size",
                   "first_k_dense_replace", "n_group", "topk_group")],
    ("model.routed_scaling_factor", "model.model_config.routed_scaling_factor", as_float),
    ("model.scoring_func", "model.model_config.scoring_func", _scoring),
    ("model.mtp_depth", "model.model_config.num_nextn_predict_layers", as_int),
    ("model.mtp_loss_factor", "model.model_config.mtp_loss_factor", as_float),
    # MindFormers' TransformerConfig name for the same (transformer_config_utils.py takes either)
    ("model.mtp_loss_factor", "model.model_config.mtp_loss_scaling_factor", as_float),
    ("model.offset", "model.model_config.offset", _offset),
    *_hf_router_fields("model.model_config."),
    ("parallel.pp_interleave_num", "model.model_config.pp_interleave_num", as_int),
    ("training.params_dtype", "model.model_config.params_dtype", as_str),
    ("training.compute_dtype", "model.model_config.compute_dtype", as_str),
    *_SHARED_PARALLEL,
])

_PYNATIVE = _table([
    ("model.num_layers", "model.num_hidden_layers", as_int),
    ("model.hidden_size", "model.hidden_size", as_int),
    ("model.num_heads", "model.num_attention_heads", as_int),
    *[(f"model.{name}", f"model.{name}", as_int)
      for name in ("vocab_size", "seq_length", "max_position_embeddings", "intermediate_size",
                   "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
                   "n_routed_experts", "n_shared_experts", "num_experts_per_tok", "moe_intermediate_size",
                   "first_k_dense_replace", "n_group", "topk_group")],
    ("model.routed_scaling_factor", "model.routed_scaling_factor", as_float),
    ("model.scoring_func", "model.scoring_func", _scoring),
    ("model.mtp_depth", "model.num_nextn_predict_layers", as_int),
    ("model.mtp_loss_factor", "model.mtp_loss_scaling_factor", as_float),
    *_hf_router_fields("model."),
    ("parallel.data_parallel", "parallelism.data_parallel_shard", as_int),
    ("parallel.model_parallel", "parallelism.tensor_parallel", as_int),
    ("parallel.pipeline_stage", "parallelism.pipeline_parallel", as_int),
    ("parallel.expert_parallel", "parallelism.expert_parallel", as_int),
    ("parallel.context_parallel", "parallelism.context_parallel", as_int),
    ("parallel.pp_interleave_num", "parallelism.pipeline_parallel_interleave_num", as_int),
    ("parallel.expert_tensor_parallel", "parallelism.expert_tensor_parallel", as_int),
    (_LAYER_PLAN, "parallelism.pipeline_parallel_layers_per_stage", _layer_plan),
    ("training.batch_size", "training.local_batch_size", as_int),
    ("training.global_batch_size", "training.global_batch_size", as_optional_int),
    ("training.params_dtype", "model.params_dtype", as_str),
    ("training.compute_dtype", "model.compute_dtype", as_str),
    ("training.recompute", "recompute.mode", _recompute_mode),
    ("training.max_device_memory", "context.max_device_memory", as_optional_str),
    ("training.data_path", "train_dataset.dataloader.config.data_path", as_str_list),
    ("training.load_checkpoint", "checkpoint.load_path", as_optional_str),
    ("training.lr_schedule", "lr_scheduler.type", as_optional_str),
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
        _check_use_legacy(doc)
        return Dialect.MCORE if data.get("use_legacy") is False else Dialect.RESEARCH
    if isinstance(model, dict) and isinstance(data.get("parallelism"), dict):
        return Dialect.PYNATIVE
    problem = ("unknown config dialect: expected model.model_config (research era, or mcore with "
               "use_legacy: False) or model + parallelism (pynative)")
    for section, wanted in ((("model",), "model_config"), ((), "parallelism")):
        typo = _near_key(doc, section, wanted)
        if typo:
            raise SourceError([doc.problem(typo, f"{problem}; did you mean {wanted}?")])
    raise SourceError([doc.problem((), problem)])


def _check_use_legacy(doc: LocatedDocument) -> None:
    """The one key that tells mcore from the research era: misspelt or not a boolean, the file would be read
    in the wrong dialect and every Hugging Face name in it said unknown. Said first, alone."""
    data = doc.data
    if "use_legacy" in data and not isinstance(data["use_legacy"], bool):
        raise SourceError([doc.problem(("use_legacy",), f"expected True or False (False: the mcore layout), "
                                                        f"got {describe(data['use_legacy'])}")])
    typo = _near_key(doc, (), "use_legacy") if "use_legacy" not in data else None
    if typo:
        raise SourceError([doc.problem(typo, f"unknown key {typo[-1]}: did you mean use_legacy? It decides "
                                             f"whether model_config is read as mcore or research era")])


def _near_key(doc: LocatedDocument, section: FieldPath, wanted: str) -> FieldPath | None:
    """A key of `section` that is most likely a misspelling of `wanted`, as a path."""
    node: Any = doc.data
    for part in section:
        node = node.get(part) if isinstance(node, dict) else None
    keys = [str(key) for key in node] if isinstance(node, dict) else []
    close = difflib.get_close_matches(wanted, [key for key in keys if key != wanted], n=1, cutoff=0.8)
    return (*section, close[0]) if close else None


def load_spec(path: Path) -> JobSpec:
    """Read a MindFormers job config file into a JobSpec; every problem in it in one SourceError."""
    return spec_from_document(load_located_file(path))


def parse_spec(text: str, source: str, *, pretrained: Pretrained | None = None) -> JobSpec:
    return spec_from_document(load_located(text, source), pretrained=pretrained)


def pretrained_model_dir(doc: LocatedDocument) -> str | None:
    """The Hugging Face directory whose config.json an mcore config's model is built on: the top-level
    `pretrained_model_dir`, which MindFormers copies over `model.pretrained_model_dir` (base_trainer.py).
    None for the other dialects: their model classes never read it."""
    if detect_dialect(doc) is not Dialect.MCORE or not isinstance(doc.data, dict):
        return None
    model = doc.data.get("model")
    for value in (doc.data.get("pretrained_model_dir"), model.get("pretrained_model_dir")
                  if isinstance(model, dict) else None):
        if isinstance(value, str) and value:
            return value
    return None


def spec_from_document(doc: LocatedDocument, *, pretrained: Pretrained | None = None) -> JobSpec:
    """`pretrained`: the config's pretrained_model_dir as the caller read it (mcore only; None: not read)."""
    dialect = detect_dialect(doc)
    values: dict[str, object] = {}
    locations: dict[str, Location] = {}
    sources: dict[str, str] = {}
    problems: list[Problem] = []
    merged = pretrained if dialect is Dialect.MCORE else None
    for spec_field in DIALECT_FIELDS[dialect]:
        found, raw = _lookup(doc, spec_field.path, problems)
        if not found:
            _from_config_json(spec_field, merged, values, sources, problems)
            continue
        try:
            values[spec_field.target] = spec_field.parse(raw)
        except InvalidValue as exc:
            problems.append(doc.problem(spec_field.path, str(exc)))
        locations[spec_field.target] = Location(dotted(spec_field.path), doc.line_of(spec_field.path))
    for target, value in CLASS_DEFAULTS[dialect].items():
        if target not in values:
            values[target], sources[target] = value, CLASS_DEFAULT
    derived: dict[str, str] = {}
    if dialect is Dialect.PYNATIVE and not problems:
        _derive_pynative(doc, values, locations, derived, problems)
    if dialect is Dialect.RESEARCH and "parallel.vocab_emb_dp" not in values:
        values["parallel.vocab_emb_dp"] = True
        derived["parallel.vocab_emb_dp"] = "MindFormers' default when parallel_config leaves it out"
    if problems:  # the error that stops the file may be a typo's doing: name the typos with it
        raise SourceError([*dict.fromkeys(problems), *unknown_key_problems(doc, dialect)])
    job = _build(doc.source, dialect, values, locations, derived)
    defaulted = {**job.defaulted, **{t: s for t, s in sources.items() if t not in locations}}
    return replace(job, defaulted=dict(sorted(defaulted.items())), unknown_keys=unknown_keys(doc, dialect),
                   warnings=_pretrained_warnings(doc, pretrained), run_mode=run_mode_of(doc))


def _from_config_json(spec_field: _Field, pretrained: Pretrained | None, values: dict[str, object],
                      sources: dict[str, str], problems: list[Problem]) -> None:
    """MindFormers merges config.json under `model.model_config` (build_config.py, merge_model_config)."""
    key = spec_field.path[-1]
    if pretrained is None or spec_field.path[:-1] != _MODEL_CONFIG or not isinstance(key, str) \
            or key not in pretrained.values:
        return
    try:
        values[spec_field.target] = spec_field.parse(pretrained.values[key])
        sources[spec_field.target] = CONFIG_JSON
    except InvalidValue as exc:
        problems.append(Problem(pretrained.source, None, key, str(exc)))


_MODEL_CONFIG: FieldPath = ("model", "model_config")


def _pretrained_warnings(doc: LocatedDocument, pretrained: Pretrained | None) -> tuple[str, ...]:
    directory = pretrained_model_dir(doc)
    if directory is None:
        return ()
    if pretrained is not None and pretrained.values.get(QUANT_METHOD) == "fp8":
        return (f"{pretrained.source} describes fp8 weights (quantization_config.quant_method fp8), which "
                f"MindFormers' inference refuses ('Invalid quantization method: fp8'): cast them to bfloat16 "
                f"first (MindFormers' research/deepseek3/fp8_cast_bf16.py); the estimate is of cast weights",)
    if pretrained is not None and pretrained.unreadable is None:
        return ()
    why = "was not read" if pretrained is None else f"could not be read ({pretrained.unreadable})"
    return (f"pretrained_model_dir {directory} {why}: the architecture the file leaves out is the model "
            f"class's defaults",)


def defaulted_paths(job: JobSpec) -> dict[str, str]:
    """The fields the file left out by the file's own dotted path (`model.model_config.num_attention_heads`),
    each with where its value came from; fields the dialect has no key for are not listed."""
    paths = {spec_field.target: dotted(spec_field.path) for spec_field in DIALECT_FIELDS[job.dialect]}
    found = [(paths[target], source) for target, source in job.defaulted.items() if target in paths]
    return dict(sorted(found))


def _lookup(doc: LocatedDocument, path: FieldPath, problems: list[Problem]) -> tuple[bool, Any]:
    node: Any = doc.data
    for depth, part in enumerate(path):
        if not isinstance(node, dict):
            if node is not None:
                problems.append(doc.problem(path[:depth], f"expected a mapping, got {describe(node)}"))
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
    sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
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
        inference=InferenceSpec(**sections["inference"]),
        defaulted={name: source_of_default(name, dialect) for name in sorted(every - values.keys())},
        locations=locations,
        derived=derived,
    )


def _field_names(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


_SECTIONS: Mapping[str, type] = {"model": ModelSpec, "parallel": ParallelSpec, "training": TrainingSpec,
                                 "inference": InferenceSpec}
