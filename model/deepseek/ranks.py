"""Joining msrun's cluster. msrun starts a scheduler that waits for every worker to register, so each
rank must call `init()` when msrun started it (it sets MS_ROLE), even one that never communicates."""

from __future__ import annotations

import os

import mindspore as ms
from mindspore.communication import get_group_size, get_rank, init

from model.deepseek.batches import Sharding


def start_communication() -> Sharding:
    """This process's rank and the world size; a process msrun did not start is rank 0 of 1."""
    if "MS_ROLE" not in os.environ:
        return Sharding()
    init()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True)
    return Sharding(rank=get_rank(), world=get_group_size())
