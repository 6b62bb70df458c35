"""The loss chart, in a tiny app, fed metric records made the way the follower makes them from the
loss lines our tiny training printed (tests/samples/logs/train-tiny)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from itertools import pairwise
from pathlib import Path

from textual.app import App, ComposeResult
from textual.pilot import Pilot

from console.records import MetricRecord
from console.widgets.loss_chart import LossChart, Series, record_values, step_ticks
from model.logformat import parse_loss_line

LOGS = Path(__file__).parent / "samples" / "logs"


def recorded_metrics(rank: int = 1) -> list[MetricRecord]:
    """Six steps with loss, lm/balance/MTP parts and step time, as `JobFollow` records them."""
    records = []
    for line in (LOGS / "train-tiny" / f"worker_{rank}.log").read_text().splitlines():
        loss = parse_loss_line(line)
        if loss is not None:
            extra = {"per_step_ms": loss.per_step_ms, "parts": dict(loss.parts),
                     "throughput_tflops": loss.throughput_tflops}
            records.append(MetricRecord("job", "node0", rank, loss.step, 0.0, loss.loss,
                                        {k: v for k, v in extra.items() if v is not None}))
    return records


def synthetic(rank: int, steps: range) -> list[MetricRecord]:
    return [MetricRecord("job", "node0", rank, step, 0.0, 10.0 / step, {"per_step_ms": 100 + step % 7})
            for step in steps]


class ChartApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LossChart(id="chart")


def drive(script: Callable[[Pilot[None], LossChart], Awaitable[None]],
          size: tuple[int, int] = (80, 24)) -> None:
    async def main() -> None:
        app = ChartApp()
        async with app.run_test(size=size) as pilot:
            await script(pilot, app.query_one(LossChart))

    asyncio.run(main())


def test_records_give_loss_its_parts_and_step_time():
    first = recorded_metrics()[0]
    values = record_values(first)
    assert values[("loss", "")] == first.loss
    assert {part for metric, part in values if metric == "loss"} >= {"", "lm_loss", "load_balancing_loss"}
    assert ("step_time", "") in values


def test_a_series_keeps_the_newest_exact_and_folds_the_old():
    series = Series(recent=100, older=50)
    for step in range(1, 10_001):
        series.add(step, float(step))
    points = series.points
    assert len(points) <= 150
    assert [p.step for p in points[-100:]] == list(range(9901, 10_001))  # the newest, exact
    assert points[0].step < 300 and all(a.step < b.step for a, b in pairwise(points))
    assert not series.add(5, 1.0) and not series.add(10_001, float("nan"))  # a replay, a NaN: not drawn


def test_the_chart_gains_points_as_steps_arrive():
    async def script(pilot: Pilot[None], chart: LossChart) -> None:
        records = recorded_metrics()
        chart.set_series(records[:3])
        await pilot.pause()
        assert [p.step for p in chart.series()["r1"]] == [1, 2, 3]
        chart.add_points(records[3:])
        chart.add_points(records[2:4])  # a batch that overlaps what is drawn
        await pilot.pause()
        assert [p.step for p in chart.series()["r1"]] == [1, 2, 3, 4, 5, 6]
        assert [p.value for p in chart.series()["r1"]] == [r.loss for r in records]
        assert len(chart.series("loss", "lm_loss")["r1"]) == 6
        assert "r1 · step 6" in str(chart.border_subtitle)

    drive(script)


def test_several_ranks_are_several_lines_in_rank_order():
    async def script(pilot: Pilot[None], chart: LossChart) -> None:
        chart.set_series(synthetic(15, range(1, 50)) + synthetic(7, range(1, 40)))
        await pilot.pause()
        assert list(chart.series()) == ["r7", "r15"]

    drive(script)


def test_m_switches_to_step_time_and_p_hides_the_parts():
    async def script(pilot: Pilot[None], chart: LossChart) -> None:
        chart.set_series(recorded_metrics())
        chart.focus()
        await pilot.press("m")
        assert chart.metric == "step_time" and chart.border_title == "step time (ms)"
        await pilot.press("m", "m", "p")
        assert chart.border_title == "loss" and not chart.show_parts

    drive(script)


def test_an_empty_chart_says_it_waits():
    async def script(pilot: Pilot[None], chart: LossChart) -> None:
        await pilot.pause()
        assert chart.has_class("-empty") and chart.border_subtitle == "no steps yet"

    drive(script)


def test_snapshot_loss_chart_80x24(snap_compare):
    # A person sees: the compact chart of rank 1's loss over six steps and its lm/balance parts.
    async def fed(pilot: Pilot[None]) -> None:
        pilot.app.query_one(LossChart).set_series(recorded_metrics())
        await pilot.pause()

    assert snap_compare(ChartApp(), terminal_size=(80, 24), run_before=fed)


def test_step_ticks_are_whole_round_steps():
    assert step_ticks(1, 75, 4) == [20, 40, 60]
    assert step_ticks(1, 6, 4) == [2, 4, 6]
    assert step_ticks(1, 1, 4) == [1]
    assert step_ticks(1000, 250_000, 8) == [50_000, 100_000, 150_000, 200_000, 250_000]
