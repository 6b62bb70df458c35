"""What a log (or several) says in a few lines: steps, loss, step time, throughput, the errors found.

Built from `model.logevents` events, so `logs --file PATH --summary` reads a copied `worker_N.log`
of any MindFormers version the way a followed job is read. Pure: no I/O, never raises. A
`SummaryBuilder` takes the events of several files as they are parsed, a part at a time, keeping
only the numbers (never the events): each file's first step time is left out of the mean (each
run compiles in its first step), and each error names its file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from model.logevents import LogEvent
from model.logformat import LossRecord

MAX_ERRORS = 50
"""Errors kept in a summary (their count is kept whole): a crash loop must not make it huge."""
FIRST_LINES = 5
STALLED_FACTOR = 10.0
"""A running rank silent for this many of its step times (and at least STALLED_MIN seconds) is stalled:
hung (SIGSTOP, a dead peer's collective, a stuck device) rather than slow."""
STALLED_MIN = 60.0


def stalled_after(per_step_ms: float | None) -> float:
    """Seconds of silence after which a running rank with this mean step time counts as stalled."""
    return max(STALLED_MIN, STALLED_FACTOR * (per_step_ms or 0.0) / 1000)


def stalled(silent_s: float, per_step_ms: float | None) -> bool:
    """Whether a running rank whose last loss line is `silent_s` old has stalled."""
    return silent_s > stalled_after(per_step_ms)


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
    file: str | None = None


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
    """Mean `per_step_time`, without each file's first step when it has others: it includes compilation."""
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
            "errors": [{"file": e.file, "kind": e.kind, "line": e.line, "message": e.message,
                        "first_lines": list(e.first_lines)} for e in self.errors],
        }


def summarize(events: Iterable[LogEvent]) -> LogSummary:
    """The summary of one file's events, in the order they were parsed."""
    builder = SummaryBuilder()
    builder.add(events)
    return builder.summary()


class _StepTimes:
    """One file's per_step_time values, as counts: the first one is kept apart."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.rest_sum = 0.0
        self.rest_count = 0

    def add(self, value: float) -> None:
        if self.first is None:
            self.first = value
        else:
            self.rest_sum += value
            self.rest_count += 1


class SummaryBuilder:
    """Events in, file by file and part by part; `summary()` at any time."""

    def __init__(self) -> None:
        self._times: dict[str | None, _StepTimes] = {}
        self._steps: set[int] = set()
        self._first_step: int | None = None
        self._last_step: int | None = None
        self._total_steps: int | None = None
        self._first: LossPoint | None = None
        self._last: LossPoint | None = None
        self._min: LossPoint | None = None
        self._throughput_sum = 0.0
        self._throughput_count = 0
        self._warnings = 0
        self._error_count = 0
        self._errors: list[FoundError] = []

    def add(self, events: Iterable[LogEvent], file: str | None = None) -> None:
        for event in events:
            if event.loss is not None:
                self._loss(event.loss, file)
            if event.severity == "error":
                self._error_count += 1
                if len(self._errors) < MAX_ERRORS:
                    self._errors.append(FoundError(event.kind, event.line, event.message,
                                                   event.lines[:FIRST_LINES], file))
            elif event.severity == "warning":
                self._warnings += 1

    def _loss(self, record: LossRecord, file: str | None) -> None:
        self._steps.add(record.step)
        self._first_step = record.step if self._first_step is None else self._first_step
        self._last_step, self._total_steps = record.step, record.total_steps
        if record.loss is not None and math.isfinite(record.loss):
            point = LossPoint(record.step, record.loss)
            self._first = self._first or point
            self._last = point
            self._min = point if self._min is None or point.loss < self._min.loss else self._min
        if record.per_step_ms is not None:
            self._times.setdefault(file, _StepTimes()).add(record.per_step_ms)
        if record.throughput_tflops is not None:
            self._throughput_sum += record.throughput_tflops
            self._throughput_count += 1

    def _mean_step_ms(self) -> float | None:
        total = sum(t.rest_sum if t.rest_count else (t.first or 0.0) for t in self._times.values())
        count = sum(t.rest_count or 1 for t in self._times.values())
        return total / count if count else None

    def summary(self) -> LogSummary:
        mean_ms = self._mean_step_ms()
        return LogSummary(
            steps=len(self._steps), first_step=self._first_step, last_step=self._last_step,
            total_steps=self._total_steps, first_loss=self._first, last_loss=self._last, min_loss=self._min,
            mean_step_ms=mean_ms, steps_per_second=1000 / mean_ms if mean_ms else None,
            throughput_tflops=(self._throughput_sum / self._throughput_count if self._throughput_count
                               else None),
            warnings=self._warnings, error_count=self._error_count, errors=tuple(self._errors))


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
        where = f"{error.file}:{error.line}" if error.file else f"line {error.line}"
        lines.append(f"  {where}: {error.kind}: {error.message}")
        lines += [f"    {text}" for text in error.first_lines]
    return lines


def _point(point: LossPoint) -> str:
    return f"{point.loss:.6g} (step {point.step})"
