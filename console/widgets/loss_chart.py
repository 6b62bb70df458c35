"""The loss chart: loss per step of one or more ranks, the loss's parts, or the step time, drawn with
textual-plotext from the store's metric records.

Each series keeps its newest points exact and folds older ones, two into one, so a long run costs a
bounded number of points however many steps it has. At 80 columns (or a short pane) the chart drops
its title and axis labels and says what it shows in the border instead.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from textual.app import RenderResult
from textual.binding import Binding, BindingType
from textual_plotext import PlotextPlot

from console.records import MetricRecord

PARTS = ("lm_loss", "mtp_loss", "load_balancing_loss")
"""The loss's parts, drawn when the records carry them (MindFormers MoE and MTP runs)."""
Metric = Literal["loss", "step_time", "throughput"]
METRICS: tuple[Metric, ...] = ("loss", "step_time", "throughput")
METRIC_TITLES: dict[Metric, str] = {"loss": "loss", "step_time": "step time (ms)", "throughput": "TFLOPS/NPU"}
COMPACT_WIDTH = 100
COMPACT_HEIGHT = 14


@dataclass(frozen=True)
class Point:
    step: float
    value: float


class Series:
    """Points in step order: the newest `recent` exact; older ones averaged in buckets of equal size,
    the bucket doubling (and the older points folded pairwise) whenever they grow past `older`, so at
    most recent + older + 1 points are held however long the run."""

    def __init__(self, *, recent: int = 500, older: int = 500) -> None:
        self._recent: deque[Point] = deque()
        self._older: list[Point] = []
        self._pending: list[Point] = []
        self._bucket = 1
        self._recent_max, self._older_max = recent, older
        self.last_step: float | None = None

    def add(self, step: float, value: float) -> bool:
        """Add a point; a step not after the last one (a replay) or a value that is not finite is
        not drawn (False)."""
        if (self.last_step is not None and step <= self.last_step) or not math.isfinite(value):
            return False
        self.last_step = step
        self._recent.append(Point(step, value))
        if len(self._recent) > self._recent_max:
            self._age(self._recent.popleft())
        return True

    def _age(self, point: Point) -> None:
        self._pending.append(point)
        if len(self._pending) < self._bucket:
            return
        self._older.append(_mean(self._pending))
        self._pending = []
        if len(self._older) > self._older_max:
            self._older = [_mean(pair) for pair in zip(self._older[0::2], self._older[1::2], strict=False)] \
                + self._older[len(self._older) // 2 * 2:]
            self._bucket *= 2

    @property
    def points(self) -> list[Point]:
        pending = [_mean(self._pending)] if self._pending else []
        return [*self._older, *pending, *self._recent]

    def __len__(self) -> int:
        return len(self._older) + bool(self._pending) + len(self._recent)


def _mean(points: Sequence[Point]) -> Point:
    return Point(sum(p.step for p in points) / len(points), sum(p.value for p in points) / len(points))


def record_values(record: MetricRecord) -> dict[tuple[Metric, str], float]:
    """What one metric record adds to which line: (metric, part) -> value; part "" is the total."""
    values: dict[tuple[Metric, str], float] = {}
    if record.loss is not None:
        values[("loss", "")] = record.loss
    parts = record.extra.get("parts")
    if isinstance(parts, Mapping):
        values.update({("loss", name): float(parts[name]) for name in PARTS if name in parts})
    if isinstance(record.extra.get("per_step_ms"), (int, float)):
        values[("step_time", "")] = float(record.extra["per_step_ms"])
    if isinstance(record.extra.get("throughput_tflops"), (int, float)):
        values[("throughput", "")] = float(record.extra["throughput_tflops"])
    return values


def rank_label(record: MetricRecord) -> str:
    return f"r{record.rank}"


class LossChart(PlotextPlot, can_focus=True):
    """Loss per step of each rank's series (rank label -> points); `m` switches to step time and
    throughput, `p` shows or hides the loss's parts."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("m", "cycle_metric", "Metric", tooltip="Loss, step time or throughput",
                id="loss-chart.metric"),
        Binding("p", "toggle_parts", "Parts", tooltip="The loss's parts (lm, MTP, balance)",
                id="loss-chart.parts"),
    ]
    DEFAULT_CSS = """
    LossChart { border: round $primary-muted; border-title-color: $text; border-subtitle-color: $text-muted; }
    LossChart:focus { border: round $primary; }
    LossChart.-empty { border-subtitle-color: $text-warning; }
    """

    def __init__(self, *, recent_points: int = 500, older_points: int = 500, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.metric: Metric = "loss"
        self.show_parts = True
        self._recent, self._older = recent_points, older_points
        self._series: dict[tuple[Metric, str, str], Series] = {}
        """(metric, rank label, part) -> its points."""
        self._dirty = True

    def on_mount(self) -> None:
        self._show_state()

    # --- data in -------------------------------------------------------------------------------------

    def set_series(self, records: Iterable[MetricRecord]) -> None:
        """Show exactly these records (e.g. the store's metrics of a job when its screen opens)."""
        self._series.clear()
        self.add_points(records)

    def add_points(self, records: Iterable[MetricRecord]) -> None:
        """Add newer records (steps already drawn for a rank are not drawn twice)."""
        ordered = sorted(records, key=lambda r: (r.rank, r.step))
        for record in ordered:
            label = rank_label(record)
            for (metric, part), value in record_values(record).items():
                key = (metric, label, part)
                series = self._series.get(key)
                if series is None:
                    series = self._series[key] = Series(recent=self._recent, older=self._older)
                series.add(record.step, value)
        self._changed()

    def series(self, metric: Metric = "loss", part: str = "") -> dict[str, list[Point]]:
        """Rank label -> points of one line kind, in rank order."""
        found = {label: s.points for (m, label, p), s in self._series.items() if m == metric and p == part}
        return dict(sorted(found.items(), key=lambda item: _rank_order(item[0])))

    # --- actions -------------------------------------------------------------------------------------

    def action_cycle_metric(self) -> None:
        self.metric = METRICS[(METRICS.index(self.metric) + 1) % len(METRICS)]
        self._changed()

    def action_toggle_parts(self) -> None:
        self.show_parts = not self.show_parts
        self._changed()

    def _changed(self) -> None:
        self._dirty = True
        self._show_state()
        self.refresh()

    def _show_state(self) -> None:
        lines = self.series(self.metric)
        last = max((points[-1].step for points in lines.values() if points), default=None)
        self.set_class(not lines, "-empty")
        self.border_title = METRIC_TITLES[self.metric]
        if not lines:
            self.border_subtitle = "no steps yet"
            return
        cut = ""
        if self.metric == "step_time":
            ceiling = outlier_ceiling([p.value for points in lines.values() for p in points])
            cut = f" · above {ceiling:,.0f} ms cut" if ceiling is not None else ""
        self.border_subtitle = f"{', '.join(lines)} · step {last:,.0f}{cut}"

    # --- drawing -------------------------------------------------------------------------------------

    @property
    def compact(self) -> bool:
        return self.size.width < COMPACT_WIDTH or self.size.height < COMPACT_HEIGHT

    def on_resize(self) -> None:
        self._dirty = True

    def render(self) -> RenderResult:
        if self._dirty:
            self._draw()
            self._dirty = False
        return super().render()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        lines = self.series(self.metric)
        for label, points in lines.items():
            plt.plot([p.step for p in points], [p.value for p in points], label=label, marker="braille")
        if self.metric == "loss" and self.show_parts and lines:
            first = next(iter(lines))  # the loss-bearing ranks print the same parts: draw one rank's
            for part in PARTS:
                part_points = self.series("loss", part).get(first)
                if part_points:
                    plt.plot([p.step for p in part_points], [p.value for p in part_points],
                             label=_part_label(part, first, self.compact), marker="braille")
        ceiling = outlier_ceiling([p.value for points in lines.values() for p in points])
        if self.metric == "step_time" and ceiling is not None:
            plt.ylim(0, ceiling)  # the compiling first step would flatten every other one
        steps = [p.step for points in lines.values() for p in points]
        if steps:
            ticks = step_ticks(min(steps), max(steps), 4 if self.compact else 8)
            plt.xticks([float(t) for t in ticks], [f"{t:,}" for t in ticks])
        if not self.compact:
            plt.xlabel("step")
        if not any(lines.values()):
            plt.title("waiting for the first step")


def outlier_ceiling(values: Sequence[float]) -> float | None:
    """Three times the median, when some value is above it (else None: nothing to cut)."""
    if len(values) < 4:
        return None
    ceiling = 3 * statistics.median(values)
    return ceiling if max(values) > ceiling > 0 else None


def step_ticks(first: float, last: float, count: int) -> list[int]:
    """About `count` whole steps at a round spacing (1, 2 or 5 times a power of ten) from first to last."""
    span = max(1.0, last - first)
    raw = span / max(1, count)
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    spacing = next((m * power for m in (1, 2, 5, 10) if m * power >= raw), 10 * power)
    start = math.ceil(first / spacing) * spacing
    return list(range(int(start), int(last) + 1, int(spacing))) or [round(first)]


def _part_label(part: str, rank: str, compact: bool) -> str:
    short = {"lm_loss": "lm", "mtp_loss": "mtp", "load_balancing_loss": "balance"}[part]
    return short if compact else f"{short} ({rank})"


def _rank_order(label: str) -> tuple[int, str]:
    number = label[1:]
    return (int(number), "") if number.isdigit() else (1 << 30, label)
