"""Checkpoints as MindFormers lays them out:
`<output_dir>/checkpoint/rank_<r>/<prefix>_rank_<r>-<epoch>_<step>.ckpt`.

A checkpoint holds every network parameter (the routers' selection biases included: they are state,
not gradients' business) and, for resuming, the optimizer's moments and step counter, plus the epoch
and global step it was taken at. Files are written under a temporary name and renamed, so a kill
mid-save never leaves a truncated checkpoint where `latest` would find it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import mindspore as ms
from mindspore import nn

SCHEDULE_PARAMETER = "learning_rate"
"""The optimizer's whole lr schedule: run-specific, not state."""

_NAME = re.compile(r"_rank_(?P<rank>\d+)-(?P<epoch>\d+)_(?P<step>\d+)\.ckpt$")


@dataclass(frozen=True)
class Saved:
    path: Path
    epoch: int
    step: int


def rank_directory(output_dir: str, rank: int) -> Path:
    return Path(output_dir) / "checkpoint" / f"rank_{rank}"


def save(network: nn.Cell, optimizer: nn.Optimizer | None, *, directory: Path, prefix: str, rank: int,
         epoch: int, step: int, keep: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{prefix}_rank_{rank}-{epoch}_{step}.ckpt"
    state = dict(network.parameters_dict())
    if optimizer is not None:
        state.update((name, value) for name, value in optimizer.parameters_dict().items()
                     if name != SCHEDULE_PARAMETER)
    # save_checkpoint appends ".ckpt" to a name without it; the leading dot keeps `saved_checkpoints` off it
    partial = path.with_name(f".{path.stem}.partial-{os.getpid()}.ckpt")
    ms.save_checkpoint([{"name": name, "data": value} for name, value in state.items()], str(partial),
                       append_dict={"epoch_num": epoch, "step_num": step})
    os.replace(partial, path)
    _prune(directory, prefix, rank, keep)
    return path


def _prune(directory: Path, prefix: str, rank: int, keep: int) -> None:
    for old in saved_checkpoints(directory, prefix, rank)[:-keep]:
        old.path.unlink(missing_ok=True)


def saved_checkpoints(directory: Path, prefix: str, rank: int) -> list[Saved]:
    """This rank's checkpoints, oldest first."""
    found = []
    for path in directory.glob(f"{prefix}_rank_{rank}-*.ckpt"):
        match = _NAME.search(path.name)
        if match is not None:
            found.append(Saved(path, int(match["epoch"]), int(match["step"])))
    return sorted(found, key=lambda saved: saved.step)


def load(path: Path, network: nn.Cell, optimizer: nn.Optimizer | None = None) -> Saved:
    """Load a checkpoint into the network (and the optimizer when resuming); the step it was taken at."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    state = ms.load_checkpoint(str(path))
    missing, _ = ms.load_param_into_net(network, state, strict_load=True)
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {len(missing)} parameter(s) of this network, e.g. "
                         f"{missing[0]} (was it saved from another config?)")
    if optimizer is not None:
        ms.load_param_into_net(optimizer, {k: v for k, v in state.items() if k != SCHEDULE_PARAMETER})
    epoch = int(state["epoch_num"].asnumpy()) if "epoch_num" in state else 0
    step = int(state["step_num"].asnumpy()) if "step_num" in state else 0
    return Saved(path, epoch, step)
