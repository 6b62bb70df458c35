"""The MindSpore side of `model.predict`: a trained network loaded from a checkpoint, generating."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mindspore as ms

from model.config import JobSpec
from model.deepseek import checkpoint
from model.deepseek.generate import Sampling, generate
from model.deepseek.network import DeepseekV3
from model.deepseek.ranks import start_communication


class Predictor:
    def __init__(self, job: JobSpec, source: Path | None, *, prefix: str, seed: int = 0) -> None:
        """`source` None: freshly initialised weights (from `seed`), for a server's smoke test."""
        ms.set_context(mode=ms.PYNATIVE_MODE)  # the cache grows a token a step: no static shapes
        ms.set_device("CPU")
        ms.set_seed(seed)
        self.rank = start_communication().rank
        self.network = DeepseekV3(job.model)
        self.network.set_train(False)
        if source is not None:
            checkpoint.load(resolve(source, prefix), self.network)

    def continue_tokens(self, prompt: list[int], *, max_new_tokens: int, stop_tokens: frozenset[int],
                        sampling: Sampling, on_token: Callable[[int], None] | None = None) -> list[int]:
        return generate(self.network, prompt, max_new_tokens=max_new_tokens, stop_tokens=stop_tokens,
                        sampling=sampling, on_token=on_token)


def resolve(source: Path, prefix: str) -> Path:
    """A checkpoint file as given; a directory: the newest of rank 0 (data-parallel ranks are identical)."""
    if not source.is_dir():
        return source
    for directory in (source / "rank_0", source):
        saved = checkpoint.saved_checkpoints(directory, prefix, 0)
        if saved:
            return saved[-1].path
    raise FileNotFoundError(f"no {prefix}_rank_0-*.ckpt under {source} or {source / 'rank_0'}")
