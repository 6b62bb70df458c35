"""The MindSpore DeepSeek-V3: MLA shapes, causality and cache; RoPE only on the rope part; MTP's loss;
parameter counts equal to model/estimate.py's. Runs in PyNative mode on the CPU."""

import dataclasses

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from model.deepseek.attention import LatentCache, MultiHeadLatentAttention, causal_mask
from model.deepseek.network import DeepseekV3
from model.estimate import count_params
from tests.deepseek_specs import OTHER, SMALL


@pytest.fixture(autouse=True, scope="module")
def pynative():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_device("CPU")
    ms.set_seed(7)


def tokens(batch: int, seq: int, vocab: int, seed: int = 0):
    return np.random.default_rng(seed).integers(0, vocab, (batch, seq)).astype(np.int32)


def run_attention(attention: MultiHeadLatentAttention, x):
    seq = x.shape[1]
    return attention(Tensor(x), causal_mask(seq, seq)).asnumpy()


def test_attention_keeps_the_shape_and_never_looks_ahead():
    attention = MultiHeadLatentAttention(SMALL)
    x = np.random.default_rng(1).standard_normal((2, 10, SMALL.hidden_size)).astype(np.float32)
    before = run_attention(attention, x)
    assert before.shape == x.shape
    changed = x.copy()
    changed[:, 6] += 1.0
    after = run_attention(attention, changed)
    np.testing.assert_array_equal(before[:, :6], after[:, :6])
    assert not np.allclose(before[:, 6:], after[:, 6:])


def test_the_whole_network_is_causal():
    network = DeepseekV3(SMALL)
    ids = tokens(1, 12, SMALL.vocab_size)
    before = network.logits(Tensor(ids)).asnumpy()
    ids[0, 8] = (ids[0, 8] + 1) % SMALL.vocab_size
    after = network.logits(Tensor(ids)).asnumpy()
    np.testing.assert_allclose(before[:, :8], after[:, :8], rtol=0, atol=1e-6)
    assert not np.allclose(before[:, 8], after[:, 8])


def test_decoding_with_the_latent_cache_gives_the_full_forward_pass():
    network = DeepseekV3(SMALL)
    ids = tokens(1, 9, SMALL.vocab_size, seed=3)
    full = network.logits(Tensor(ids)).asnumpy()
    caches = [LatentCache() for _ in range(SMALL.num_layers)]
    prefix = network.logits(Tensor(ids[:, :5]), caches).asnumpy()
    steps = [network.logits(Tensor(ids[:, i:i + 1]), caches).asnumpy() for i in range(5, 9)]
    incremental = np.concatenate([prefix, *steps], axis=1)
    np.testing.assert_allclose(incremental, full, rtol=1e-4, atol=1e-4)
    assert caches[0].length == 9
    # what is cached per token is MLA's compressed latent and the one shared rope key
    latent, rope_key = caches[0].latent, caches[0].rope_key
    assert latent is not None and latent.shape == (1, 9, SMALL.kv_lora_rank)
    assert rope_key is not None and rope_key.shape == (1, 9, 1, SMALL.qk_rope_head_dim)


def zero_rope_projections(attention: MultiHeadLatentAttention) -> None:
    """Zero the weights that produce the rope parts of queries and keys (nope parts untouched)."""
    q_up = attention.q_up.weight.asnumpy().reshape(SMALL.num_heads, -1, SMALL.q_lora_rank)
    q_up[:, SMALL.qk_nope_head_dim:, :] = 0
    attention.q_up.weight.set_data(Tensor(q_up.reshape(-1, SMALL.q_lora_rank)))
    kv_down = attention.kv_down.weight.asnumpy()
    kv_down[SMALL.kv_lora_rank:, :] = 0
    attention.kv_down.weight.set_data(Tensor(kv_down))


def scramble_rotary(attention: MultiHeadLatentAttention) -> None:
    rng = np.random.default_rng(5)
    attention.rotary.cos = Tensor(rng.standard_normal(attention.rotary.cos.shape).astype(np.float32))
    attention.rotary.sin = Tensor(rng.standard_normal(attention.rotary.sin.shape).astype(np.float32))


def test_rope_acts_on_the_rope_part_only():
    x = np.random.default_rng(2).standard_normal((1, 7, SMALL.hidden_size)).astype(np.float32)
    attention = MultiHeadLatentAttention(SMALL)
    with_rope = run_attention(attention, x)
    scramble_rotary(attention)
    assert not np.allclose(with_rope, run_attention(attention, x))  # positions do matter...
    zero_rope_projections(attention)
    no_rope = run_attention(attention, x)
    scramble_rotary(attention)
    np.testing.assert_array_equal(no_rope, run_attention(attention, x))  # ...only through the rope part


@pytest.mark.parametrize("spec", [SMALL, OTHER], ids=["small", "other"])
def test_parameter_count_equals_the_estimate(spec):
    network = DeepseekV3(spec)
    counted = sum(int(np.prod(p.shape)) for p in network.get_parameters())
    estimate = count_params(spec)
    assert counted == estimate.total_with_mtp
    without_mtp = DeepseekV3(dataclasses.replace(spec, mtp_depth=0))
    assert sum(int(np.prod(p.shape)) for p in without_mtp.get_parameters()) == estimate.total


def training_losses(network: DeepseekV3, ids) -> list[float]:
    labels = np.roll(ids, -1, axis=1)
    mask = np.ones(ids.shape, np.float32)
    outputs = network(Tensor(ids), Tensor(labels), Tensor(mask))
    return [float(o.asnumpy()) for o in outputs[:4]]


def test_mtp_adds_its_loss_times_the_factor_and_changes_nothing_else():
    with_mtp = DeepseekV3(SMALL, balance_factor=0.01)
    without = DeepseekV3(dataclasses.replace(SMALL, mtp_depth=0), balance_factor=0.01)
    shared = {name: p for name, p in with_mtp.parameters_dict().items() if not name.startswith("mtp.")}
    missing, unexpected = ms.load_param_into_net(without, shared, strict_load=True)
    assert not missing and not unexpected
    ids = tokens(2, SMALL.seq_length, SMALL.vocab_size, seed=4)
    total, lm, mtp, balance = training_losses(with_mtp, ids)
    assert mtp > 0
    assert total == pytest.approx(lm + SMALL.mtp_loss_factor * mtp + 0.01 * balance, rel=1e-5)
    total_0, lm_0, mtp_0, balance_0 = training_losses(without, ids)
    assert lm_0 == pytest.approx(lm, rel=1e-6)
    assert mtp_0 == 0.0
    assert total_0 == pytest.approx(lm_0 + 0.01 * balance_0, rel=1e-5)
