"""Parameter, memory and FLOP estimates for a DeepSeek-V3-shaped job: pure functions over the typed spec.

Every formula, its source and where it is knowingly rough: docs/estimates.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Generic, Protocol, TypeVar

from model.config import JobSpec, ModelSpec, ParallelSpec, TrainingSpec
from model.validate import data_parallel

GIB = 1 << 30
HBM_910B_BYTES = 64 * GIB
"""HBM per Ascend 910B NPU (64 GB)."""
PEAK_FLOPS_910B_BF16 = 313e12
"""Assumed dense bf16 peak per 910B NPU. An assumption (the variants differ), not a verified spec: pass
your own `peak_flops_per_device` to `mfu`."""
@dataclass(frozen=True)
class DeviceMemory:
    """What one rank's memory is judged against: an NPU's HBM (or the config's `max_device_memory` below
    it), or on CPU nodes the rank's share of the host's memory, which `max_device_memory` does not limit."""

    bytes: int
    name: str
    """'HBM', 'host memory (31.3 GiB over 2 ranks)'."""
    on_npu: bool = True


NPU_910B = DeviceMemory(HBM_910B_BYTES, "HBM")


def host_share(total_bytes: int, ranks: int) -> DeviceMemory:
    """A CPU node's memory split over the ranks it runs."""
    ranks = max(ranks, 1)
    name = f"host memory ({total_bytes / GIB:.1f} GiB" + (f" over {ranks} ranks)" if ranks > 1 else ")")
    return DeviceMemory(total_bytes // ranks, name, on_npu=False)


WORKSPACE_BYTES = 2 * GIB
"""Allowance per device for what the formulas leave out: HCCL buffers, the framework's workspace,
fragmentation, transient bf16 casts of fp32 weights."""

DTYPE_BYTES = {"float32": 4, "fp32": 4, "float16": 2, "fp16": 2, "bfloat16": 2, "bf16": 2,
               "float8": 1, "fp8": 1, "int8": 1}


def dtype_bytes(name: str) -> int:
    """Bytes per element of a MindSpore dtype name ('bfloat16', 'float32'); unknown names raise ValueError."""
    try:
        return DTYPE_BYTES[name.lower().removeprefix("mstype.")]
    except KeyError:
        known = ", ".join(sorted(DTYPE_BYTES))
        raise ValueError(f"unknown dtype {name!r}; expected one of {known}") from None


# ---------------------------------------------------------------- parameters


@dataclass(frozen=True)
class ParamCount:
    """Parameters by part. `total` is the main model (MTP excluded), as the DeepSeek-V3 report counts."""

    embedding: int
    attention: int
    """MLA in every main-model layer, including its two latent RMSNorms (q and kv)."""
    dense_mlp: int
    routed_experts: int
    shared_experts: int
    router: int
    """Router weights (n_routed x hidden) plus the per-expert selection bias b_i, per MoE layer."""
    norms: int
    """The two per-layer RMSNorms (before attention, before the MLP) and the final norm."""
    output_head: int
    mtp: int
    """All MTP modules: per module the 2d x d projection, two RMSNorms, one full MoE block and its own
    output norm. Embedding and head are shared with the main model, so not counted here."""
    total: int
    total_with_mtp: int
    activated: int
    """Per token: attention + dense MLP + shared experts + top-k routed experts + router + norms + head.
    The embedding is a lookup, not counted (the convention that gives the report's 37B)."""
    checkpoint_mtp_copies: int
    """Embedding + head copies the released checkpoint stores with each MTP module (685B = total_with_mtp
    plus these); not parameters of their own."""


def mla_params(model: ModelSpec) -> int:
    """One layer's MLA: the reference's per-layer formula, latent norms included."""
    m = model
    qk = m.qk_nope_head_dim + m.qk_rope_head_dim
    return (m.hidden_size * m.q_lora_rank + m.q_lora_rank
            + m.q_lora_rank * m.num_heads * qk
            + m.hidden_size * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank
            + m.kv_lora_rank * m.num_heads * (m.qk_nope_head_dim + m.v_head_dim)
            + m.num_heads * m.v_head_dim * m.hidden_size)


def expert_params(model: ModelSpec) -> int:
    """One SwiGLU expert: gate, up and down matrices of hidden x moe_intermediate."""
    return 3 * model.hidden_size * model.moe_intermediate_size


def router_params(model: ModelSpec) -> int:
    """One MoE layer's router: n_routed x hidden weights plus the n_routed selection biases."""
    return model.n_routed_experts * model.hidden_size + model.n_routed_experts


def moe_block_params(model: ModelSpec) -> int:
    """One MoE feed-forward: every routed expert, the shared experts and the router."""
    return (model.n_routed_experts + model.n_shared_experts) * expert_params(model) + router_params(model)


def mtp_module_params(model: ModelSpec) -> int:
    """One MTP module: projection 2d x d, two RMSNorms, one MoE transformer block, its own final norm."""
    d = model.hidden_size
    block = mla_params(model) + 2 * d + moe_block_params(model)
    return 2 * d * d + 2 * d + block + d


def count_params(model: ModelSpec) -> ParamCount:
    """Every weight of the model, by part; see ParamCount for the conventions."""
    m = model
    dense_layers = min(m.first_k_dense_replace, m.num_layers)
    moe_layers = m.num_layers - dense_layers
    embedding = output_head = m.vocab_size * m.hidden_size
    attention = m.num_layers * mla_params(m)
    dense_mlp = dense_layers * 3 * m.hidden_size * m.intermediate_size
    routed = moe_layers * m.n_routed_experts * expert_params(m)
    shared = moe_layers * m.n_shared_experts * expert_params(m)
    router = moe_layers * router_params(m)
    norms = (2 * m.num_layers + 1) * m.hidden_size
    total = embedding + attention + dense_mlp + routed + shared + router + norms + output_head
    mtp = m.mtp_depth * mtp_module_params(m)
    activated_routed = moe_layers * m.num_experts_per_tok * expert_params(m)
    activated = attention + dense_mlp + shared + activated_routed + router + norms + output_head
    return ParamCount(
        embedding=embedding, attention=attention, dense_mlp=dense_mlp, routed_experts=routed,
        shared_experts=shared, router=router, norms=norms, output_head=output_head, mtp=mtp,
        total=total, total_with_mtp=total + mtp, activated=activated,
        checkpoint_mtp_copies=m.mtp_depth * (embedding + output_head),
    )


def mtp_activated_params(model: ModelSpec) -> int:
    """Per token through all MTP modules: as mtp_module_params with top-k instead of all routed experts."""
    idle = (model.n_routed_experts - model.num_experts_per_tok) * expert_params(model)
    return model.mtp_depth * (mtp_module_params(model) - idle)


# ---------------------------------------------------------------- pipeline stages


@dataclass(frozen=True)
class Stage:
    """Which main-model layers one pipeline stage holds, and what else sits on it."""

    index: int
    first_layer: int
    num_layers: int
    dense_layers: int
    moe_layers: int
    has_embedding: bool
    has_head: bool
    """The last stage: final norm, output head and the MTP modules."""


def layers_per_stage(model: ModelSpec, pipeline_stage: int, *, mtp_placed: bool = True) -> tuple[int, ...]:
    """Main-model layers on each stage, as MindFormers' LayerSetting places them.

    Research era (`mtp_placed`): MindFormers places num_layers + mtp_depth layers (the MTP layers take the
    last ids, so they sit on the last stage): (num_layers + mtp_depth) // pp per stage plus that stage's
    offset; the MTP layers are then taken off the last stages here, since the estimate counts the MTP
    module apart. mcore: num_layers // pp per stage plus the offset, MTP apart on the last stage.
    If the offsets do not add up (validate.py reports that as an error), the difference is spread
    over the last stages so that an estimate can still be shown.
    """
    pp = max(pipeline_stage, 1)
    placed = model.num_layers + (model.mtp_depth if mtp_placed else 0)
    counts = [max(placed // pp + o, 0) for o in _stage_offsets(model.offset, pp)]
    _make_sum(counts, placed)
    _make_sum(counts, model.num_layers)
    return tuple(counts)


def _make_sum(counts: list[int], total: int) -> None:
    """Add or take layers from the last stages backwards until `counts` sums to `total`."""
    stage = len(counts) - 1
    while sum(counts) != total:
        step = 1 if sum(counts) < total else -1
        if step > 0 or counts[stage] > 0:
            counts[stage] += step
        stage = stage - 1 if stage > 0 else len(counts) - 1


def _stage_offsets(offset: int | tuple[int, ...] | tuple[tuple[int, ...], ...], pp: int) -> list[int]:
    """Extra layers per stage: one int for all, one int per stage, or one per-stage list per chunk."""
    if isinstance(offset, int):
        return [offset] * pp
    chunks = [item if isinstance(item, tuple) else None for item in offset]
    if any(chunk is None for chunk in chunks):
        flat = [item for item in offset if isinstance(item, int)]
        return (flat + [0] * pp)[:pp]
    return [sum(chunk[i] for chunk in chunks if chunk is not None and i < len(chunk)) for i in range(pp)]


def pipeline_stages(model: ModelSpec, pipeline_stage: int, *, mtp_placed: bool = True) -> tuple[Stage, ...]:
    """The stages in order; the first first_k_dense_replace layers are the dense ones."""
    counts = layers_per_stage(model, pipeline_stage, mtp_placed=mtp_placed)
    stages, first = [], 0
    for i, n in enumerate(counts):
        dense = max(0, min(first + n, model.first_k_dense_replace) - first)
        stages.append(Stage(index=i, first_layer=first, num_layers=n, dense_layers=dense,
                            moe_layers=n - dense, has_embedding=i == 0, has_head=i == len(counts) - 1))
        first += n
    return tuple(stages)


# ---------------------------------------------------------------- training memory


@dataclass(frozen=True)
class StageMemory:
    """Bytes per device on one pipeline stage."""

    stage: int
    num_layers: int
    weights: int
    gradients: int
    optimizer: int
    activations: int
    """Per micro-batch activations x micro-batches in flight, plus the stage-wide extras."""
    micro_batches_in_flight: int
    workspace: int
    total: int
    headroom: int
    """limit - total; negative when the stage does not fit."""


class _Stage(Protocol):
    @property
    def stage(self) -> int: ...

    @property
    def headroom(self) -> int: ...


StageT = TypeVar("StageT", bound=_Stage)


@dataclass(frozen=True)
class MemoryEstimate(Generic[StageT]):
    """Per-stage bytes against the device's limit: training (StageMemory) or serving (InferenceStage)."""

    stages: tuple[StageT, ...]
    limit_bytes: int
    limit_source: str
    """'max_device_memory 58GB' or 'HBM'."""
    fits: bool
    tightest_stage: int
    headroom: int
    """Of the tightest stage: limit - its total; negative by how much it does not fit."""


TrainingEstimate = MemoryEstimate[StageMemory]


@dataclass(frozen=True)
class _StageParams:
    """A stage's parameters split by how they shard: over tp, the vocabulary (over tp unless vocab_emb_dp),
    routed experts (over ep and inside each expert), not at all."""

    tp_sharded: int
    vocab: int
    expert: int
    replicated: int

    def on_device(self, parallel: ParallelSpec, dp: int) -> tuple[int, int]:
        """(non-expert, routed-expert) parameters on one device of the stage."""
        tp = max(parallel.model_parallel, 1)
        vocab = self.vocab if parallel.vocab_emb_dp else self.vocab // tp
        return self.tp_sharded // tp + vocab + self.replicated, self.expert // expert_split(parallel, dp)


def expert_split(parallel: ParallelSpec, dp: int) -> int:
    """Ways the routed experts of a layer are split: over expert_parallel, and each expert's matrices over
    expert_tensor_parallel (research/mcore: model_parallel; MindFormers shards expert weights (ep, mp, 1)).
    Never more ways than the stage has devices (dp x tp)."""
    tp = max(parallel.model_parallel, 1)
    etp = tp if parallel.expert_tensor_parallel is None else max(parallel.expert_tensor_parallel, 1)
    return max(1, min(max(parallel.expert_parallel, 1) * etp, max(dp, 1) * tp))


def _stage_params(model: ModelSpec, stage: Stage) -> _StageParams:
    m, d = model, model.hidden_size
    latent_norms = m.q_lora_rank + m.kv_lora_rank
    tp = stage.num_layers * (mla_params(m) - latent_norms)
    tp += stage.dense_layers * 3 * d * m.intermediate_size
    tp += stage.moe_layers * m.n_shared_experts * expert_params(m)
    replicated = stage.num_layers * (2 * d + latent_norms) + stage.moe_layers * router_params(m)
    expert = stage.moe_layers * m.n_routed_experts * expert_params(m)
    vocab = m.vocab_size * d * (int(stage.has_embedding) + int(stage.has_head))
    if stage.has_head:
        replicated += d
        mtp_norms = 5 * d + latent_norms
        mtp_experts = m.n_routed_experts * expert_params(m)
        mtp_replicated = mtp_norms + router_params(m)
        tp += m.mtp_depth * (mtp_module_params(m) - mtp_experts - mtp_replicated)
        replicated += m.mtp_depth * mtp_replicated
        expert += m.mtp_depth * mtp_experts
    return _StageParams(tp_sharded=tp, vocab=vocab, expert=expert, replicated=replicated)


def _shard(parallel: ParallelSpec, group: int) -> int:
    """The parallel-optimizer shard within a data-parallel group of `group` devices (1 when off)."""
    if not parallel.parallel_optimizer:
        return 1
    size = parallel.optimizer_weight_shard_size
    return max(1, group if size in (-1, 0) else min(size, group))


def _state_bytes(params: int, training: TrainingSpec, shard: int) -> tuple[int, int, int]:
    """(weights, gradients, optimizer) bytes for `params` parameters on one device."""
    p_bytes = dtype_bytes(training.params_dtype)
    master = 4 if p_bytes < 4 else 0
    return params * p_bytes, params * p_bytes, params * (8 + master) // shard


def _stage_state_bytes(job: JobSpec, stage: Stage, devices: int | None) -> tuple[int, int, int]:
    par = job.parallel
    dp = max(data_parallel(par, devices) if devices else par.data_parallel, 1)
    dense, experts = _stage_params(job.model, stage).on_device(par, dp)
    expert_replicas = max(dp * max(par.model_parallel, 1) // expert_split(par, dp), 1)
    parts = (_state_bytes(dense, job.training, _shard(par, dp)),
             _state_bytes(experts, job.training, _shard(par, expert_replicas)))
    return sum(p[0] for p in parts), sum(p[1] for p in parts), sum(p[2] for p in parts)


def layer_activation_bytes(model: ModelSpec, parallel: ParallelSpec, training: TrainingSpec, *,
                           moe: bool, flash_attention: bool = True) -> int:
    """One layer's stored activations for one micro-batch without recompute (Korthikanti et al. 2022,
    adapted to MLA and SwiGLU/MoE; no dropout). Sequence-parallel divides the norm/residual terms by tp."""
    m, a = model, dtype_bytes(training.compute_dtype)
    tp = max(parallel.model_parallel, 1)
    sb = m.seq_length // max(parallel.context_parallel, 1) * training.batch_size
    sp = tp if parallel.use_seq_parallel else 1
    d, heads = m.hidden_size, m.num_heads
    qk = m.qk_nope_head_dim + m.qk_rope_head_dim
    norms = 4 * d // sp  # both norm inputs and outputs
    latents = (2 * m.q_lora_rank + 2 * m.kv_lora_rank + m.qk_rope_head_dim) // sp
    heads_part = heads * (2 * qk + 2 * m.v_head_dim) // tp  # q, k, v, context
    stored = sb * a * (norms + latents + heads_part)
    if not flash_attention and training.recompute != "selective":
        stored += a * training.batch_size * heads * (m.seq_length // max(parallel.context_parallel, 1)) \
            * m.seq_length // tp
    if not moe:
        return stored + sb * a * 4 * m.intermediate_size // tp
    k, ff = m.num_experts_per_tok, m.moe_intermediate_size
    routed = 4 * sb * m.n_routed_experts + sb * a * k * (2 * d + 4 * ff)
    shared = sb * a * 4 * m.n_shared_experts * ff // tp
    return stored + routed + shared


def recomputed_layers(training: TrainingSpec, stage: Stage) -> int:
    """How many of the stage's layers are fully recomputed: its entry of a per-stage list (the first layers
    of the stage), else all of them under full recompute, else none."""
    if training.full_recompute_layers is not None:
        counts = training.full_recompute_layers
        return min(counts[stage.index] if stage.index < len(counts) else 0, stage.num_layers)
    return stage.num_layers if training.recompute == "full" else 0


def _stage_activation_bytes(job: JobSpec, stage: Stage, in_flight: int, flash_attention: bool) -> int:
    m, par, tr = job.model, job.parallel, job.training
    dense = layer_activation_bytes(m, par, tr, moe=False, flash_attention=flash_attention)
    moe = layer_activation_bytes(m, par, tr, moe=True, flash_attention=flash_attention)
    recomputed = recomputed_layers(tr, stage)
    dense_recomputed = min(recomputed, stage.dense_layers)  # the stage's first layers are the dense ones
    moe_recomputed = recomputed - dense_recomputed
    sb = m.seq_length // max(par.context_parallel, 1) * tr.batch_size
    sp = max(par.model_parallel, 1) if par.use_seq_parallel else 1
    kept_inputs = recomputed * sb * dtype_bytes(tr.compute_dtype) * m.hidden_size // sp
    per_micro_batch = kept_inputs + (stage.dense_layers - dense_recomputed) * dense \
        + (stage.moe_layers - moe_recomputed) * moe
    once = max(dense if dense_recomputed else 0, moe if moe_recomputed else 0)  # the layer being recomputed
    if stage.has_head:
        per_micro_batch += m.mtp_depth * moe
        logits_split = 1 if par.vocab_emb_dp else max(par.model_parallel, 1)
        once += (1 + m.mtp_depth) * sb * m.vocab_size * 6 // logits_split
    return per_micro_batch * in_flight + once


def micro_batches_in_flight(parallel: ParallelSpec, stage: int) -> int:
    """1F1B: stage i holds the activations of pp - i micro-batches (at most micro_batch_num)."""
    pp = max(parallel.pipeline_stage, 1)
    return max(1, min(pp - stage, max(parallel.micro_batch_num, 1)))


def parse_memory_size(text: str) -> int:
    """MindSpore's `max_device_memory` ('58GB', '1024MB'); GB means 2**30 bytes, as MindSpore reads it."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*", text, re.IGNORECASE)
    if match is None:
        raise ValueError(f"unreadable memory size {text!r}; expected a number and a unit, e.g. '58GB'")
    power = " KMGT".index(match.group(2).upper() or " ")
    return int(float(match.group(1)) * (1 << (10 * power)))


def _memory_limit(job: JobSpec, device: DeviceMemory) -> tuple[int, str]:
    """On an NPU `context.max_device_memory` (never above the HBM), else the HBM; on a CPU node the host's
    share; and which it was."""
    if device.on_npu and job.training.max_device_memory:
        limit = min(parse_memory_size(job.training.max_device_memory), device.bytes)
        return limit, f"max_device_memory {job.training.max_device_memory}"
    return device.bytes, device.name


def training_memory(job: JobSpec, devices_per_node: int, device: DeviceMemory = NPU_910B, *,
                    workspace_bytes: int = WORKSPACE_BYTES, flash_attention: bool = True,
                    devices: int | None = None) -> TrainingEstimate:
    """Bytes per device for each pipeline stage, compared with max_device_memory (else `device`'s).

    `devices_per_node` is accepted for the CLI's sake; the per-device figures do not depend on it."""
    del devices_per_node
    limit, source = _memory_limit(job, device)
    stages: list[StageMemory] = []
    for stage in pipeline_stages(job.model, job.parallel.pipeline_stage, mtp_placed=job.mtp_placed):
        weights, grads, optimizer = _stage_state_bytes(job, stage, devices)
        in_flight = micro_batches_in_flight(job.parallel, stage.index)
        activations = _stage_activation_bytes(job, stage, in_flight, flash_attention)
        total = weights + grads + optimizer + activations + workspace_bytes
        stages.append(StageMemory(
            stage=stage.index, num_layers=stage.num_layers, weights=weights, gradients=grads,
            optimizer=optimizer, activations=activations, micro_batches_in_flight=in_flight,
            workspace=workspace_bytes, total=total, headroom=limit - total))
    return fitted(stages, limit, source)


def fitted(stages: list[StageT], limit: int, source: str) -> MemoryEstimate[StageT]:
    """The stages judged against the limit, by the tightest of them."""
    tightest = min(stages, key=lambda s: s.headroom)
    return MemoryEstimate(stages=tuple(stages), limit_bytes=limit, limit_source=source,
                          fits=tightest.headroom >= 0, tightest_stage=tightest.stage,
                          headroom=tightest.headroom)


# ---------------------------------------------------------------- inference memory


@dataclass(frozen=True)
class InferenceStage:
    """Bytes per device on one pipeline stage when serving."""

    stage: int
    num_layers: int
    weights: int
    kv_cache: int
    workspace: int
    total: int
    headroom: int


InferenceEstimate = MemoryEstimate[InferenceStage]


def kv_cache_bytes(model: ModelSpec, batch: int, seq_len: int, dtype_bytes: int,
                   layers: int | None = None) -> int:
    """MLA caches c_kv and k_rope: (kv_lora_rank + qk_rope_head_dim) values per token per layer (all the
    model's layers unless `layers` says). The latent is shared by all heads: tensor parallelism does not
    divide it."""
    cached = model.num_layers if layers is None else layers
    per_token = cached * (model.kv_lora_rank + model.qk_rope_head_dim)
    return batch * seq_len * per_token * dtype_bytes


def inference_memory(job: JobSpec, *, batch: int, seq_len: int, device: DeviceMemory = NPU_910B,
                     workspace_bytes: int = WORKSPACE_BYTES, devices: int | None = None) -> InferenceEstimate:
    """Per stage: the main model's weights in compute_dtype (non-expert parts over tp, or whole with
    vocab_emb_dp; routed experts over ep and inside each expert as in training; no MTP module) plus the
    stage's layers' MLA KV cache for `batch` sequences of `seq_len` tokens, plus the workspace allowance."""
    limit, source = _memory_limit(job, device)
    par, a = job.parallel, dtype_bytes(job.training.compute_dtype)
    dp = max(data_parallel(par, devices) if devices else par.data_parallel, 1)
    serving = replace(job.model, mtp_depth=0)
    stages: list[InferenceStage] = []
    for stage in pipeline_stages(job.model, par.pipeline_stage, mtp_placed=job.mtp_placed):
        weights = sum(_stage_params(serving, stage).on_device(par, dp)) * a
        cache = kv_cache_bytes(job.model, batch, seq_len, a, layers=stage.num_layers)
        total = weights + cache + workspace_bytes
        stages.append(InferenceStage(stage=stage.index, num_layers=stage.num_layers, weights=weights,
                                     kv_cache=cache, workspace=workspace_bytes, total=total,
                                     headroom=limit - total))
    return fitted(stages, limit, source)


# ---------------------------------------------------------------- FLOPs and MFU


@dataclass(frozen=True)
class TrainingFlops:
    """Training FLOPs per token (forward + backward)."""

    matmul: int
    """6 x activated parameters of the main model."""
    attention: int
    """6 x layers x seq x heads x (qk_nope + qk_rope + v): QK^T and AV, full (non-causal) square."""
    mtp: int
    """The same two terms for the MTP modules."""
    total: int


def training_flops_per_token(model: ModelSpec, seq_len: int | None = None) -> TrainingFlops:
    """FLOPs per trained token; `seq_len` defaults to the model's seq_length."""
    s = model.seq_length if seq_len is None else seq_len
    per_layer_attention = 6 * s * model.num_heads * (
        model.qk_nope_head_dim + model.qk_rope_head_dim + model.v_head_dim)
    matmul = 6 * count_params(model).activated
    attention = model.num_layers * per_layer_attention
    mtp = 6 * mtp_activated_params(model) + model.mtp_depth * per_layer_attention
    return TrainingFlops(matmul=matmul, attention=attention, mtp=mtp, total=matmul + attention + mtp)


def mfu(flops_per_token: float, tokens_per_step: int, step_seconds: float, devices: int,
        peak_flops_per_device: float = PEAK_FLOPS_910B_BF16) -> float:
    """Model FLOPs utilisation: achieved FLOP/s over the devices' peak (0..1)."""
    if step_seconds <= 0 or devices <= 0 or peak_flops_per_device <= 0:
        raise ValueError("step_seconds, devices and peak_flops_per_device must be positive")
    return flops_per_token * tokens_per_step / step_seconds / (devices * peak_flops_per_device)
