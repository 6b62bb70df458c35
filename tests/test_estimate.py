
"""Estimates: parameter counts against the published figures and an independent count of every weight,
memory per stage and per device, FLOPs and MFU."""

from dataclasses import replace
from math import prod
from pathlib import Path

import pytest

from model.config import JobSpec, ModelSpec, ParallelSpec, TrainingSpec, load_spec
from model.estimate import (
    GIB,
    count_params,
    inference_memory,
    kv_cache_bytes,
    layers_per_stage,
    mfu,
    parse_memory_size,
    pipeline_stages,
    training_flops_per_token,
    training_memory,
)

JOBS = Path(__file__).resolve().parent.parent / "configs" / "jobs"


def job_1b() -> JobSpec:
    return load_spec(JOBS / "pretrain_deepseek3_1b.yaml")


def job_671b() -> JobSpec:
    return load_spec(JOBS / "pretrain_deepseek3_671b.yaml")


# ---- an independent count: every weight's shape, written from the reference's equations


def mla_shapes(m: ModelSpec, prefix: str) -> list[tuple[str, tuple[int, ...]]]:
    qk = m.qk_nope_head_dim + m.qk_rope_head_dim
    return [
        (f"{prefix}.attn.w_dq", (m.hidden_size, m.q_lora_rank)),
        (f"{prefix}.attn.q_norm", (m.q_lora_rank,)),
        (f"{prefix}.attn.w_uq", (m.q_lora_rank, m.num_heads * qk)),
        (f"{prefix}.attn.w_dkv", (m.hidden_size, m.kv_lora_rank + m.qk_rope_head_dim)),
        (f"{prefix}.attn.kv_norm", (m.kv_lora_rank,)),
        (f"{prefix}.attn.w_ukv", (m.kv_lora_rank, m.num_heads * (m.qk_nope_head_dim + m.v_head_dim))),
        (f"{prefix}.attn.w_o", (m.num_heads * m.v_head_dim, m.hidden_size)),
    ]


def swiglu_shapes(name: str, hidden: int, inner: int) -> list[tuple[str, tuple[int, ...]]]:
    return [(f"{name}.gate", (hidden, inner)), (f"{name}.up", (hidden, inner)),
            (f"{name}.down", (inner, hidden))]


def moe_shapes(m: ModelSpec, prefix: str) -> list[tuple[str, tuple[int, ...]]]:
    shapes: list[tuple[str, tuple[int, ...]]] = [(f"{prefix}.router", (m.n_routed_experts, m.hidden_size)),
              (f"{prefix}.router_bias", (m.n_routed_experts,))]
    for e in range(m.n_routed_experts):
        shapes += swiglu_shapes(f"{prefix}.expert{e}", m.hidden_size, m.moe_intermediate_size)
    for e in range(m.n_shared_experts):
        shapes += swiglu_shapes(f"{prefix}.shared{e}", m.hidden_size, m.moe_intermediate_size)
    return shapes


def block_shapes(m: ModelSpec, prefix: str, moe: bool) -> list[tuple[str, tuple[int, ...]]]:
    shapes: list[tuple[str, tuple[int, ...]]] = [
        (f"{prefix}.attn_norm", (m.hidden_size,)), *mla_shapes(m, prefix),
              (f"{prefix}.mlp_norm", (m.hidden_size,))]
    if moe:
        return shapes + moe_shapes(m, prefix)
    return shapes + swiglu_shapes(f"{prefix}.mlp", m.hidden_size, m.intermediate_size)


def main_model_shapes(m: ModelSpec) -> list[tuple[str, tuple[int, ...]]]:
    shapes: list[tuple[str, tuple[int, ...]]] = [("embedding", (m.vocab_size, m.hidden_size))]
    for layer in range(m.num_layers):
        shapes += block_shapes(m, f"layer{layer}", moe=layer >= m.first_k_dense_replace)
    return [*shapes, ("final_norm", (m.hidden_size,)), ("head", (m.hidden_size, m.vocab_size))]


def mtp_shapes(m: ModelSpec) -> list[tuple[str, tuple[int, ...]]]:
    shapes: list[tuple[str, tuple[int, ...]]] = []
    for k in range(m.mtp_depth):
        shapes += [(f"mtp{k}.proj", (2 * m.hidden_size, m.hidden_size)),
                   (f"mtp{k}.hidden_norm", (m.hidden_size,)), (f"mtp{k}.embed_norm", (m.hidden_size,)),
                   *block_shapes(m, f"mtp{k}.block", moe=True), (f"mtp{k}.final_norm", (m.hidden_size,))]
    return shapes


