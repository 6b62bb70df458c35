"""The typed, frozen description of a job that every dialect is read into (see model.config)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from model.placement import Offset
from model.yamlvalues import is_number

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
    topk_method: str | None = None
    """Research era `moe_config.topk_method`: MindFormers routes by groups only with `group_limited_greedy`
    or `noaux_tc` (modules/transformer/moe.py); None where the dialect always routes by groups."""
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
        if len(paths) % 2 == 0 and all(is_number(p) for p in paths[::2]):
            return paths[1::2]
        return paths


@dataclass(frozen=True)
class InferenceSpec:
    """What a predict config sets for serving: the paged KV cache MindFormers allocates up front."""

    block_size: int | None = None
    """Tokens per KV-cache block (`model.model_config.block_size`); None: the file does not say."""
    num_blocks: int | None = None
    """KV-cache blocks allocated per device (`model.model_config.num_blocks`)."""


@dataclass(frozen=True)
class UnknownKey:
    """A key in a section the console reads that no dialect field or MindFormers option names: MindFormers
    ignores it, so it is most likely a typo of `suggestion`."""

    path: str
    """The dotted path as written (`paralel_config`, `parallel_config.data_paralel`)."""
    line: int | None
    suggestion: str | None
    """The closest known key's dotted path, or None when nothing is close."""


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
    defaulted: Mapping[str, str] = field(hash=False)
    """Spec fields (`model.n_group`, `parallel.context_parallel`) the file left out, each with where its value
    came from: "config.json" (pretrained_model_dir's), "class default" (the model class's own) or
    "MindFormers default" (parallel and training fields). `"model.n_group" in job.defaulted` asks whether the
    file left it out."""
    locations: Mapping[str, Location] = field(default_factory=dict, compare=False, hash=False)
    """Spec field -> where the file set it; for error messages that point into the file."""
    derived: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    """Spec fields computed from other fields rather than read (pynative micro_batch_num from the batch
    sizes), each with how; their `locations` point at the field they were computed from."""

    inference: InferenceSpec = InferenceSpec()
    unknown_keys: tuple[UnknownKey, ...] = ()
    """Keys MindFormers would ignore, each with the known key it most likely meant (model/keys.py)."""
    warnings: tuple[str, ...] = ()
    """What a person should know about where the values came from (pretrained_model_dir not readable)."""
    run_mode: str | None = None
    """MindFormers' `run_mode` as the file sets it (train, finetune, predict, eval); None: it sets none."""

    @property
    def mtp_placed(self) -> bool:
        """Whether the offsets place the MTP layers with the main model's. MindFormers' research-era
        LayerSetting places num_layers + mtp_depth layers; mcore's TransformerBlock places num_layers only
        (its offsets sum to num_layers' remainder) and the MTP block then sits on the last stage. Pynative
        offsets are the console's own, written the research way (model.config)."""
        return self.dialect is not Dialect.MCORE

    def location(self, spec_field: str) -> Location | None:
        return self.locations.get(spec_field)
