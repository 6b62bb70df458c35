"""The log pane, driven with Pilot in a tiny app, fed lines recorded from real msrun runs.

Each test says what a person would see. The clock is fixed so received times read the same everywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.notifications import SeverityLevel
from textual.pilot import Pilot

from console.jobs.joblog import JobLine
from console.jobs.logfiles import LogFile
from console.widgets.log_lines import LineStore, RowMap, StoredLine, find, spans
from console.widgets.log_pane import LogPane, LogView
from model.loglines import line_severity

pytestmark = pytest.mark.usefixtures("utc")  # times on screen read the same everywhere

LOGS = Path(__file__).parent / "samples" / "logs"
FILE = LogFile("node1", "/job/logs/worker_1.log", "worker", 1)
CLOCK = 1_790_000_000.0


def job_lines(texts: list[str], first: int = 1) -> list[JobLine]:
    return [JobLine(FILE, first + i, text, line_severity(text)) for i, text in enumerate(texts)]


def recorded() -> list[JobLine]:
    """A rank's life: our tiny training's log (warnings, six loss steps), then a traceback."""
    texts = [line for name in ("train-tiny/worker_1.log", "msrun-fail/worker_1.log")
             for line in (LOGS / name).read_text().splitlines()]
    return job_lines(texts)


def numbered(count: int, first: int = 1) -> list[JobLine]:
    return job_lines([f"line {n}" for n in range(first, first + count)], first)


class PaneApp(App[None]):
    def __init__(self, scrollback: int = 20_000) -> None:
        super().__init__()
        self.scrollback = scrollback
        self.notices: list[str] = []

    def compose(self) -> ComposeResult:
        yield LogPane("node1 · rank 1 · worker_1.log", scrollback=self.scrollback, clock=lambda: CLOCK,
                      id="pane")


    def on_mount(self) -> None:
        self.query_one(LogView).focus()

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        self.notices.append(message)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)


def drive(script: Callable[[Pilot[None], LogPane], Awaitable[None]], *, scrollback: int = 20_000,
          size: tuple[int, int] = (80, 24)) -> None:
    async def main() -> None:
        app = PaneApp(scrollback)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await script(pilot, app.query_one(LogPane))

    asyncio.run(main())


def notices(pilot: Pilot[None]) -> list[str]:
    assert isinstance(pilot.app, PaneApp)
    return pilot.app.notices


def shown(pane: LogPane) -> list[str]:
    """The plain text of the view's rows on screen."""
    view = pane.view
    return [view.render_line(y).text.rstrip() for y in range(view.scrollable_content_region.height)]




# --- the store, on its own ---------------------------------------------------------------------------


def test_the_store_keeps_the_newest_lines_and_counts_the_dropped():
    store = LineStore(5)
    assert store.add(numbered(3), 0.0) == 0
    assert store.add(numbered(4, first=4), 0.0) == 2
    assert store.dropped == 2 and len(store) == 5
    assert [s.line.text for _, s in store.since(0)] == [f"line {n}" for n in range(3, 8)]
    assert store.locate(7) == 6 and store.locate(2) is None
    with pytest.raises(IndexError):
        store.get(1)


def test_the_store_compacts_without_losing_or_renumbering_lines():
    store = LineStore(3)
    for n in range(1, 101):
        store.add(numbered(1, first=n), 0.0)
    assert store.dropped == 97 and [store.get(s).line.number for s in range(97, 100)] == [98, 99, 100]