def total(shapes: list[tuple[str, tuple[int, ...]]]) -> int:
    names = [name for name, _ in shapes]
    assert len(names) == len(set(names))
    return sum(prod(shape) for _, shape in shapes)


@pytest.mark.parametrize("model", [ModelSpec(), job_1b().model, job_671b().model],
                         ids=["default", "1b", "671b"])
def test_count_equals_the_sum_of_every_weight_shape(model: ModelSpec):
    count = count_params(model)
    assert count.total == total(main_model_shapes(model))
    assert count.mtp == total(mtp_shapes(model))
    assert count.total_with_mtp == count.total + count.mtp
    parts = (count.embedding + count.attention + count.dense_mlp + count.routed_experts
             + count.shared_experts + count.router + count.norms + count.output_head)
    assert parts == count.total


def test_deepseek_v3_is_671b_total_and_37b_activated():
    count = count_params(ModelSpec())
    assert count.total == pytest.approx(671e9, rel=0.005)
    assert count.activated == pytest.approx(37e9, rel=0.03)
    # the released checkpoint: the main model, the MTP module and its own embedding/head copies
    assert count.total_with_mtp + count.checkpoint_mtp_copies == pytest.approx(685e9, rel=0.005)


def test_activated_counts_top_k_experts_and_not_the_embedding():
    m = ModelSpec()
    count = count_params(m)
    moe_layers = m.num_layers - m.first_k_dense_replace
    routed_active = count.routed_experts * m.num_experts_per_tok // m.n_routed_experts
    assert count.activated == (count.total - count.embedding - count.routed_experts + routed_active)
    assert routed_active == moe_layers * m.num_experts_per_tok * 3 * m.hidden_size * m.moe_intermediate_size


def test_tutorial_1b_is_about_one_billion():
    assert count_params(job_1b().model).total == pytest.approx(1.0e9, rel=0.05)


# ---- pipeline stages


def test_offsets_place_the_671b_layers():
    model = job_671b().model
    counts = layers_per_stage(model, 16)
    assert sum(counts) == 61
    # MindFormers places 61 + 1 MTP layers: 62 // 16 = 3 a stage plus the offsets [1]*15 + [-1];
    # the MTP layer is the last of the last stage, counted apart here
    assert counts == (4,) * 15 + (1,)


def test_remainder_goes_to_the_last_stages_and_dense_layers_come_first():
    model = ModelSpec(num_layers=7, first_k_dense_replace=3, offset=0, mtp_depth=0)
    assert layers_per_stage(model, 3) == (2, 2, 3)
    stages = pipeline_stages(model, 3)
    assert [s.dense_layers for s in stages] == [2, 1, 0]
    assert stages[0].has_embedding and stages[-1].has_head and not stages[1].has_head


def test_interleaved_offsets_add_up_per_stage():
    model = ModelSpec(num_layers=8, offset=((1, -1), (0, 0)))
    assert layers_per_stage(model, 2) == (5, 3)


# ---- training memory


def test_tutorial_1b_fits_on_a_910b():
    estimate = training_memory(job_1b(), devices_per_node=8)
    assert estimate.fits
    assert estimate.limit_bytes == 58 * GIB and "58GB" in estimate.limit_source
    assert [s.num_layers for s in estimate.stages] == [2, 1]  # 3 layers + 1 MTP placed 2 + 2
    assert estimate.tightest_stage == 1  # the head, its logits and the MTP module sit on the last stage
    assert estimate.headroom == min(s.headroom for s in estimate.stages) > 0


def test_671b_unsharded_on_one_device_does_not_fit():
    job = job_671b()
    alone = JobSpec(source="t", dialect=job.dialect, model=job.model, parallel=ParallelSpec(),
                    training=TrainingSpec(), defaulted={})
    estimate = training_memory(alone, devices_per_node=8)
    assert not estimate.fits
    assert estimate.limit_source == "HBM" and estimate.limit_bytes == 64 * GIB
    assert estimate.headroom < -1000 * GIB


