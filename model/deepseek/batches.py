"""Training batches from token sequences, sharded across data-parallel ranks.

Each sample is one stored sequence of seq_length + 1 tokens (what `data convert` writes in stitch
mode): inputs are its first seq_length tokens, labels the last seq_length. Every rank gets the same
number of batches per epoch (the remainder is dropped, as `drop_remainder` does), because a rank with
one batch more would wait forever in the all-reduce.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

Array = np.ndarray[Any, Any]


class TokenSequences(Protocol):
    """What `model.data.indexed.IndexedDataset` offers."""

    @property
    def sequence_count(self) -> int: ...

    def tokens(self, index: int) -> Sequence[int]: ...


@dataclass(frozen=True)
class Batch:
    input_ids: Array
    labels: Array
    loss_mask: Array


@dataclass(frozen=True)
class Sharding:
    rank: int = 0
    world: int = 1


def steps_per_epoch(samples: int, batch_size: int, sharding: Sharding) -> int:
    return samples // (batch_size * sharding.world)


def sample_order(sequences: int, samples: int, seed: int) -> Array:
    """`samples` sequence indices: whole seeded permutations of the dataset, as many as it takes."""
    rng = np.random.default_rng(seed)
    passes = -(-samples // sequences)
    order: Array = np.concatenate([rng.permutation(sequences) for _ in range(passes)])
    return order[:samples]


def epoch_batches(data: TokenSequences, *, seq_length: int, batch_size: int, sharding: Sharding,
                  epoch: int, seed: int, samples: int | None = None, pad_id: int | None = None
                  ) -> Iterator[Batch]:
    """One epoch's batches for this rank: `samples` (default: the dataset once) in a seeded order shared
    by all ranks, of which rank r takes every world-th starting at r."""
    samples = samples or data.sequence_count
    order = sample_order(data.sequence_count, samples, seed + epoch)
    steps = steps_per_epoch(samples, batch_size, sharding)
    mine = order[: steps * batch_size * sharding.world][sharding.rank::sharding.world]
    for step in range(steps):
        chosen = mine[step * batch_size:(step + 1) * batch_size]
        stacked = np.stack([_window(data.tokens(int(i)), seq_length) for i in chosen])
        labels = stacked[:, 1:]
        mask = np.ones(labels.shape, np.float32) if pad_id is None else (labels != pad_id).astype(np.float32)
        yield Batch(stacked[:, :-1].astype(np.int32), labels.astype(np.int32), mask)


def _window(tokens: Sequence[int], seq_length: int) -> Array:
    row = np.asarray(tokens[: seq_length + 1], dtype=np.int64)
    if len(row) < seq_length + 1:
        raise ValueError(f"a stored sequence has {len(row)} tokens; seq_length {seq_length} needs "
                         f"{seq_length + 1} (convert the dataset with --seq-length {seq_length})")
    return row
