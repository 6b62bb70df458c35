"""Parallel-layout and model-shape checks of a job config against the devices it will run on.

Each rule gives the field a person must change, how bad it is, and what would be valid, so a
mistake shows up here, in a second, instead of at launch on 128 servers minutes later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from model.classdefaults import UNSET_IN_CLASS
from model.config import AUTO_PLACEMENT, DIALECT_FIELDS, Dialect, JobSpec, ModelSpec, ParallelSpec
from model.keys import TRAINING_RUN_MODES, describe, refused
from model.spec import UnknownKey
from model.yamlsource import dotted

Severity = Literal["error", "warning"]

# Where a spec field lives when the job's dialect has no key for it (research-era names, the tutorial's).
DEFAULT_PATHS = {
    "parallel.data_parallel": "parallel_config.data_parallel",
    "parallel.model_parallel": "parallel_config.model_parallel",
    "parallel.pipeline_stage": "parallel_config.pipeline_stage",
    "parallel.expert_parallel": "parallel_config.expert_parallel",
    "parallel.context_parallel": "parallel_config.context_parallel",
    "parallel.micro_batch_num": "parallel_config.micro_batch_num",
    "parallel.optimizer_weight_shard_size": "parallel.parallel_optimizer_config.optimizer_weight_shard_size",
    "model.num_layers": "model.model_config.num_layers",
    "model.offset": "model.model_config.offset",
    "model.first_k_dense_replace": "moe_config.first_k_dense_replace",
    "model.n_routed_experts": "moe_config.expert_num",
    "model.num_heads": "model.model_config.num_heads",
    "model.vocab_size": "model.model_config.vocab_size",
    "model.seq_length": "model.model_config.seq_length",
    "model.n_group": "moe_config.n_group",
    "model.topk_group": "moe_config.topk_group",
    "model.num_experts_per_tok": "moe_config.num_experts_chosen",
    "training.batch_size": "runner_config.batch_size",
    "model.hidden_size": "model.model_config.hidden_size",
}


@dataclass(frozen=True)
class ConfigProblem:
    path: str
    """The dotted path in the config file (its own dialect's name for the field)."""
    severity: Severity
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f":{self.line}" if self.line else ""
        return f"{self.severity}{where}: {self.path}: {self.message}"


class _Report:
    """Collects problems, naming each field as the job's own file names it."""

    def __init__(self, job: JobSpec) -> None:
        self.job = job
        self.problems: list[ConfigProblem] = []

    def add(self, spec_field: str, severity: Severity, message: str, *, uses: tuple[str, ...] = ()) -> None:
        """A problem with `spec_field`, judged also by the fields `uses`, at the line the file sets it. When
        the file left one of them out and has a key that is likely its typo, the problem names the typo and
        its line too, and points at it when the file does not set `spec_field`."""
        location = self.job.location(spec_field)
        typo = self._typo(spec_field, *uses)
        if typo is not None:
            fate = "refuses" if refused(typo, self.job.dialect, self.job.run_mode) else "ignores"
            message = (f"{message}; the file has {typo.path} on line {typo.line}, which MindFormers {fate}: "
                       f"a typo of {typo.suggestion}?")
        if location:
            self.problems.append(ConfigProblem(location.path, severity, message, location.line))
        elif typo is not None:
            self.problems.append(ConfigProblem(typo.path, severity, message, typo.line))
        else:
            path = _dialect_path(self.job.dialect, spec_field)
            self.problems.append(ConfigProblem(path, severity, message))

    def _typo(self, *spec_fields: str) -> UnknownKey | None:
        """The unknown key most likely meant as one of `spec_fields` that the file left out."""
        for spec_field in spec_fields:
            if spec_field in self.job.defaulted:
                typo = _typo_of(self.job, _dialect_path(self.job.dialect, spec_field))
                if typo is not None:
                    return typo
        return None


def _dialect_path(dialect: Dialect, spec_field: str) -> str:
    """Where the job's own dialect sets `spec_field` (DEFAULT_PATHS when it has no key for it)."""
    for row in DIALECT_FIELDS[dialect]:
        if row.target == spec_field:
            return dotted(row.path)
    return DEFAULT_PATHS.get(spec_field, spec_field)


def _typo_of(job: JobSpec, path: str) -> UnknownKey | None:
    """The unknown key whose closest known key is `path` or a section holding it (`paralel_config`)."""
    for key in job.unknown_keys:
        if key.suggestion and (path == key.suggestion or path.startswith(f"{key.suggestion}.")):
            return key
    return None


def unknown_key_problems(job: JobSpec) -> list[ConfigProblem]:
    """Each key MindFormers does not declare: an error where MindFormers refuses the file for it, else a
    warning (MindFormers ignores it), with the known key it most likely meant."""
    return [ConfigProblem(key.path, "error" if refused(key, job.dialect, job.run_mode) else "warning",
                          describe(key, job.dialect, job.run_mode), key.line)
            for key in job.unknown_keys]


def validate(job: JobSpec, *, nodes: int, devices_per_node: int,
             training: bool = True) -> list[ConfigProblem]:
    """Every problem of `job` on `nodes` servers with `devices_per_node` devices each; `training=False`
    (serving) leaves out what only training needs: micro-batches and the optimizer shard."""
    report = _Report(job)
    typos = unknown_key_problems(job)
    _check_sizes(report, job)
    if report.problems:
        return typos + report.problems  # the other rules divide by these sizes
    _check_device_count(report, job.parallel, nodes * devices_per_node, nodes, devices_per_node)
    _check_experts(report, job.model, job.parallel, data_parallel(job.parallel, nodes * devices_per_node))
    _check_tensor_parallel(report, job.model, job.parallel)
    _check_pipeline(report, job.model, job.parallel, training)
    if training:
        _check_optimizer_shard(report, job.parallel, devices=nodes * devices_per_node)
        _check_mtp_loss(report, job)
    return typos + report.problems


# Sizes that must be whole numbers >= 1; -1 also allowed where MindFormers gives it a meaning.
POSITIVE_SIZES = {
    "parallel.data_parallel": True, "parallel.model_parallel": False, "parallel.pipeline_stage": False,
    "parallel.expert_parallel": False, "parallel.context_parallel": False,
    "parallel.micro_batch_num": False, "parallel.pp_interleave_num": False,
    "parallel.optimizer_weight_shard_size": True, "training.batch_size": False,
    "model.num_layers": False, "model.hidden_size": False, "model.num_heads": False,
    "model.vocab_size": False, "model.seq_length": False,
}


def impossible_sizes(job: JobSpec) -> list[str]:
    """Spec fields whose value can never be right (zero, or negative where -1 means nothing)."""
    bad = []
    for name, minus_one_ok in POSITIVE_SIZES.items():
        section, attribute = name.split(".")
        value = getattr(getattr(job, section), attribute)
        if value < 1 and not (minus_one_ok and value == -1):
            bad.append(name)
    return bad


def _check_sizes(report: _Report, job: JobSpec) -> None:
    for name in impossible_sizes(job):
        section, attribute = name.split(".")
        value = getattr(getattr(job, section), attribute)
        allowed = " (or -1)" if POSITIVE_SIZES[name] else ""
        report.add(name, "error", f"{attribute} must be a whole number >= 1{allowed}, got {value}"
                                  f"{_how_derived(job, name)}")


def _how_derived(job: JobSpec, spec_field: str) -> str:
    how = job.derived.get(spec_field)
    return f" (computed: {how})" if how else ""


def data_parallel(parallel: ParallelSpec, devices: int) -> int:
    """The data-parallel size, resolving -1 (pynative: "whatever the other axes leave")."""
    if parallel.data_parallel != -1:
        return parallel.data_parallel
    others = parallel.model_parallel * parallel.pipeline_stage * parallel.context_parallel
    return devices // others if others and devices % others == 0 else 0


_PLACED_BY = ("model.num_layers", "model.mtp_depth", "parallel.pipeline_stage", "parallel.pp_interleave_num")
_OTHER_AXES = ("parallel.model_parallel", "parallel.pipeline_stage", "parallel.context_parallel")


def _check_device_count(report: _Report, parallel: ParallelSpec, devices: int, nodes: int,
                        per_node: int) -> None:
    dp = data_parallel(parallel, devices)
    others = parallel.model_parallel * parallel.pipeline_stage * parallel.context_parallel
    if dp * others == devices:
        return
    axes = f"data_parallel x model_parallel x pipeline_stage x context_parallel ({dp or '?'} x " \
           f"{parallel.model_parallel} x {parallel.pipeline_stage} x {parallel.context_parallel} = " \
           f"{dp * others})"
    fix = (f"; set data_parallel to {devices // others}" if devices % others == 0
           else f"; {devices} is not a multiple of the other axes ({others})")
    report.add("parallel.data_parallel", "error",
               f"{axes} must equal the devices the job uses ({nodes} node{'s' * (nodes > 1)} x "
               f"{per_node} = {devices}){fix}", uses=_OTHER_AXES)


def _check_experts(report: _Report, model: ModelSpec, parallel: ParallelSpec, devices_dp: int) -> None:
    moe_layers = model.num_layers - model.first_k_dense_replace
    if model.n_routed_experts and model.first_k_dense_replace >= model.num_layers:
        report.add("model.first_k_dense_replace", "error",
                   f"first_k_dense_replace ({model.first_k_dense_replace}) must be below num_layers "
                   f"({model.num_layers}), or no layer is MoE", uses=("model.num_layers",))
    if not model.n_routed_experts or moe_layers <= 0:
        return
    _check_routing(report, model)
    ep = parallel.expert_parallel
    if model.n_routed_experts % ep:
        report.add("parallel.expert_parallel", "error",
                   f"expert_num ({model.n_routed_experts}) must be divisible by expert_parallel ({ep}); "
                   f"valid: {_divisors(model.n_routed_experts)}", uses=("model.n_routed_experts",))
    dp_mp = devices_dp * parallel.model_parallel
    if devices_dp > 0 and dp_mp % ep:
        report.add("parallel.expert_parallel", "error",
                   f"expert_parallel ({ep}) must divide data_parallel x model_parallel ({dp_mp})",
                   uses=("parallel.data_parallel", "parallel.model_parallel"))


GROUP_LIMITED_METHODS = ("group_limited_greedy", "noaux_tc")


def _check_routing(report: _Report, model: ModelSpec) -> None:
    """Group-limited routing's sizes. A research-era file routes by groups in MindFormers only with a
    group-limited `topk_method`: without one its n_group is unused there, and only this project's own
    model/train.py (which always routes by groups) would refuse bad sizes, so they are warnings."""
    if "model.n_group" in report.job.defaulted:
        return  # no group-limited routing in this file
    greedy = report.job.dialect is Dialect.RESEARCH and model.topk_method not in GROUP_LIMITED_METHODS
    severity: Severity = "warning" if greedy else "error"
    note = (f" (MindFormers does not use n_group with topk_method {model.topk_method or 'greedy'}; the "
            f"model style's model/train.py does)") if greedy else ""
    experts, groups = model.n_routed_experts, max(model.n_group, 1)
    if experts % groups:
        report.add("model.n_routed_experts", severity,
                   f"expert_num ({experts}) must be divisible by n_group ({groups}); valid: "
                   f"{_divisors(experts)}{note}", uses=("model.n_group",))
    if model.topk_group > groups:
        report.add("model.topk_group", severity,
                   f"topk_group ({model.topk_group}) cannot exceed n_group ({groups}){note}",
                   uses=("model.n_group",))
    reachable = model.topk_group * (experts // groups) if model.topk_group else experts
    if model.num_experts_per_tok > reachable:
        report.add("model.num_experts_per_tok", severity,
                   f"top-k ({model.num_experts_per_tok}) is more than the experts in the "
                   f"{model.topk_group} chosen group(s) ({reachable}){note}",
                   uses=("model.topk_group", "model.n_group", "model.n_routed_experts"))


def _check_tensor_parallel(report: _Report, model: ModelSpec, parallel: ParallelSpec) -> None:
    mp = parallel.model_parallel
    if model.num_heads % mp:
        report.add("parallel.model_parallel", "error",
                   f"num_heads ({model.num_heads}) must be divisible by model_parallel ({mp})",
                   uses=("model.num_heads",))
    if model.vocab_size % mp:
        report.add("parallel.model_parallel", "error",
                   f"vocab_size ({model.vocab_size}) must be divisible by model_parallel ({mp})",
                   uses=("model.vocab_size",))
    if parallel.use_seq_parallel and model.seq_length % mp:
        report.add("model.seq_length", "error",
                   f"with sequence parallel on, seq_length ({model.seq_length}) must be divisible by "
                   f"model_parallel ({mp})", uses=("parallel.model_parallel",))
    if model.seq_length % parallel.context_parallel:
        report.add("model.seq_length", "error",
                   f"seq_length ({model.seq_length}) must be divisible by context_parallel "
                   f"({parallel.context_parallel})", uses=("parallel.context_parallel",))


def _check_pipeline(report: _Report, model: ModelSpec, parallel: ParallelSpec, training: bool) -> None:
    pp = parallel.pipeline_stage
    if pp > model.num_layers:
        report.add("parallel.pipeline_stage", "error",
                   f"pipeline_stage ({pp}) cannot exceed num_layers ({model.num_layers})",
                   uses=("model.num_layers",))
        return
    job = report.job
    # a pynative file without global_batch_size (or with data_parallel_shard -1) says nothing of it
    unknown = job.dialect is Dialect.PYNATIVE and "parallel.micro_batch_num" in job.defaulted
    if training and pp > 1 and parallel.micro_batch_num < pp and not unknown:
        derived = "parallel.micro_batch_num" in job.derived
        fix = "raise global_batch_size" if derived else f"set it to {pp} or more"
        report.add("parallel.micro_batch_num", "error",
                   f"micro_batch_num ({parallel.micro_batch_num}) must be at least pipeline_stage ({pp}), "
                   f"or stages sit idle{_how_derived(job, 'parallel.micro_batch_num')}; {fix}",
                   uses=("parallel.pipeline_stage",))
    if job.derived.get("model.offset") == AUTO_PLACEMENT:
        problem = _pynative_placement_problem(model, parallel)
    else:  # pynative layer ranges were checked when the file was read; the offsets are ours
        problem = offset_problem(model, parallel, mtp_placed=job.mtp_placed) \
            if job.dialect is not Dialect.PYNATIVE else None
    if problem:
        report.add("model.offset", "error", problem, uses=_PLACED_BY)


def _pynative_placement_problem(model: ModelSpec, parallel: ParallelSpec) -> str | None:
    """MindFormers' pynative `auto` placement refuses layers that do not split evenly over the stages.
    (Explicit layer ranges were checked against num_hidden_layers when the file was read.)"""
    slots = parallel.pipeline_stage * max(parallel.pp_interleave_num, 1)
    if model.num_layers % slots == 0:
        return None
    return (f"num_hidden_layers ({model.num_layers}) does not split evenly over {slots} pipeline stage "
            f"slot(s); give one 'start-end' layer range per stage, e.g. "
            f"{_example_ranges(model.num_layers, parallel.pipeline_stage)}")


def _example_ranges(layers: int, pp: int) -> list[str]:
    counts = [layers // pp + (1 if i < layers % pp else 0) for i in range(pp)]
    starts = [sum(counts[:i]) for i in range(pp)]
    return [f"{s}-{s + n - 1}" if n > 1 else str(s) for s, n in zip(starts, counts, strict=True)]


def offset_problem(model: ModelSpec, parallel: ParallelSpec, *, mtp_placed: bool = True) -> str | None:
    """Why `offset` does not place the layers on the stages, or None.

    MindFormers (LayerSetting) places the layers, (that // (pp x interleave)) on every stage slot plus the
    slot's offset, and requires the offsets to sum to the remainder; a single number is used for every
    slot. The layers it places are num_layers + mtp_depth in the research era (`mtp_placed`), num_layers
    in mcore (transformer_block.py), whose MTP block then sits on the last stage.
    """
    pp, chunks = parallel.pipeline_stage, max(parallel.pp_interleave_num, 1)
    placed = model.num_layers + (model.mtp_depth if mtp_placed else 0)
    what = "num_layers + mtp_depth" if mtp_placed else "num_layers"
    spare = placed % (pp * chunks)
    offset = model.offset
    if isinstance(offset, int):
        if offset * pp * chunks == spare:
            return None
        return (f"offset {offset} on each of {pp * chunks} stage slots places "
                f"{(placed // (pp * chunks) + offset) * pp * chunks} layers, not the {placed} of "
                f"{what}; give a list of {pp} numbers that sum to {spare}")
    rows: list[object] = list(offset) if chunks > 1 else [offset]
    shape_ok = len(rows) == chunks and all(
        isinstance(row, tuple) and len(row) == pp and all(isinstance(n, int) for n in row) for row in rows)
    if not shape_ok:
        shape = f"{chunks} lists of {pp} numbers" if chunks > 1 else f"{pp} numbers"
        return f"offset must be one number, or {shape} (one per pipeline stage); got {list(offset)}"
    total = sum(n for row in rows if isinstance(row, tuple) for n in row)
    if total != spare:
        return (f"offset numbers sum to {total} but must sum to {spare}: the remainder of {what} "
                f"({placed}) over {pp * chunks} stage slots")
    return None


def _check_mtp_loss(report: _Report, job: JobSpec) -> None:
    """An mcore file that trains MTP layers without mtp_loss_scaling_factor: TransformerConfig leaves it
    None, and the training graph scales each MTP layer's loss by it over mtp_num_layers
    (parallel_core/training_graph/transformer/multi_token_prediction.py, MindFormers as read here), so
    the loss cannot be built. A warning: a MindFormers on the nodes could default it."""
    unset = job.defaulted.get("model.mtp_loss_factor") == UNSET_IN_CLASS
    if job.dialect is Dialect.MCORE and job.run_mode in TRAINING_RUN_MODES and job.model.mtp_depth and unset:
        report.add("model.mtp_loss_factor", "warning",
                   f"mtp_loss_scaling_factor (or mtp_loss_factor) is not set for {job.model.mtp_depth} MTP "
                   f"layer(s): MindFormers scales their loss by it and TransformerConfig leaves it None, so "
                   f"training stops when the loss is built; the published configs set 0.3",
                   uses=("model.mtp_depth",))


def _check_optimizer_shard(report: _Report, parallel: ParallelSpec, devices: int) -> None:
    shard = parallel.optimizer_weight_shard_size
    dp = data_parallel(parallel, devices)
    if shard == -1 or dp <= 0:
        return
    if shard < 1 or shard & (shard - 1):
        report.add("parallel.optimizer_weight_shard_size", "error",
                   f"optimizer_weight_shard_size ({shard}) must be -1 (the whole data-parallel group) "
                   f"or a power of two")
    elif shard > dp:
        report.add("parallel.optimizer_weight_shard_size", "warning",
                   f"optimizer_weight_shard_size ({shard}) is larger than data_parallel ({dp}): "
                   f"optimizer states are sharded over {dp} devices only", uses=("parallel.data_parallel",))
    elif dp % shard:
        report.add("parallel.optimizer_weight_shard_size", "error",
                   f"optimizer_weight_shard_size ({shard}) must divide data_parallel ({dp})",
                   uses=("parallel.data_parallel",))


def _divisors(number: int) -> str:
    found = [d for d in range(1, min(number, 256) + 1) if number % d == 0]
    return ", ".join(map(str, found))
