"""Eight log panes fed 2,000 lines/s each: how long a key press takes to show its effect.

A headless Pilot app (200x50) holds 8 `LogPane`s; every 0.25 s each gets a batch of 500 lines (the
follower batches by time like this), cycled from the recorded logs in tests/samples/logs. Meanwhile
keys are pressed on the focused pane (page up, end, the error filter on and off, wrap on and off) and
the time from the key's arrival to the first line the pane draws after it is taken. Prints p50/p99/max
per key, the feed's own cost, and the loop's lag. Figures, not assertions.

    .venv/bin/python -m bench.log_pane [--seconds 10] [--rate 2000] [--panes 8]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from itertools import cycle
from pathlib import Path

from textual import events
from textual.app import App, ComposeResult
from textual.containers import Grid
from textual.strip import Strip

from console.collector import FREEZE_EVERY, freeze_survivors
from console.jobs.joblog import JobLine
from console.jobs.logfiles import LogFile
from console.widgets.log_pane import LogPane, LogView
from model.loglines import line_severity

LOGS = Path(__file__).resolve().parent.parent / "tests" / "samples" / "logs"
BATCH_SECONDS = 0.25
KEYS = ("pageup", "end", "e", "e", "w", "w")


def recorded_texts() -> list[str]:
    return [line for path in sorted(LOGS.rglob("*")) if path.suffix in (".log", ".txt") and path.is_file()
            for line in path.read_text(errors="replace").splitlines()]


class Feed:
    """Numbered lines for one pane, cycling through the recordings."""

    def __init__(self, file: LogFile, texts: list[str]) -> None:
        self._file = file
        self._texts = cycle([(text, line_severity(text)) for text in texts])
        self._number = 0

    def batch(self, count: int) -> list[JobLine]:
        lines = []
        for _ in range(count):
            self._number += 1
            text, severity = next(self._texts)
            lines.append(JobLine(self._file, self._number, text, severity))
        return lines


class PanesApp(App[None]):
    CSS = "Grid { grid-size: 4 2; }"

    def __init__(self, panes: int, rate: int, *, calm_gc: bool) -> None:
        super().__init__()
        self.calm_gc = calm_gc
        texts = recorded_texts()
        self.feeds = [Feed(LogFile(f"node{i // 2}", f"/job/logs/worker_{i}.log", "worker", i), texts)
                      for i in range(panes)]
        self.rate = rate
        self.feed_seconds: list[float] = []
        self.lag: list[float] = []
        self.drawn_at: dict[int, float] = {}

    def compose(self) -> ComposeResult:
        with Grid():
            for i, _feed in enumerate(self.feeds):
                yield LogPane(f"node{i // 2} · rank {i} · worker_{i}.log", id=f"pane-{i}")

    def on_mount(self) -> None:
        if self.calm_gc:
            self.set_interval(FREEZE_EVERY, freeze_survivors)
        for pane in self.query(LogPane):
            self._stamp(pane.view)
        self.query_one("#pane-0", LogPane).view.focus()

    def _stamp(self, view: LogView) -> None:
        """Note when a pane draws a line (the bench's only hook: it wraps the instance's render_line)."""
        draw: Callable[[int], Strip] = view.render_line

        def render_line(y: int) -> Strip:
            self.drawn_at[id(view)] = time.perf_counter()
            return draw(y)

        view.render_line = render_line  # type: ignore[method-assign]

    def start_feed(self) -> None:
        self._next = time.perf_counter()
        self._started, self._fed = self._next, 0
        self.set_interval(BATCH_SECONDS, self.feed)

    def feed(self) -> None:
        now = time.perf_counter()
        self.lag.append(max(0.0, now - self._next))
        self._next = now + BATCH_SECONDS
        # a late tick (or a skipped one) brings a bigger batch, as the follower's time batching does
        due = int((now - self._started) * self.rate) - self._fed
        self._fed += due
        for pane, feed in zip(self.query(LogPane), self.feeds, strict=True):
            pane.append(feed.batch(due))
        self.feed_seconds.append(time.perf_counter() - now)


async def press_and_wait(app: PanesApp, view: LogView, key: str) -> float:
    """Post the key as a terminal driver does (Pilot.press waits for the process to go idle, which a
    busy feed never lets it do) and wait for the pane to draw."""
    started = time.perf_counter()
    app.post_message(events.Key(key, key if len(key) == 1 else None))
    while app.drawn_at.get(id(view), 0.0) < started:
        if time.perf_counter() - started > 10:
            raise TimeoutError(f"{key} drew nothing in 10 s")
        await asyncio.sleep(0.001)
    return app.drawn_at[id(view)] - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(seconds: float, rate: int, panes: int, calm_gc: bool) -> None:
    app = PanesApp(panes, rate, calm_gc=calm_gc)
    latencies: dict[str, list[float]] = defaultdict(list)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        view = app.query_one("#pane-0", LogPane).view
        app.start_feed()
        deadline = time.perf_counter() + seconds
        keys = cycle(KEYS)
        while time.perf_counter() < deadline:
            key = next(keys)
            latencies[key].append(await press_and_wait(app, view, key))
            await asyncio.sleep(0.03)
        kept = [len(pane.view.store) for pane in app.query(LogPane)]
        fed = sum(pane.view.store.end for pane in app.query(LogPane))
    print(f"{panes} panes x {rate:,} lines/s for {seconds:.0f} s: {fed:,} lines appended, "
          f"{min(kept):,}-{max(kept):,} kept per pane (scrollback 20,000)")
    every = [v for values in latencies.values() for v in values]
    print(f"key press -> first line drawn ({len(every)} presses): "
          f"p50 {statistics.median(every) * 1000:.1f} ms, p99 {percentile(every, 0.99) * 1000:.1f} ms, "
          f"max {max(every) * 1000:.1f} ms")
    for key, values in latencies.items():
        print(f"  {key:>7} x{len(values):<4} p50 {statistics.median(values) * 1000:6.1f} ms  "
              f"p99 {percentile(values, 0.99) * 1000:6.1f} ms  max {max(values) * 1000:6.1f} ms")
    feed = app.feed_seconds
    print(f"appending one batch to all panes: p50 {statistics.median(feed) * 1000:.1f} ms, "
          f"max {max(feed) * 1000:.1f} ms; feed timer late by "
          f"p50 {statistics.median(app.lag) * 1000:.1f} ms, max {max(app.lag) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=2000, help="lines per second per pane")
    parser.add_argument("--panes", type=int, default=8)
    parser.add_argument("--calm-gc", action="store_true",
                        help="freeze survivors every few seconds, as the console does (console/collector.py)")
    args = parser.parse_args()
    print("collector:", "survivors frozen every 5 s" if args.calm_gc else "Python's default")
    asyncio.run(run(args.seconds, args.rate, args.panes, args.calm_gc))


if __name__ == "__main__":
    main()
