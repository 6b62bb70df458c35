"""MindFormers' training log lines: written by our ranks (`model.train`), parsed by the console.

One module does both so that what we write is, by construction, what we read. The formats are
MindFormers' own (reference: ascend-formats.md section 4): MFLossMonitor's graph-mode line

    { Epoch:[  1/  2], step:[    3/   19], loss: 9.673000, per_step_time: 1754ms, lr: 9.98e-06, ...

followed by a progress line (`  12.5% |███   | 3.21 samples/s/p  0:01:12 }`), and the PyNative
trainer's `{ step:[    1/   10], loss:  11.813965, per_step_time:  13570ms, ... }`. The parser accepts
every version the reference lists (r1.0 to 2.x, `loss:[cur/mean]`, a missing colon after global_norm,
`N/A` on non-last pipeline stages) and never raises on a line it does not know: it returns None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

EXTRA_LOSSES = ("lm_loss", "load_balancing_loss", "mtp_loss", "indexer_loss")
"""Loss parts MindFormers 2.x prints after `loss`, in its order."""

PROGRESS_BAR_WIDTH = 50


@dataclass(frozen=True)
class LossRecord:
    """One step's loss line. `step` is the global step (counted from 1 across epochs)."""

    step: int
    total_steps: int | None
    loss: float | None
    """None where the line says N/A (a rank that is not on the last pipeline stage)."""
    epoch: int | None = None
    epochs: int | None = None
    step_in_epoch: int | None = None
    steps_per_epoch: int | None = None
    per_step_ms: int | None = None
    lr: float | None = None
    global_norm: float | None = None
    throughput_tflops: float | None = None
    """`train_throughput_per_npu` (graph) or `throughput` (PyNative), in TFLOPS."""
    parts: Mapping[str, float] = field(default_factory=dict)
    """lm_loss, load_balancing_loss, mtp_loss... where the line has them."""


def format_loss_line(record: LossRecord) -> str:
    """The MFLossMonitor message (MindFormers r1.7 to 2.x, sink mode), without the logger's prefix."""
    if record.epoch is None or record.epochs is None or record.step_in_epoch is None \
            or record.steps_per_epoch is None:
        raise ValueError("a graph-mode loss line needs epoch, epochs, step_in_epoch and steps_per_epoch")
    parts = [f"{{ Epoch:[{record.epoch:3d}/{record.epochs:3d}], "
             f"step:[{record.step_in_epoch:5d}/{record.steps_per_epoch:5d}], "
             f"loss: {_loss_text(record.loss)}, "]
    parts += [f"{name}: {record.parts[name]:5.6f}, " for name in EXTRA_LOSSES if name in record.parts]
    parts.append(f"per_step_time: {record.per_step_ms or 0}ms, ")
    if record.lr is not None:
        parts.append(f"lr: {_lr_text(record.lr)}, ")
    norm = "None" if record.global_norm is None else f"[{record.global_norm:.6f}]"
    parts.append(f"overflow cond: False, loss_scale: 1.0, global_norm: {norm}")
    if record.throughput_tflops is not None:
        parts.append(f", train_throughput_per_npu: {record.throughput_tflops:.3f}T")
    return "".join(parts)


def _lr_text(lr: float) -> str:
    """As numpy prints a float32 schedule value: `0.0`, `0.00015`, `1e-05`, `9.981987e-06`."""
    return "0.0" if lr == 0 else f"{lr:.7g}"


def _loss_text(loss: float | None) -> str:
    return "N/A" if loss is None else f"{loss:5.6f}"


def format_progress_line(fraction: float, samples_per_second: float, remaining: timedelta) -> str:
    """The line MFLossMonitor prints after each loss line, closing its `{`."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = int(fraction * PROGRESS_BAR_WIDTH)
    bar = "█" * filled + " " * (PROGRESS_BAR_WIDTH - filled)
    seconds = timedelta(seconds=round(remaining.total_seconds()))
    return f"  {fraction * 100:4.1f}% |{bar}| {samples_per_second:.5f} samples/s/p  {seconds} }}"


_NUMBER = r"[-+\w.]+"
_INT = r"\d{1,18}"
"""At most 18 digits: int() refuses a 5,000-digit run, and a line must never make the parser raise."""
_GRAPH = re.compile(
    rf"\{{ Epoch:\[\s*(?P<epoch>{_INT})/\s*(?P<epochs>{_INT})\], "
    rf"step:\[\s*(?P<step>{_INT})/\s*(?P<steps>{_INT})\], "
    rf"loss:\s*(?:\[(?P<loss_now>{_NUMBER})/(?P<loss_mean>{_NUMBER})\]|(?P<loss>{_NUMBER}|N/A)),(?P<rest>.*)")
_PYNATIVE = re.compile(
    rf"\{{ step:\[\s*(?P<step>{_INT})/\s*(?P<steps>{_INT})\],(?P<head>.*?)"
    rf"loss:\s*(?P<loss>{_NUMBER}|N/A)(?: \([^)]*\))?,(?P<rest>.*)")
_STEP_TIME = re.compile(rf"per_step_time:\s*({_INT})ms")
_LR = re.compile(r"\blr:\s*\[?([-+\w.]+)\]?")
_NORM = re.compile(r"(?:global_norm|grad_norm):?\s*\[?([-+\w. ]+?)\]?(?:,|$|\s*\})")
_THROUGHPUT = re.compile(r"(?:train_throughput_per_npu|throughput):\s*([\d.]+)T")
_PARTS = {name: re.compile(rf"\b{name}:\s*({_NUMBER})") for name in EXTRA_LOSSES}


def parse_loss_line(line: str) -> LossRecord | None:
    """The loss record in a worker-log line of any MindFormers version, or None if it holds none."""
    graph = _GRAPH.search(line)
    if graph is not None:
        return _graph_record(graph)
    pynative = _PYNATIVE.search(line)
    if pynative is not None:
        rest = pynative["rest"]
        return LossRecord(step=int(pynative["step"]), total_steps=int(pynative["steps"]),
                          loss=_number(pynative["loss"]), **_details(rest))
    return None


def _graph_record(match: re.Match[str]) -> LossRecord:
    epoch, epochs = int(match["epoch"]), int(match["epochs"])
    step, steps = int(match["step"]), int(match["steps"])
    loss = _number(match["loss"] if match["loss"] is not None else match["loss_now"])
    return LossRecord(step=(epoch - 1) * steps + step, total_steps=epochs * steps, loss=loss,
                      epoch=epoch, epochs=epochs, step_in_epoch=step, steps_per_epoch=steps,
                      **_details(match["rest"]))


def _details(rest: str) -> dict[str, Any]:
    """The fields after `loss`, found one by one: their order and punctuation drift between versions."""
    parts = {name: value for name, pattern in _PARTS.items()
             if (value := _number_in(pattern, rest)) is not None}
    return {"per_step_ms": _int_in(_STEP_TIME, rest), "lr": _number_in(_LR, rest),
            "global_norm": _number_in(_NORM, rest), "throughput_tflops": _number_in(_THROUGHPUT, rest),
            "parts": parts}


def _int_in(pattern: re.Pattern[str], text: str) -> int | None:
    found = pattern.search(text)
    return int(found[1]) if found else None


def _number_in(pattern: re.Pattern[str], text: str) -> float | None:
    found = pattern.search(text)
    return _number(found[1]) if found else None


def _number(text: str | None) -> float | None:
    """A printed number (`nan` stays NaN: a diverged run must show); odd renderings (`1 31049`, `None`,
    `N/A`) are None rather than a guess."""
    if text is None:
        return None
    try:
        return float(text.strip())
    except ValueError:
        return None
