"""The small building blocks: RMSNorm, rotary embedding on the rope part, a SwiGLU feed-forward."""

from __future__ import annotations

import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import Normal, initializer

INIT_STD = 0.02


def linear(in_features: int, out_features: int) -> nn.Dense:
    """A bias-free projection initialised N(0, 0.02), as DeepSeek-V3's linear layers are."""
    return nn.Dense(in_features, out_features, weight_init=Normal(INIT_STD), has_bias=False)


class RMSNorm(nn.Cell):
    """x / rms(x) * weight, computed in float32."""

    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = Parameter(initializer("ones", (size,)), name="weight")
        self.eps = eps

    def construct(self, x: Tensor) -> Tensor:
        variance = ops.mean(ops.square(x), axis=-1, keep_dims=True)
        return x * ops.rsqrt(variance + self.eps) * self.weight


class RotaryEmbedding(nn.Cell):
    """Rotary position embedding (rotate-half form) for a `dim`-wide slice of each head.

    MLA applies it to the decoupled rope part only: `qk_rope_head_dim` of each query head and the one
    rope key shared by all heads. The cos/sin tables are constants, not parameters.
    """

    def __init__(self, dim: int, max_positions: int, theta: float) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"qk_rope_head_dim must be even, got {dim}")
        inverse = 1.0 / theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
        angles = np.outer(np.arange(max_positions, dtype=np.float64), inverse)
        angles = np.concatenate([angles, angles], axis=-1)
        self.cos = Tensor(np.cos(angles).astype(np.float32))
        self.sin = Tensor(np.sin(angles).astype(np.float32))
        self.half = dim // 2

    def construct(self, x: Tensor, start: int) -> Tensor:
        """x: [batch, seq, heads, dim], its first position at `start`."""
        seq = x.shape[1]
        cos = self.cos[start:start + seq].view(1, seq, 1, -1)
        sin = self.sin[start:start + seq].view(1, seq, 1, -1)
        first, second = x[..., :self.half], x[..., self.half:]
        rotated = ops.cat((-second, first), axis=-1)
        return x * cos + rotated * sin


class SwiGLU(nn.Cell):
    """down(silu(gate(x)) * up(x)): the dense MLP, the shared expert."""

    def __init__(self, hidden: int, intermediate: int) -> None:
        super().__init__()
        self.gate = linear(hidden, intermediate)
        self.up = linear(hidden, intermediate)
        self.down = linear(intermediate, hidden)

    def construct(self, x: Tensor) -> Tensor:
        return self.down(ops.silu(self.gate(x)) * self.up(x))