def test_state_bytes_follow_dtypes_and_shards():
    model = ModelSpec(num_layers=2, hidden_size=256, num_heads=4, vocab_size=1000, intermediate_size=512,
                      n_routed_experts=8, num_experts_per_tok=2, moe_intermediate_size=128,
                      first_k_dense_replace=1, mtp_depth=0)
    def job(params_dtype: str, shard: int) -> JobSpec:
        return JobSpec(source="t", dialect=job_1b().dialect, model=model,
                       parallel=ParallelSpec(data_parallel=4, optimizer_weight_shard_size=shard,
                                             parallel_optimizer=True),
                       training=TrainingSpec(params_dtype=params_dtype), defaulted={})
    fp32 = training_memory(job("float32", 1), 8).stages[0]
    bf16 = training_memory(job("bfloat16", 1), 8).stages[0]
    sharded = training_memory(job("float32", -1), 8).stages[0]
    params = count_params(model).total
    assert fp32.weights == fp32.gradients == 4 * params
    assert fp32.optimizer == 8 * params  # two fp32 moments, no master copy
    assert bf16.weights == 2 * params and bf16.optimizer == 12 * params  # plus an fp32 master
    assert sharded.optimizer == 8 * params // 4
    off = replace(job("float32", -1), parallel=ParallelSpec(data_parallel=4, parallel_optimizer=False))
    assert training_memory(off, 8).stages[0].optimizer == 8 * params  # sharding switched off
    rest = replace(job("float32", -1), parallel=ParallelSpec(data_parallel=-1, parallel_optimizer=True))
    assert training_memory(rest, 8, devices=4).stages[0].optimizer == 8 * params // 4  # -1 resolved


def test_full_recompute_needs_less_activation_memory():
    job = job_1b()
    def with_recompute(level: str) -> int:
        training = TrainingSpec(recompute=level)  # type: ignore[arg-type]
        changed = JobSpec(source="t", dialect=job.dialect, model=job.model, parallel=job.parallel,
                          training=training, defaulted={})
        return training_memory(changed, 8).stages[0].activations
    assert with_recompute("full") < with_recompute("none")


def test_earlier_stages_hold_more_micro_batches():
    stages = training_memory(job_671b(), 8).stages
    assert [s.micro_batches_in_flight for s in stages] == list(range(16, 0, -1))


