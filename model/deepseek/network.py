"""DeepSeek-V3: decoder layers (MLA + dense MLP or DeepSeekMoE), multi-token prediction, the LM loss.

Built from a `ModelSpec`, so the same YAML that MindFormers reads describes this network; any size
works, from the 671B layout (which would not fit here) down to the smoke-test model.
"""

from __future__ import annotations

from dataclasses import dataclass

from mindspore import Tensor, nn, ops
from mindspore.common.initializer import Normal

from model.config import ModelSpec
from model.deepseek.attention import LatentCache, MultiHeadLatentAttention, causal_mask
from model.deepseek.layers import INIT_STD, RMSNorm, SwiGLU, linear
from model.deepseek.moe import MoE


class DecoderLayer(nn.Cell):
    """Pre-norm block: h + MLA(norm(h)), then + FFN(norm(.)) with a dense MLP or DeepSeekMoE."""

    def __init__(self, spec: ModelSpec, moe: bool) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)
        self.attention = MultiHeadLatentAttention(spec)
        self.ffn_norm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)
        self.routed = moe
        self.feed_forward: MoE | SwiGLU
        self.feed_forward = MoE(spec) if moe else SwiGLU(spec.hidden_size, spec.intermediate_size)

    def construct(self, x: Tensor, mask: Tensor, cache: LatentCache | None = None
                  ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """-> (output, expert load or None, balance loss or None)."""
        x = x + self.attention(self.attention_norm(x), mask, cache)
        normed = self.ffn_norm(x)
        if not self.routed:
            return x + self.feed_forward(normed), None, None
        out, load, balance = self.feed_forward(normed)
        return x + out, load, balance


class MultiTokenPrediction(nn.Cell):
    """One MTP depth: h' = W[norm(h); norm(emb(next token))], one transformer block, a final norm.
    The embedding and the output head are the main model's (passed in, not owned)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.hidden_norm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)
        self.embedding_norm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)
        self.projection = linear(2 * spec.hidden_size, spec.hidden_size)
        self.block = DecoderLayer(spec, moe=True)
        self.final_norm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)

    def construct(self, hidden: Tensor, next_embedded: Tensor, mask: Tensor
                  ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """-> (this depth's hidden state, its final-normed output, expert load, balance loss)."""
        joined = ops.cat((self.hidden_norm(hidden), self.embedding_norm(next_embedded)), axis=-1)
        out, load, balance = self.block(self.projection(joined), mask)
        return out, self.final_norm(out), load, balance


@dataclass(frozen=True)
class Losses:
    """What one training forward pass reports. `total` is what the gradients are taken of."""

    total: Tensor
    lm: Tensor
    mtp: Tensor
    balance: Tensor
    loads: Tensor
    """[moe layers incl. MTP blocks, experts]: tokens routed to each expert in this batch."""


class DeepseekV3(nn.Cell):
    def __init__(self, spec: ModelSpec, balance_factor: float = 0.0) -> None:
        super().__init__()
        self.spec = spec
        self.embedding = nn.Embedding(spec.vocab_size, spec.hidden_size, embedding_table=Normal(INIT_STD))
        dense = min(spec.first_k_dense_replace, spec.num_layers)
        self.layers = nn.CellList([DecoderLayer(spec, moe=i >= dense) for i in range(spec.num_layers)])
        self.final_norm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)
        self.head = linear(spec.hidden_size, spec.vocab_size)
        self.mtp = nn.CellList([MultiTokenPrediction(spec) for _ in range(spec.mtp_depth)])
        self.mtp_factor = spec.mtp_loss_factor
        self.balance_factor = balance_factor

    def routers(self) -> list[nn.Cell]:
        """Every MoE router, in the order of the rows of `Losses.loads`."""
        blocks = [layer for layer in self.layers] + [module.block for module in self.mtp]
        return [block.feed_forward.router for block in blocks if block.routed]

    def hidden_states(self, input_ids: Tensor, caches: list[LatentCache] | None = None
                      ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """The last layer's output [batch, seq, hidden] (before the final norm), loads, balance losses."""
        x = self.embedding(input_ids)
        seq = x.shape[1]
        seen = 0 if caches is None else caches[0].length
        mask = causal_mask(seq, seen + seq)
        loads: list[Tensor] = []
        balances: list[Tensor] = []
        for index, layer in enumerate(self.layers):
            x, load, balance = layer(x, mask, None if caches is None else caches[index])
            if load is not None:
                loads.append(load)
                balances.append(balance)
        return x, loads, balances

    def logits(self, input_ids: Tensor, caches: list[LatentCache] | None = None) -> Tensor:
        hidden, _, _ = self.hidden_states(input_ids, caches)
        return self.head(self.final_norm(hidden))

    def construct(self, input_ids: Tensor, labels: Tensor, loss_mask: Tensor) -> tuple[Tensor, ...]:
        """Training forward: (total, lm, mtp, balance, loads) — a tuple so graph mode can return it;
        `Losses(*outputs)` names them."""
        hidden, loads, balances = self.hidden_states(input_ids)
        lm = masked_cross_entropy(self.head(self.final_norm(hidden)), labels, loss_mask)
        mtp_losses = []
        mask = causal_mask(hidden.shape[1], hidden.shape[1])
        for depth, module in enumerate(self.mtp):
            # depth k (from 1) reads token t+k and predicts token t+k+1; the last k positions have none
            next_tokens = shift_left(labels, depth)
            hidden, normed, load, balance = module(hidden, self.embedding(next_tokens), mask)
            target_mask = shift_left(loss_mask, depth + 1)
            mtp_losses.append(masked_cross_entropy(self.head(normed), shift_left(labels, depth + 1),
                                                   target_mask))
            loads.append(load)
            balances.append(balance)
        mtp = sum(mtp_losses) / len(mtp_losses) if mtp_losses else ops.zeros((), lm.dtype)
        # summed over the MoE layers, as the report adds alpha * sum(f_i P_i) for each
        balance = sum(balances) if balances else ops.zeros((), lm.dtype)
        total = lm + self.mtp_factor * mtp + self.balance_factor * balance
        return total, lm, mtp, balance, ops.stack(loads) if loads else ops.zeros((0, 1), lm.dtype)


def shift_left(values: Tensor, by: int) -> Tensor:
    """values[:, t + by] at t, zero-filled at the end ([batch, seq])."""
    if by == 0:
        return values
    return ops.cat((values[:, by:], ops.zeros_like(values[:, :by])), axis=1)


def masked_cross_entropy(logits: Tensor, labels: Tensor, loss_mask: Tensor) -> Tensor:
    """Mean token cross-entropy over the positions where loss_mask is 1."""
    vocab = logits.shape[-1]
    per_token = ops.cross_entropy(logits.view(-1, vocab).astype("float32"), labels.view(-1),
                                  reduction="none")
    mask = loss_mask.view(-1).astype("float32")
    return (per_token * mask).sum() / ops.maximum(mask.sum(), 1.0)
