"""model/estimate.py training_memory against worked examples done by hand from docs/estimates.md.

A layout small enough that every term of the formulas can be written out (issue 16, item 5): the
expected bytes are arithmetic in this file, not the estimator's helpers, so an activation term
multiplied by 3, or a shard dropped, fails here.

    d=8  H=2  V=16  s=4  b=1  f=12  q=4  c=3  n=2  r=2  v=2  E=4  S=1  k=2  f_e=3
    L=2 (layer 0 dense, layer 1 MoE), no MTP, one pipeline stage, flash attention, no recompute.
"""

from __future__ import annotations

from model.config import Dialect, JobSpec, ModelSpec, ParallelSpec, TrainingSpec
from model.estimate import training_memory

TINY = ModelSpec(num_layers=2, hidden_size=8, num_heads=2, vocab_size=16, seq_length=4, intermediate_size=12,
                 q_lora_rank=4, kv_lora_rank=3, qk_nope_head_dim=2, qk_rope_head_dim=2, v_head_dim=2,
                 n_routed_experts=4, n_shared_experts=1, num_experts_per_tok=2, moe_intermediate_size=3,
                 first_k_dense_replace=1, n_group=1, topk_group=1, mtp_depth=0)

# parameters, part by part (docs/estimates.md, "Parameters")
EMBEDDING = 16 * 8                                    # V·d = 128
MLA = (8 * 4 + 4 + 4 * 2 * (2 + 2) + 8 * (3 + 2)     # d·q + q + q·H·(n+r) + d·(c+r)
       + 3 + 3 * 2 * (2 + 2) + 2 * 2 * 8)             # + c + c·H·(n+v) + H·v·d = 167
LATENT_NORMS = 4 + 3                                  # the +q and +c of MLA
DENSE_MLP = 3 * 8 * 12                                # 3·d·f = 288
ROUTED = 4 * 3 * 8 * 3                                # E·3·d·f_e = 288
SHARED = 1 * 3 * 8 * 3                                # S·3·d·f_e = 72
ROUTER = 4 * 8 + 4                                    # E·d + E = 36
NORMS = (2 * 2 + 1) * 8                               # (2L+1)·d = 40
HEAD = 16 * 8                                         # V·d = 128
TOTAL = EMBEDDING + 2 * MLA + DENSE_MLP + ROUTED + SHARED + ROUTER + NORMS + HEAD


def job(parallel: ParallelSpec, training: TrainingSpec) -> JobSpec:
    return JobSpec(source="worked example", dialect=Dialect.RESEARCH, model=TINY, parallel=parallel,
                   training=training, defaulted={})


def test_the_parts_add_up_as_written():
    assert (MLA, TOTAL) == (167, 1314)


def test_one_device_fp32_params_bf16_compute():
    [stage] = training_memory(job(ParallelSpec(), TrainingSpec(params_dtype="float32")), 1).stages
    assert stage.weights == stage.gradients == 4 * 1314 == 5256
    assert stage.optimizer == 8 * 1314 == 10512  # two fp32 moments, no master copy for fp32 weights
    a, sb = 2, 4 * 1                               # bf16; s·b
    attention = sb * a * (4 * 8 + (2 * 4 + 2 * 3 + 2) + 2 * (2 * (2 + 2) + 2 * 2))  # 8·(32+16+24) = 576
    dense_layer = attention + sb * a * 4 * 12                                      # + 384 = 960
    moe_layer = attention + 4 * sb * 4 + sb * a * 2 * (2 * 8 + 4 * 3) + sb * a * 4 * 1 * 3  # 576+64+448+96
    logits = (1 + 0) * sb * 16 * 6                                                 # 384, once
    assert (attention, dense_layer, moe_layer, logits) == (576, 960, 1184, 384)
    assert stage.micro_batches_in_flight == 1
    assert stage.activations == dense_layer + moe_layer + logits == 2528
    assert stage.total == 5256 + 5256 + 10512 + 2528 + stage.workspace


def test_tensor_and_sequence_parallel_bf16_params_sharded_optimizer():
    parallel = ParallelSpec(data_parallel=2, model_parallel=2, use_seq_parallel=True,
                            parallel_optimizer=True, optimizer_weight_shard_size=-1)
    [stage] = training_memory(job(parallel, TrainingSpec(params_dtype="bfloat16")), 4).stages
    # over t=2: MLA matrices, dense MLP, shared experts; the vocabulary over t too (vocab_emb_dp off);
    # whole: norms, latent norms, router; routed experts over e·t = 1·2 (MindFormers' (ep, mp, 1)).
    tp_part = (2 * (MLA - LATENT_NORMS) + DENSE_MLP + SHARED) // 2   # (320 + 288 + 72) / 2 = 340
    vocab = (EMBEDDING + HEAD) // 2                                   # 128
    replicated = NORMS + 2 * LATENT_NORMS + ROUTER                    # 40 + 14 + 36 = 90
    experts = ROUTED // 2                                             # 144
    dense = tp_part + vocab + replicated                              # 558
    assert (dense, experts) == (558, 144)
    assert stage.weights == stage.gradients == 2 * (558 + 144) == 1404
    # AdamW: 8 bytes of moments + a 4-byte fp32 master, over the shard: dp=2 for the others,
    # dp·t/e·t = 2 expert replicas for the routed experts
    assert stage.optimizer == 558 * 12 // 2 + 144 * 12 // 2 == 4212
    a, sb, t, sp = 2, 4, 2, 2
    attention = sb * a * (4 * 8 // sp + (2 * 4 + 2 * 3 + 2) // sp + 2 * (2 * 4 + 2 * 2) // t)  # 8·36 = 288
    dense_layer = attention + sb * a * 4 * 12 // t                                        # + 192 = 480
    moe_layer = attention + 4 * sb * 4 + sb * a * 2 * (2 * 8 + 4 * 3) + sb * a * 4 * 1 * 3 // t
    # 288 + router logits 64 + routed 448 + shared 48
    logits = sb * 16 * 6 // t                                                             # 192
    assert (attention, dense_layer, moe_layer, logits) == (288, 480, 848, 192)
    assert stage.activations == dense_layer + moe_layer + logits == 1520
