"""DeepSeekMoE (report section 2.1.2): shared experts plus top-k routed experts, sigmoid affinities,
group-limited selection, and auxiliary-loss-free balancing through a per-expert selection bias.

The bias `router.bias` only changes which experts are chosen, never the weights they are combined
with; it is not trained by gradients but nudged after every step from the observed load
(`update_bias`, called by the trainer with the load summed over all ranks).

Every routed expert runs on every token here and the combine weights zero out the unchosen ones: on a
CPU and at smoke-test sizes that is simpler and as fast as dispatching tokens, and it keeps shapes
static for graph mode. The arithmetic a token sees is the same as with dispatch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import Normal, initializer

from model.config import ModelSpec
from model.deepseek.layers import INIT_STD, SwiGLU

EXCLUDED = -1e9


class Router(nn.Cell):
    """Scores every routed expert for every token and picks the top-k."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.experts = spec.n_routed_experts
        self.top_k = spec.num_experts_per_tok
        self.groups = spec.n_group if spec.n_group > 1 else 1
        self.top_groups = spec.topk_group if self.groups > 1 else 1
        self.sigmoid = spec.scoring_func == "sigmoid"
        self.normalise = spec.norm_topk_prob
        self.scaling = spec.routed_scaling_factor
        if self.experts % self.groups:
            raise ValueError(f"n_routed_experts ({self.experts}) must divide into n_group ({self.groups})")
        if self.top_groups * (self.experts // self.groups) < self.top_k:
            per_group = self.experts // self.groups
            raise ValueError(f"topk_group ({self.top_groups}) groups of {per_group} experts cannot hold "
                             f"num_experts_per_tok ({self.top_k}) choices")
        shape = (self.experts, spec.hidden_size)
        self.weight = Parameter(initializer(Normal(INIT_STD), shape), name="weight")
        self.bias = Parameter(initializer("zeros", (self.experts,)), name="bias", requires_grad=False)

    def construct(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x: [tokens, hidden] -> (chosen [tokens, k], combine weights [tokens, k], scores [tokens, E])."""
        logits = ops.matmul(x, self.weight.T)
        scores = ops.sigmoid(logits) if self.sigmoid else ops.softmax(logits, axis=-1)
        choice = ops.stop_gradient(scores) + self.bias
        if self.groups > 1:
            choice = self._limit_to_groups(choice)
        _, chosen = ops.topk(choice, self.top_k)
        weights = ops.gather_elements(scores, 1, chosen)
        if self.normalise:
            weights = weights / (weights.sum(axis=-1, keepdims=True) + 1e-20)
        return chosen, weights * self.scaling, scores

    def _limit_to_groups(self, choice: Tensor) -> Tensor:
        """Keep the `topk_group` groups whose two best experts score highest; exclude the rest."""
        tokens = choice.shape[0]
        grouped = choice.view(tokens, self.groups, self.experts // self.groups)
        best = min(2, self.experts // self.groups)
        group_scores = ops.topk(grouped, best)[0].sum(axis=-1)
        _, kept = ops.topk(group_scores, self.top_groups)
        group_mask = ops.one_hot(kept, self.groups, Tensor(1.0), Tensor(0.0)).sum(axis=1)
        expert_mask = ops.broadcast_to(group_mask.view(tokens, self.groups, 1), grouped.shape)
        return ops.where(expert_mask.view(tokens, self.experts) > 0, choice, EXCLUDED)


class RoutedExperts(nn.Cell):
    """`n_routed_experts` SwiGLU experts, stacked so that all run in one batched matmul."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        shape_in = (spec.n_routed_experts, spec.hidden_size, spec.moe_intermediate_size)
        shape_out = (spec.n_routed_experts, spec.moe_intermediate_size, spec.hidden_size)
        self.gate = Parameter(initializer(Normal(INIT_STD), shape_in), name="gate")
        self.up = Parameter(initializer(Normal(INIT_STD), shape_in), name="up")
        self.down = Parameter(initializer(Normal(INIT_STD), shape_out), name="down")

    def construct(self, x: Tensor, combine: Tensor) -> Tensor:
        """x: [tokens, hidden]; combine: [tokens, experts] (zero where not chosen)."""
        hidden = ops.silu(ops.matmul(x, self.gate)) * ops.matmul(x, self.up)
        outputs = ops.matmul(hidden, self.down)
        return (outputs * combine.T.expand_dims(-1)).sum(axis=0)


class MoE(nn.Cell):
    """Shared experts + routed experts. Returns the output, the per-expert load (tokens routed to each
    expert in this batch) and the sequence-wise balance loss."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.router = Router(spec)
        self.experts = RoutedExperts(spec)
        self.shared = SwiGLU(spec.hidden_size, spec.n_shared_experts * spec.moe_intermediate_size) \
            if spec.n_shared_experts else None
        self.routed = spec.n_routed_experts
        self.top_k = spec.num_experts_per_tok

    def construct(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        batch, seq, hidden = x.shape
        tokens = x.view(batch * seq, hidden)
        chosen, weights, scores = self.router(tokens)
        picked = ops.one_hot(chosen, self.routed, Tensor(1.0), Tensor(0.0))
        combine = (picked * weights.expand_dims(-1)).sum(axis=1)
        out = self.experts(tokens, combine)
        if self.shared is not None:
            out = out + self.shared(tokens)
        selected = picked.sum(axis=1)
        load = ops.stop_gradient(selected.sum(axis=0))
        balance = self._sequence_balance(selected.view(batch, seq, -1), scores.view(batch, seq, -1))
        return out.view(batch, seq, hidden), load, balance

    def _sequence_balance(self, selected: Tensor, scores: Tensor) -> Tensor:
        """L_bal = sum_i f_i P_i per sequence (report eq. 17-20), averaged over the batch; the trainer
        multiplies it by the configured factor."""
        seq = selected.shape[1]
        fraction = selected.sum(axis=1) * (self.routed / (self.top_k * seq))
        share = (scores / scores.sum(axis=-1, keepdims=True)).mean(axis=1)
        return (fraction * share).sum(axis=-1).mean()


def update_bias(router: Router, load: np.ndarray[Any, Any], rate: float) -> None:
    """b_i += rate * sign(mean load - load_i): under-loaded experts become likelier to be chosen."""
    step = rate * np.sign(load.mean() - load)
    # assign writes the parameter's own memory: a compiled (graph-mode) step reads that, while
    # set_data would swap in a new tensor the compiled graph never sees
    ops.assign(router.bias, Tensor((router.bias.asnumpy() + step).astype(np.float32)))
