"""Autoregressive generation with MLA's latent cache: the prompt once, then one token a step.

Greedy by default; sampling with temperature, top-k and top-p when asked, from a seeded generator so
that a run can be repeated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from mindspore import Tensor

from model.deepseek.attention import LatentCache
from model.deepseek.network import DeepseekV3


@dataclass(frozen=True)
class Sampling:
    greedy: bool = True
    temperature: float = 1.0
    top_k: int = 0
    """0: no top-k cut."""
    top_p: float = 1.0
    seed: int = 0


def generate(network: DeepseekV3, prompt: Sequence[int], *, max_new_tokens: int,
             stop_tokens: frozenset[int] = frozenset(), sampling: Sampling = Sampling(),
             on_token: Callable[[int], None] | None = None) -> list[int]:
    """The new token ids (without the prompt), stopping after a stop token or `max_new_tokens`;
    `on_token` hears each one as it is chosen (predict times the first)."""
    new: list[int] = []
    for token in stream(network, prompt, max_new_tokens=max_new_tokens, stop_tokens=stop_tokens,
                        sampling=sampling):
        new.append(token)
        if on_token is not None:
            on_token(token)
    return new


def stream(network: DeepseekV3, prompt: Sequence[int], *, max_new_tokens: int,
           stop_tokens: frozenset[int] = frozenset(), sampling: Sampling = Sampling()) -> Iterator[int]:
    """The new token ids one at a time, as `generate` chooses them: a server sends each as it comes and
    stops early by no longer asking (the caches go with the iterator)."""
    limit = network.spec.max_position_embeddings - len(prompt)
    if limit <= 0:
        raise ValueError(f"the prompt has {len(prompt)} tokens; the model sees at most "
                         f"max_position_embeddings = {network.spec.max_position_embeddings}")
    caches = [LatentCache() for _ in range(network.spec.num_layers)]
    rng = np.random.default_rng(sampling.seed)
    step_input = list(prompt)
    for _ in range(min(max_new_tokens, limit)):
        logits = network.logits(Tensor(np.array([step_input], np.int32)), caches)
        token = choose(logits[0, -1].asnumpy(), sampling, rng)
        yield token
        if token in stop_tokens:
            return
        step_input = [token]


def choose(logits: np.ndarray[Any, Any], sampling: Sampling, rng: np.random.Generator) -> int:
    if sampling.greedy:
        return int(np.argmax(logits))
    scaled = logits.astype(np.float64) / max(sampling.temperature, 1e-6)
    if 0 < sampling.top_k < len(scaled):
        scaled[scaled < np.sort(scaled)[-sampling.top_k]] = -np.inf
    probabilities = np.exp(scaled - scaled.max())
    probabilities /= probabilities.sum()
    if sampling.top_p < 1.0:
        order = np.argsort(-probabilities)
        keep = np.cumsum(probabilities[order]) - probabilities[order] < sampling.top_p
        cut = np.zeros_like(probabilities)
        cut[order[keep]] = probabilities[order[keep]]
        probabilities = cut / cut.sum()
    return int(rng.choice(len(probabilities), p=probabilities))
