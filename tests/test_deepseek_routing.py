"""DeepSeekMoE routing: group-limited top-k, a selection bias that never weights, and bias updates that
balance a skewed load."""

import dataclasses
import itertools
from typing import Any

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from model.deepseek.moe import Router, update_bias
from tests.deepseek_specs import SMALL

SPEC = dataclasses.replace(SMALL, n_routed_experts=16, n_group=4, topk_group=2, num_experts_per_tok=4)


@pytest.fixture(autouse=True, scope="module")
def pynative():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_device("CPU")
    ms.set_seed(11)


def sigmoid(x: Any) -> Any:
    return 1 / (1 + np.exp(-x))


def route(router: Router, x):
    chosen, weights, _ = router(Tensor(x))
    return chosen.asnumpy(), weights.asnumpy()


def hidden(tokens: int, seed: int = 0):
    return np.random.default_rng(seed).standard_normal((tokens, SPEC.hidden_size)).astype(np.float32)


def test_choices_stay_inside_the_best_groups():
    router = Router(SPEC)
    router.bias.set_data(Tensor(np.random.default_rng(3).normal(0, 0.05, 16).astype(np.float32)))
    x = hidden(64)
    chosen, _ = route(router, x)
    selection = sigmoid(x @ router.weight.asnumpy().T) + router.bias.asnumpy()
    per_group = 16 // 4
    for token, experts in enumerate(chosen):
        groups = selection[token].reshape(4, per_group)
        best_groups = set(np.argsort(-np.sort(groups, axis=1)[:, -2:].sum(axis=1))[:2])
        assert {int(e) // per_group for e in experts} <= best_groups
        allowed = [e for g in sorted(best_groups) for e in range(g * per_group, (g + 1) * per_group)]
        expected = sorted(allowed, key=lambda e: -selection[token, e])[:4]
        assert sorted(experts.tolist()) == sorted(expected)


def test_the_bias_changes_the_choice_but_not_the_weights():
    router = Router(SPEC)
    x = hidden(32, seed=1)
    before, _ = route(router, x)
    favoured = 5
    bias = np.zeros(16, np.float32)
    bias[favoured] = 10.0
    router.bias.set_data(Tensor(bias))
    chosen, weights = route(router, x)
    assert (chosen == favoured).any(axis=1).all() and not (before == favoured).any(axis=1).all()
    scores = sigmoid(x @ router.weight.asnumpy().T)
    picked = np.take_along_axis(scores, chosen, axis=1)
    expected = picked / picked.sum(axis=1, keepdims=True) * SPEC.routed_scaling_factor
    np.testing.assert_allclose(weights, expected, rtol=1e-5)


def imbalance(chosen) -> float:
    load = np.bincount(chosen.ravel(), minlength=16)
    return float(load.max() / load.mean())


def test_bias_updates_balance_a_skewed_load_step_over_step():
    router = Router(SPEC)
    lean = np.full(SPEC.hidden_size, 0.05, np.float32)
    weight = router.weight.asnumpy()
    weight[:4] += lean  # tokens sharing a direction all lean to experts 0-3
    router.weight.set_data(Tensor(weight))
    x = hidden(256, seed=2) + lean * 10
    history = []
    for _ in range(50):
        chosen, _ = route(router, x)
        history.append(imbalance(chosen))
        update_bias(router, np.bincount(chosen.ravel(), minlength=16).astype(np.float32), rate=0.01)
    windows = [float(np.mean(history[i:i + 10])) for i in range(0, 50, 10)]
    assert windows[0] > 3.0, windows  # skewed to start with: four experts take most tokens
    assert all(later <= earlier for earlier, later in itertools.pairwise(windows)), windows
    assert windows[-1] < 1.5, windows
