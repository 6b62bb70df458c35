"""Small DeepSeek-V3 shapes for the network tests: every part present, fast on a CPU."""

from model.config import ModelSpec

SMALL = ModelSpec(
    num_layers=2, hidden_size=64, num_heads=4, vocab_size=256, seq_length=16, max_position_embeddings=64,
    intermediate_size=96, q_lora_rank=32, kv_lora_rank=16, qk_nope_head_dim=16, qk_rope_head_dim=8,
    v_head_dim=16, n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2, moe_intermediate_size=32,
    first_k_dense_replace=1, n_group=4, topk_group=2, mtp_depth=1, mtp_loss_factor=0.3,
)

OTHER = ModelSpec(
    num_layers=3, hidden_size=48, num_heads=2, vocab_size=300, seq_length=8, max_position_embeddings=32,
    intermediate_size=80, q_lora_rank=24, kv_lora_rank=12, qk_nope_head_dim=8, qk_rope_head_dim=4,
    v_head_dim=12, n_routed_experts=6, n_shared_experts=2, num_experts_per_tok=3, moe_intermediate_size=20,
    first_k_dense_replace=2, n_group=1, topk_group=1, mtp_depth=2, mtp_loss_factor=0.1,
    scoring_func="softmax", norm_topk_prob=False,
)