def test_row_map_places_wrapped_lines_and_forgets_the_front():
    rows = RowMap(lambda stored: len(stored.line.text) // 4 + 1)
    for seq, line in enumerate(job_lines(["a", "bbbbbbbbb", "cc"])):
        rows.add(seq, StoredLine(line, 0.0))
    assert rows.rows == 1 + 3 + 1
    assert rows.at(0) == (0, 0) and rows.at(3) == (1, 2) and rows.at(4) == (2, 0) and rows.at(5) is None
    assert rows.trim(1) == 1
    assert rows.at(0) == (1, 0) and rows.row_of(2) == 3 and rows.row_of(0) is None


def test_search_is_smart_case_and_wraps_around():
    store = LineStore(10)
    store.add(job_lines(["Loss 1", "nothing", "loss 2"]), 0.0)
    assert find(store, [0, 1, 2], "loss", 0, forward=True) == 2
    assert find(store, [0, 1, 2], "loss", 2, forward=True) == 0
    assert find(store, [0, 1, 2], "Loss", 0, forward=True) == 0
    assert find(store, [0, 1, 2], "loss", 0, forward=False) == 2
    assert spans("a Loss, a loss", "loss") == [(2, 6), (10, 14)]


# --- the pane --------------------------------------------------------------------------------------------


def test_beyond_the_scrollback_the_newest_stay_and_the_top_says_how_many_went():
    async def script(pilot: Pilot[None], pane: LogPane) -> None:
        for start in range(1, 1301, 100):
            pane.append(numbered(100, first=start))
        await pilot.pause()
        store = pane.view.store
        assert len(store) == 1000 and store.dropped == 300
        assert shown(pane)[-1] == "line 1300"  # following: the newest line at the bottom
        await pilot.press("home")
        await pilot.pause()
        rows = shown(pane)
        assert "300 older lines dropped" in rows[0] and "newest 1,000" in rows[0]
        assert rows[1] == "line 301"

    drive(script, scrollback=1000)


def test_lines_that_arrive_while_paused_are_kept_and_counted():
    async def script(pilot: Pilot[None], pane: LogPane) -> None:
        pane.append(numbered(200))
        await pilot.pause()
        await pilot.press("pageup")
        await pilot.pause()
        assert not pane.following and pane.has_class("-paused")
        before = shown(pane)
        pane.append(numbered(150, first=201))
        await pilot.pause()
        assert shown(pane) == before  # the reader's place does not move
        assert "150 new" in str(pane.border_subtitle) and "paused" in str(pane.border_subtitle)
        await pilot.press("end")
        await pilot.pause()
        assert pane.following and shown(pane)[-1] == "line 350"
        assert "new" not in str(pane.border_subtitle)

    drive(script)


def test_paused_while_old_lines_drop_the_same_lines_stay_in_view():
    async def script(pilot: Pilot[None], pane: LogPane) -> None:
        pane.append(numbered(500))
        await pilot.pause()
        await pilot.press("pageup", "pageup")
        await pilot.pause()
        before = shown(pane)
        pane.append(numbered(100, first=501))  # drops 100 from the top
        await pilot.pause()
        assert shown(pane) == before

    drive(script, scrollback=500)


def test_f_pauses_and_follows_again():
    async def script(pilot: Pilot[None], pane: LogPane) -> None:
        pane.append(numbered(100))
        await pilot.press("f")
        assert not pane.following
        pane.append(numbered(5, first=101))
        await pilot.pause()
        assert shown(pane)[-1] == "line 100"
        await pilot.press("f")
        await pilot.pause()
        assert pane.following and shown(pane)[-1] == "line 105"

    drive(script)


def test_search_finds_highlights_and_moves_with_n_and_shift_n():
    async def script(pilot: Pilot[None], pane: LogPane) -> None:
        lines = recorded()
        pane.append(lines)
        await pilot.pause()
        await pilot.press("home")
        await pilot.press("slash", *"step:[", "enter")
        await pilot.pause()
        view = pane.view
        assert view.marked is not None and not pane.following
        first = view.store.get(view.marked).line
        assert "step:[    1/  200]" in first.text
        assert any("step:[    1/" in row for row in shown(pane))  # scrolled to it
        await pilot.press("n")
        second = view.store.get(view.marked).line
        assert "step:[    2/  200]" in second.text
        await pilot.press("N", "N")  # back past the first: wraps around to the last
        assert "step:[    6/  200]" in view.store.get(view.marked or 0).line.text
        assert "/step:[" in str(pane.border_subtitle)

    drive(script)


def test_a_search_for_what_is_not_there_says_so():
    async def script(pilot: Pilot[None], pane: LogPane) -> None:
        pane.append(recorded())
        await pilot.press("slash", *"no such words", "enter")
        await pilot.pause()
        assert pane.view.marked is None
        assert any("no line holds" in n for n in notices(pilot))

    drive(script)


def test_the_filter_shows_errors_and_warnings_only():
    async def script(pilot: Pilot[None], pane: LogPane) -> None:
        lines = recorded()
        pane.append(lines)
        await pilot.press("e")
        await pilot.pause()
        view = pane.view
        kept = [view.store.get(seq).line for seq in view.shown_seqs]
        assert kept and all(line.severity in ("error", "warning") for line in kept)
        assert len(kept) == sum(line.severity in ("error", "warning") for line in lines) < len(lines)
        assert "err+warn" in str(pane.border_subtitle)
        pane.append(job_lines(["all is well", "Traceback (most recent call last):"], first=len(lines) + 1))
        await pilot.pause()
        assert [row for row in shown(pane) if row][-1].startswith("Traceback")  # new lines: same filter
        await pilot.press("e")
        await pilot.pause()
        assert len(view.shown_seqs) == len(lines) + 2

    drive(script)


def test_jump_to_shows_the_file_line_marked_and_paused():
    async def script(pilot: Pilot[None], pane: LogPane) -> None:
        pane.append(numbered(2000))
        await pilot.pause()
        assert pane.jump_to(420)
        await pilot.pause()
        assert not pane.following and "line 420" in shown(pane)
        assert pane.view.store.get(pane.view.marked or 0).line.number == 420
        assert not pane.jump_to(5000)
        assert any("line 5,000 is not in the scrollback" in n for n in notices(pilot))

    drive(script)


def test_jump_to_a_line_the_filter_hides_turns_the_filter_off():
    async def script(pilot: Pilot[None], pane: LogPane) -> None:
        pane.append(job_lines(["plain", "ValueError: boom", "plain again"]))
        await pilot.press("e")
        assert pane.jump_to(3)
        await pilot.pause()
        assert not pane.view.errors_only and "plain again" in shown(pane)

    drive(script)


def test_wrap_and_timestamps_change_what_a_line_takes():
    async def script(pilot: Pilot[None], pane: LogPane) -> None:
        long = "x" * 200
        pane.append(job_lines(["2026-12-06 21:09:44,561 - INFO - hello", long]))
        await pilot.pause()
        assert pane.view.virtual_size.height == 2
        await pilot.press("w")
        await pilot.pause()
        assert pane.view.virtual_size.height == 1 + -(-200 // pane.view.scrollable_content_region.width)
        await pilot.press("w", "t")
        await pilot.pause()
        assert shown(pane)[:1] == ["14:13:20 2026-12-06 21:09:44,561 - INFO - hello"]  # received, UTC
        await pilot.press("t")
        await pilot.pause()
        assert shown(pane)[0].startswith("21:09:44 2026-12-06")  # the line's own
        assert shown(pane)[1].startswith("         xxx")

    drive(script)


def test_a_very_long_line_is_cut_and_says_so():
    async def script(pilot: Pilot[None], pane: LogPane) -> None:
        pane.append(job_lines(["y" * 70_000]))
        await pilot.pause()
        await pilot.press("w")
        await pilot.pause()
        assert "68,000 more characters" in "".join(shown(pane))

    drive(script)


# --- snapshot ----------------------------------------------------------------------------------------


def test_snapshot_log_pane_80x24(snap_compare):
    # A person sees: the tail of a failed rank's log, warnings and the traceback coloured, following.
    async def fed(pilot: Pilot[None]) -> None:
        pilot.app.query_one(LogPane).append(recorded())
        await pilot.pause()

    assert snap_compare(PaneApp(), terminal_size=(80, 24), run_before=fed)


def test_a_loggers_prefix_is_left_out_keeping_the_level_and_mindspores_module():
    from console.widgets.log_lines import short_prefix

    mindformers = ("2026-12-06 21:41:59,761 - mindformers[train.py:86] - INFO - { Epoch:[  1/  1], "
                   "step:[   93/  200], loss: 6.671600")
    assert short_prefix(mindformers) == "{ Epoch:[  1/  1], step:[   93/  200], loss: 6.671600"
    warning = "2026-12-06 21:41:59,761 - mindformers[train.py:86] - WARNING - slow step"
    assert short_prefix(warning) == "WARNING slow step"
    mindspore = ("[WARNING] DISTRIBUTED(11277,7f457b084b80,python):2026-11-28-12:47:09.071.939 "
                 "[mindspore/ccsrc/cluster/topology/cluster_context.cc:316] BuildCluster] "
                 "Topology build timed out., retry(1/120).")
    assert short_prefix(mindspore) == "WARNING DISTRIBUTED Topology build timed out., retry(1/120)."
    assert short_prefix("Traceback (most recent call last):") == "Traceback (most recent call last):"