@pytest.mark.parametrize(("text", "size"), [("58GB", 58 * GIB), ("1024MB", GIB), ("1.5gb", 3 * GIB // 2)])
def test_memory_sizes_read_as_mindspore_does(text: str, size: int):
    assert parse_memory_size(text) == size


def test_an_unreadable_memory_size_says_what_would_do():
    with pytest.raises(ValueError, match="58GB"):
        parse_memory_size("lots")


# ---- inference


def serving(model: ModelSpec, **parallel: object) -> JobSpec:
    return JobSpec(source="t", dialect=job_1b().dialect, model=model,
                   parallel=ParallelSpec(**parallel),  # type: ignore[arg-type]
                   training=TrainingSpec(compute_dtype="bfloat16"), defaulted={})


def test_mla_kv_cache_is_576_values_per_token_per_layer():
    model = ModelSpec()
    assert kv_cache_bytes(model, batch=1, seq_len=1, dtype_bytes=1) == 576 * 61
    memory = inference_memory(serving(model, model_parallel=8, expert_parallel=8), batch=2, seq_len=4096)
    [stage] = memory.stages
    assert stage.kv_cache == 2 * 4096 * 576 * 61 * 2  # every device holds the whole latent cache
    m, count = model, count_params(model)
    moe_layers = m.num_layers - m.first_k_dense_replace
    replicated = (m.num_layers * (2 * m.hidden_size + m.q_lora_rank + m.kv_lora_rank)
                  + moe_layers * (m.n_routed_experts * m.hidden_size + m.n_routed_experts) + m.hidden_size)
    assert stage.weights == ((count.total - replicated) // 8 + replicated) * 2  # bf16, MTP module left out
    assert stage.total == stage.weights + stage.kv_cache + stage.workspace
    assert not memory.fits and memory.headroom == stage.headroom < 0  # 671B on 8 devices does not fit


def test_inference_splits_routed_experts_over_ep_and_the_cache_over_stages():
    model = ModelSpec()
    routed = count_params(model).routed_experts * 2
    one = inference_memory(serving(model, data_parallel=8, model_parallel=8, expert_parallel=1), batch=1,
                           seq_len=4096, devices=64).stages[0]
    eight = inference_memory(serving(model, data_parallel=8, model_parallel=8, expert_parallel=8), batch=1,
                             seq_len=4096, devices=64).stages[0]
    assert one.weights - eight.weights == routed // 8 - routed // 64
    staged = inference_memory(serving(model, model_parallel=8, expert_parallel=8, pipeline_stage=2), batch=1,
                              seq_len=4096)
    expected = [kv_cache_bytes(model, 1, 4096, 2, layers=s.num_layers) for s in staged.stages]
    assert [s.kv_cache for s in staged.stages] == expected


# ---- FLOPs and MFU


def test_flops_per_token_is_six_n_plus_attention():
    model = ModelSpec(mtp_depth=0)
    flops = training_flops_per_token(model, seq_len=4096)
    assert flops.matmul == 6 * count_params(model).activated
    assert flops.attention == 6 * 61 * 4096 * 128 * (128 + 64 + 128)
    assert flops.mtp == 0 and flops.total == flops.matmul + flops.attention
    assert flops.total == pytest.approx(6 * 37e9 + flops.attention, rel=0.03)


def test_mfu_is_achieved_over_peak():
    assert mfu(1e9, tokens_per_step=1000, step_seconds=2.0, devices=4, peak_flops_per_device=1e12) == 0.125
    with pytest.raises(ValueError):
        mfu(1e9, tokens_per_step=1, step_seconds=0, devices=1)


# ---- sharding refinements


SMALL_MOE = ModelSpec(num_layers=2, hidden_size=256, num_heads=4, vocab_size=1024, intermediate_size=512,
                      n_routed_experts=8, num_experts_per_tok=2, moe_intermediate_size=128,
                      first_k_dense_replace=1, mtp_depth=0)


def small_job(**parallel: object) -> JobSpec:
    return JobSpec(source="t", dialect=job_1b().dialect, model=SMALL_MOE,
                   parallel=ParallelSpec(**parallel),  # type: ignore[arg-type]
                   training=TrainingSpec(), defaulted={})


def stage0_weights(**parallel: object) -> int:
    return training_memory(small_job(**parallel), 8).stages[0].weights


def test_routed_experts_split_over_ep_and_inside_each_expert_over_tp():
    routed = SMALL_MOE.n_routed_experts * 3 * SMALL_MOE.hidden_size * SMALL_MOE.moe_intermediate_size * 4
    base = dict(data_parallel=4, model_parallel=2)
    # research/mcore: (ep, mp, 1) -> ep x tp ways; pynative's expert_tensor_parallel 1 -> ep ways
    assert stage0_weights(**base, expert_parallel=1) - stage0_weights(**base, expert_parallel=2) == \
        routed // 2 - routed // 4
    assert stage0_weights(**base, expert_parallel=2, expert_tensor_parallel=1) - \
        stage0_weights(**base, expert_parallel=2) == routed // 2 - routed // 4
    # never more ways than the stage's devices (dp x tp = 8)
    assert stage0_weights(**base, expert_parallel=8) == stage0_weights(**base, expert_parallel=4)


def test_vocab_emb_dp_keeps_embedding_and_head_whole_on_every_tp_rank():
    vocab = SMALL_MOE.vocab_size * SMALL_MOE.hidden_size * 4
    split = stage0_weights(data_parallel=4, model_parallel=2)
    whole = stage0_weights(data_parallel=4, model_parallel=2, vocab_emb_dp=True)
    assert whole - split == 2 * (vocab - vocab // 2)  # one stage holds both embedding and head


def test_a_per_stage_recompute_list_recomputes_each_stage_as_listed():
    job = job_671b()
    listed = replace(job, training=replace(job.training, recompute="none",
                                           full_recompute_layers=(3, *[4] * 12, 3, 2, 0)))
    full = replace(job, training=replace(job.training, recompute="full", full_recompute_layers=None))
    none = replace(job, training=replace(job.training, recompute="none", full_recompute_layers=None))
    per_stage = [training_memory(j, 8).stages for j in (listed, full, none)]
    acts = [[s.activations for s in stages] for stages in per_stage]
    assert acts[0][1] == acts[1][1]  # 4 of 4 layers: as full recompute
    assert acts[0][15] == acts[2][15]  # 0 layers recomputed: as none
    assert acts[1][13] < acts[0][13] < acts[2][13]  # 3 of 4
