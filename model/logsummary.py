"""What a log (or several) says in a few lines: steps, loss, step time, throughput, the errors found.

Built from `model.logevents` events, so `logs --file PATH --summary` reads a copied `worker_N.log`
of any MindFormers version the way a followed job is read. Pure: no I/O, never raises.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from model.logevents import LogEvent

MAX_ERRORS = 50
"""Errors kept in a summary (their count is kept whole): a crash loop must not make it huge."""
FIRST_LINES = 5


@dataclass(frozen=True)
class LossPoint:
    step: int
    loss: float


@dataclass(frozen=True)
class FoundError:
    """One error event as a summary lists it."""

    kind: str
    line: int
    message: str
    first_lines: tuple[str, ...]


@dataclass(frozen=True)
class LogSummary:
    steps: int
    """Distinct steps with a loss line."""
    first_step: int | None
    last_step: int | None
    total_steps: int | None
    """The run's planned steps, as the last loss line says."""
    first_loss: LossPoint | None
    last_loss: LossPoint | None
    min_loss: LossPoint | None
    """Losses that are N/A (non-last pipeline stage) or NaN/Inf are left out of these three."""
    mean_step_ms: float | None
    """Mean `per_step_time`, without the first step when there are others: it includes compilation."""
    steps_per_second: float | None
    throughput_tflops: float | None
    """Mean `train_throughput_per_npu` / `throughput`, where the lines carry it."""
    warnings: int
    error_count: int
    errors: tuple[FoundError, ...]
    """The first MAX_ERRORS errors, in the order seen."""

    def as_json(self) -> dict[str, object]:
        """The summary as plain JSON values (for `logs --summary --json`)."""
        def point(value: LossPoint | None) -> dict[str, object] | None:
            return None if value is None else {"step": value.step, "loss": value.loss}
        return {
            "steps": self.steps, "first_step": self.first_step, "last_step": self.last_step,
            "total_steps": self.total_steps, "first_loss": point(self.first_loss),
            "last_loss": point(self.last_loss), "min_loss": point(self.min_loss),
            "mean_step_ms": self.mean_step_ms, "steps_per_second": self.steps_per_second,
            "throughput_tflops": self.throughput_tflops, "warnings": self.warnings,
            "error_count": self.error_count,
            "errors": [{"kind": e.kind, "line": e.line, "message": e.message,
                        "first_lines": list(e.first_lines)} for e in self.errors],
        }


def summarize(events: Iterable[LogEvent]) -> LogSummary:
    """The summary of events in the order they were parsed (one file, or several one after another)."""
    losses: list[LogEvent] = []
    errors: list[FoundError] = []
    warnings = error_count = 0
    for event in events:
        if event.loss is not None:
            losses.append(event)
        if event.severity == "error":
            error_count += 1
            if len(errors) < MAX_ERRORS:
                errors.append(FoundError(event.kind, event.line, event.message, event.lines[:FIRST_LINES]))
        elif event.severity == "warning":
            warnings += 1
    return _with_losses(losses, warnings=warnings, error_count=error_count, errors=tuple(errors))


def _with_losses(events: list[LogEvent], *, warnings: int, error_count: int,
                 errors: tuple[FoundError, ...]) -> LogSummary:
    records = [e.loss for e in events if e.loss is not None]
    points = [LossPoint(r.step, r.loss) for r in records if r.loss is not None and math.isfinite(r.loss)]
    times = [r.per_step_ms for r in records if r.per_step_ms is not None]
    times = times[1:] if len(times) > 1 else times
    mean_ms = sum(times) / len(times) if times else None
    throughputs = [r.throughput_tflops for r in records if r.throughput_tflops is not None]
    return LogSummary(
        steps=len({r.step for r in records}),
        first_step=records[0].step if records else None, last_step=records[-1].step if records else None,
        total_steps=records[-1].total_steps if records else None,
        first_loss=points[0] if points else None, last_loss=points[-1] if points else None,
        min_loss=min(points, key=lambda p: p.loss) if points else None,
        mean_step_ms=mean_ms, steps_per_second=1000 / mean_ms if mean_ms else None,
        throughput_tflops=sum(throughputs) / len(throughputs) if throughputs else None,
        warnings=warnings, error_count=error_count, errors=errors)


def summary_lines(summary: LogSummary) -> list[str]:
    """The summary as plain text lines (no markup), the errors last with their first lines indented."""
    lines: list[str] = []
    if summary.steps:
        total = f" of {summary.total_steps}" if summary.total_steps else ""
        lines.append(f"steps: {summary.steps} (step {summary.first_step} to {summary.last_step}{total})")
    else:
        lines.append("steps: none seen")
    if summary.first_loss and summary.last_loss and summary.min_loss:
        lines.append(f"loss: first {_point(summary.first_loss)}, last {_point(summary.last_loss)}, "
                     f"min {_point(summary.min_loss)}")
    if summary.mean_step_ms is not None:
        rate = f", {summary.steps_per_second:.3g} steps/s" if summary.steps_per_second else ""
        left_out = " (first step left out: it compiles)" if summary.steps > 1 else ""
        lines.append(f"step time: {summary.mean_step_ms:.0f} ms mean{left_out}{rate}")
    if summary.throughput_tflops is not None:
        lines.append(f"throughput: {summary.throughput_tflops:.3f} TFLOPS per NPU (mean)")
    lines.append(f"warnings: {summary.warnings}")
    shown = f" (first {len(summary.errors)} shown)" if len(summary.errors) < summary.error_count else ""
    lines.append(f"errors: {summary.error_count}{shown}")
    for error in summary.errors:
        lines.append(f"  line {error.line}: {error.kind}: {error.message}")
        lines += [f"    {text}" for text in error.first_lines]
    return lines


def _point(point: LossPoint) -> str:
    return f"{point.loss:.6g} (step {point.step})"
