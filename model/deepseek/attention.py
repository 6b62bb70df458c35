"""Multi-head latent attention (DeepSeek-V3 report, section 2.1.1).

Queries go through a low-rank bottleneck (`q_lora_rank`); keys and values are rebuilt per head from
one compressed latent `c_kv` (`kv_lora_rank`), and positions enter only through a separate rope part:
`qk_rope_head_dim` per query head and one rope key shared by all heads. What inference caches per token
is therefore just `c_kv` and the rope key, kept here in `LatentCache`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from mindspore import Tensor, nn, ops

from model.config import ModelSpec
from model.deepseek.layers import RMSNorm, RotaryEmbedding, linear

MASKED = -1e9


@dataclass
class LatentCache:
    """One layer's inference cache: normalised `c_kv` [batch, seen, kv_lora] and roped keys
    [batch, seen, 1, rope], grown by each forward call (PyNative only)."""

    latent: Tensor | None = None
    rope_key: Tensor | None = None
    length: int = field(default=0)

    def extend(self, latent: Tensor, rope_key: Tensor) -> tuple[Tensor, Tensor]:
        if self.latent is None or self.rope_key is None:
            self.latent, self.rope_key = latent, rope_key
        else:
            self.latent = ops.cat((self.latent, latent), axis=1)
            self.rope_key = ops.cat((self.rope_key, rope_key), axis=1)
        self.length = self.latent.shape[1]
        return self.latent, self.rope_key


def causal_mask(queries: int, keys: int) -> Tensor:
    """[queries, keys] additive mask: query i (at position keys - queries + i) sees keys up to itself."""
    first = keys - queries
    allowed = np.arange(keys)[None, :] <= (first + np.arange(queries))[:, None]
    return Tensor(np.where(allowed, 0.0, MASKED).astype(np.float32))


class MultiHeadLatentAttention(nn.Cell):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.heads = spec.num_heads
        self.nope = spec.qk_nope_head_dim
        self.rope = spec.qk_rope_head_dim
        self.value = spec.v_head_dim
        self.kv_rank = spec.kv_lora_rank
        self.q_down = linear(spec.hidden_size, spec.q_lora_rank)
        self.q_norm = RMSNorm(spec.q_lora_rank, spec.rms_norm_eps)
        self.q_up = linear(spec.q_lora_rank, spec.num_heads * (self.nope + self.rope))
        self.kv_down = linear(spec.hidden_size, spec.kv_lora_rank + self.rope)
        self.kv_norm = RMSNorm(spec.kv_lora_rank, spec.rms_norm_eps)
        self.kv_up = linear(spec.kv_lora_rank, spec.num_heads * (self.nope + self.value))
        self.out = linear(spec.num_heads * self.value, spec.hidden_size)
        self.rotary = RotaryEmbedding(self.rope, spec.max_position_embeddings, spec.rope_theta)
        self.scale = 1.0 / math.sqrt(self.nope + self.rope)

    def construct(self, x: Tensor, mask: Tensor, cache: LatentCache | None = None) -> Tensor:
        """x: [batch, seq, hidden]; mask: additive [seq, keys] (see `causal_mask`)."""
        batch, seq, _ = x.shape
        start = 0 if cache is None else cache.length
        query = self.q_up(self.q_norm(self.q_down(x))).view(batch, seq, self.heads, self.nope + self.rope)
        q_nope, q_rope = query[..., :self.nope], self.rotary(query[..., self.nope:], start)
        compressed = self.kv_down(x)
        latent = self.kv_norm(compressed[..., :self.kv_rank])
        rope_key = self.rotary(compressed[..., self.kv_rank:].view(batch, seq, 1, self.rope), start)
        if cache is not None:
            latent, rope_key = cache.extend(latent, rope_key)
        keys = latent.shape[1]
        key_value = self.kv_up(latent).view(batch, keys, self.heads, self.nope + self.value)
        k_nope, value = key_value[..., :self.nope], key_value[..., self.nope:]
        key = ops.cat((k_nope, ops.broadcast_to(rope_key, (batch, keys, self.heads, self.rope))), axis=-1)
        query = ops.cat((q_nope, q_rope), axis=-1)
        scores = ops.matmul(query.transpose(0, 2, 1, 3), key.transpose(0, 2, 3, 1)) * self.scale + mask
        weights = ops.softmax(scores, axis=-1)
        attended = ops.matmul(weights, value.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
        return self.out(attended.reshape(batch, seq, self.heads * self.value))
