"""The dashboard, the fleet view, node detail and help, driven with Pilot on real health verdicts.

Reports come from `remote.health.assess` on the stand-ins' recorded probe output
(tests/recorded_health.py), not from hand-made objects. Each test says what a person would see.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest
import yaml
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import ContentSwitcher, DataTable, Log

from console.app import AscendConsole, make_app
from console.clock import clock_text
from console.feeds.health import ClusterHealth
from console.screens.dashboard import DashboardScreen
from console.screens.help import HelpScreen
from console.screens.node_detail import NodeDetailScreen
from console.widgets.fleet import FleetView
from console.widgets.fleet_cells import ColourMode, FleetLayout, FleetNode, node_glyphs, short_labels
from console.widgets.node_table import NodeTable
from remote.health import NodeHealth
from remote.inventory import Cluster, load_cluster, load_cluster_text
from remote.pool import NodePool
from tests.recorded_health import CLOCK, cpu_node, fleet, health, npu_node
from tests.testcluster import TestCluster

pytestmark = pytest.mark.usefixtures("utc")  # times on screen read the same everywhere

FOUR = ["healthy", "alarm", "busy", "link-down"]


class Rounds:
    """A health source that answers with the given rounds in turn (the last one repeats)."""

    def __init__(self, *rounds: Sequence[NodeHealth]) -> None:
        self._rounds = list(rounds)
        self._lock = threading.Lock()
        self.closed = False

    def check(self) -> Sequence[NodeHealth]:
        with self._lock:
            return self._rounds.pop(0) if len(self._rounds) > 1 else self._rounds[0]

    def close(self) -> None:
        self.closed = True


def cluster_of(reports: Sequence[NodeHealth], name: str = "demo") -> Cluster:
    nodes = "".join(f"  - name: {r.node}\n    host: {r.host}\n" for r in reports)
    return load_cluster_text(f"name: {name}\nnodes:\n{nodes}", f"{name}.yaml")


def app_for(*rounds: Sequence[NodeHealth]) -> AscendConsole:
    return make_app(cluster_of(rounds[0]), Rounds(*rounds), refresh=3600, clock=lambda: CLOCK)


def dashboard(pilot: Pilot[None]) -> DashboardScreen:
    screen = pilot.app.screen_stack[0]
    assert isinstance(screen, DashboardScreen)
    return screen


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the app never got there"
        await pilot.pause(0.05)


async def rounds_done(pilot: Pilot[None], count: int, timeout: float = 10.0) -> None:
    board = dashboard(pilot)
    await until(pilot, lambda: board.snapshot is not None and board.snapshot.round >= count, timeout)
    await pilot.pause()


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def drive(app: AscendConsole, script: Callable[[Pilot[None]], Awaitable[None]],
          size: tuple[int, int] = (80, 24)) -> None:
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await script(pilot)

    asyncio.run(main())




def cell(table: NodeTable, node: str, column: str) -> str:
    return table.get_cell(node, column).plain


# --- the node table -------------------------------------------------------------------------------


def test_each_node_is_one_row_keyed_by_its_name_with_its_verdict():
    async def script(pilot: Pilot[None]) -> None:
        await rounds_done(pilot, 1)
        table = pilot.app.screen.query_one(NodeTable)
        assert [key.value for key in table.rows] == ["node000", "node001", "node002", "node003"]
        assert [cell(table, n, "status") for n in ("node000", "node001", "node002", "node003")] == [
            "OK", "FAIL", "WARN", "FAIL"]
        assert cell(table, "node003", "links") == "0/8"
        summary = pilot.app.screen.query_one("#summary").render()
        assert "1/4 nodes OK" in str(summary)

    drive(app_for(fleet(FOUR)), script)


def test_on_a_wide_screen_every_cell_is_drawn_whole_once_its_round_arrives():
    """The rows replace the "checking…" ones in place: a frame drawn before DataTable measured the new
    cells showed each column at its old width ("CPU x2" as "CPU", "ms 2.10.0" as "ms 2.10.")."""
    async def script(pilot: Pilot[None]) -> None:
        await rounds_done(pilot, 1)
        table = pilot.app.screen.query_one(NodeTable)
        drawn = [table.render_line(y).text for y in range(1, 1 + table.row_count)]
        for line, (key, row) in zip(drawn, table.shown_rows.items(), strict=True):
            shown = [c.text for c in row if c.text]
            assert all(text in line for text in shown), (key, line, shown)

    drive(app_for(fleet(FOUR)), script, size=(200, 50))


def test_a_refresh_touches_only_changed_cells_and_the_cursor_stays_on_its_node():
    first = fleet(FOUR)
    second = [*first[:2], health_as(first[2], "healthy"), first[3]]

    async def script(pilot: Pilot[None]) -> None:
        await rounds_done(pilot, 1)
        table = pilot.app.screen.query_one(NodeTable)
        await pilot.press("down", "down")
        unchanged = table.get_cell("node000", "status")
        await pilot.press("r")
        await rounds_done(pilot, 2)
        assert cell(table, "node002", "status") == "OK"
        assert table.get_cell("node000", "status") is unchanged  # not rewritten
        assert table.cursor_row == 2 and table.highlighted_key == "node002"

    drive(app_for(first, second), script)


def health_as(report: NodeHealth, state: str) -> NodeHealth:
    return health(npu_node(report.node, report.host), state)


def test_a_node_that_stops_answering_keeps_its_last_readings_marked_stale():
    first = fleet(FOUR)
    second = [first[0], health_as(first[1], "unreachable"), *first[2:]]

    async def script(pilot: Pilot[None]) -> None:
        await rounds_done(pilot, 1)
        hbm = cell(pilot.app.screen.query_one(NodeTable), "node001", "hbm")
        await pilot.press("r")
        await rounds_done(pilot, 2)
        table = pilot.app.screen.query_one(NodeTable)
        assert cell(table, "node001", "status") == "UNREACHABLE (stale)"
        assert cell(table, "node001", "hbm") == hbm != "\N{EN DASH}"
        await pilot.press("down")
        reasons = str(pilot.app.screen.query_one("#reasons").render())
        assert "no answer" in reasons and f"showing readings from {clock_text(CLOCK)}" in reasons

    drive(app_for(first, second), script)


def test_status_colours_follow_the_theme():
    async def script(pilot: Pilot[None]) -> None:
        await rounds_done(pilot, 1)
        table = pilot.app.screen.query_one(NodeTable)
        dark = table.get_cell("node001", "status").style
        pilot.app.theme = "textual-light"
        await until(pilot, lambda: table.get_cell("node001", "status").style != dark)

    drive(app_for(fleet(FOUR)), script)


class Slow(Rounds):
    """Counts how many checks ever ran at the same time."""

    def __init__(self, reports: Sequence[NodeHealth]) -> None:
        super().__init__(reports)
        self.running = self.most = self.calls = 0

    def check(self) -> Sequence[NodeHealth]:
        with self._lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
        time.sleep(0.2)
        with self._lock:
            self.running -= 1
        return super().check()


def test_rounds_never_overlap_however_often_a_refresh_is_asked_for():
    reports = fleet(FOUR)
    source = Slow(reports)

    async def script(pilot: Pilot[None]) -> None:
        for _ in range(10):
            await pilot.press("r")
            await pilot.pause(0.05)
        await until(pilot, lambda: source.calls >= 3)

    drive(make_app(cluster_of(reports), source, refresh=0.1, clock=lambda: CLOCK), script)
    assert source.most == 1
    assert eventually(lambda: source.closed)  # the app closes its source as it goes away


# --- detail and help -------------------------------------------------------------------------------


def test_enter_opens_the_node_with_its_raw_probe_output_and_escape_comes_back():
    async def script(pilot: Pilot[None]) -> None:
        await rounds_done(pilot, 1)
        await pilot.press("down", "enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, NodeDetailScreen))
        detail = pilot.app.screen
        assert isinstance(detail, NodeDetailScreen) and detail.node == "node001"
        findings = [str(s.render()).split(maxsplit=1)[1] for s in detail.query(".finding")]
        assert "NPU 2: health Alarm" in findings
        raw = "\n".join(detail.query_one(Log).lines)
        assert "Alarm" in raw and "──── npu-smi" in raw
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, DashboardScreen)

    drive(app_for(fleet(FOUR)), script)


def test_question_mark_lists_the_keys_the_widgets_declare():
    async def script(pilot: Pilot[None]) -> None:
        await rounds_done(pilot, 1)
        await pilot.press("question_mark")
        help_screen = pilot.app.screen
        assert isinstance(help_screen, HelpScreen)
        table: DataTable[str] = help_screen.query_one("#help-keys", DataTable)
        rows = {tuple(table.get_row_at(i)) for i in range(table.row_count)}
        assert {("f", "Fleet"), ("q", "Quit"), ("⏎", "Open"), ("j", "Jobs"), ("w", "Wizard")} <= rows
        assert help_screen.query_one("#help-box").border_title == "Keys on the health dashboard"
        assert not any("Screen" in cell or "Table" in cell for row in rows for cell in row)
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, DashboardScreen)

    drive(app_for(fleet(FOUR)), script)


def test_the_command_palette_lists_every_screen_and_the_keys_in_force():
    async def script(pilot: Pilot[None]) -> None:
        await rounds_done(pilot, 1)
        titles = {command.title for command in pilot.app.get_system_commands(pilot.app.screen)}
        assert {"Health: every node", "Jobs: every job in the store", "Fleet", "Refresh"} <= titles
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(pilot.app.screen, CommandPalette))
        await pilot.press(*"jobs", "enter")
        await until(pilot, lambda: pilot.app.current_mode == "jobs")
        await pilot.press("h")
        assert pilot.app.current_mode == "health" and isinstance(pilot.app.screen, DashboardScreen)

    drive(app_for(fleet(FOUR)), script)


# --- the fleet view --------------------------------------------------------------------------------


def test_f_toggles_the_fleet_view_and_c_cycles_its_colours():
    async def script(pilot: Pilot[None]) -> None:
        await rounds_done(pilot, 1)
        await pilot.press("f")
        switcher = pilot.app.screen.query_one(ContentSwitcher)
        view = pilot.app.screen.query_one(FleetView)
        assert switcher.current == "fleet" and view.has_focus
        assert [view.mode, (await press(pilot, "c")).mode, (await press(pilot, "c")).mode] == [
            ColourMode.HEALTH, ColourMode.HBM, ColourMode.TEMPERATURE]
        await pilot.press("right", "enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, NodeDetailScreen))
        await pilot.press("escape", "f")
        assert switcher.current == "node-table"

    drive(app_for(fleet(FOUR)), script)


async def press(pilot: Pilot[None], key: str) -> FleetView:
    await pilot.press(key)
    return pilot.app.screen.query_one(FleetView)


def test_a_cpu_node_is_shown_as_cpu_not_as_npus():
    report = health(cpu_node("node0"), "healthy")
    glyphs = node_glyphs(FleetNode("node0", 1, cpu=True), report, ColourMode.HEALTH, 8, 85.0)
    assert "".join(g.char for g in glyphs) == "CPU x192"
    assert {g.tone for g in glyphs} == {"cpu"}


def test_128_nodes_take_26_rows_at_80_columns_and_12_at_160():
    prefix, labels = short_labels([f"atlas-{i:03d}" for i in range(128)])
    assert prefix == "atlas-" and labels[7] == "007"
    assert FleetLayout.fit(128, 3, 8, 78).rows == 26
    assert FleetLayout.fit(128, 3, 8, 158).rows == 12


# --- snapshots -------------------------------------------------------------------------------------

STATES_128 = [
    "alarm" if i == 17 else "busy" if i in (40, 41) else "link-down" if i == 77 else
    "no-driver" if i == 90 else "unreachable" if i == 101 else "healthy" for i in range(128)
]


async def settled(pilot: Pilot[None]) -> None:
    await rounds_done(pilot, 1)


async def in_fleet(pilot: Pilot[None]) -> None:
    await rounds_done(pilot, 1)
    await pilot.press("f")
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_snapshot_dashboard_four_nodes(snap_compare, size):
    # A person sees: one OK, two FAIL (alarm, link down), one WARN (busy); the summary on top.
    assert snap_compare(app_for(fleet(FOUR)), terminal_size=size, run_before=settled)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_snapshot_fleet_four_nodes(snap_compare, size):
    assert snap_compare(app_for(fleet(FOUR)), terminal_size=size, run_before=in_fleet)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_snapshot_fleet_128_nodes(snap_compare, size):
    # 128 nodes of 8 NPUs: at 80x24 dense and scrolled (26 rows), at 160x50 all of them, spaced;
    # node 17's alarm NPU is an X, its warning one a shaded block.
    assert snap_compare(app_for(fleet(STATES_128, prefix="atlas-")), terminal_size=size, run_before=in_fleet)


# --- on the test cluster ---------------------------------------------------------------------------


@pytest.mark.cluster
def test_the_dashboard_shows_each_test_host_with_its_real_status(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path):
    path = test_cluster.cluster_yaml(tmp_path / "cluster.yaml", known_hosts=known_hosts,
                                     extra_defaults={"connect_timeout": 2})
    document = yaml.safe_load(path.read_text())
    document["health"] = {"disk_free_gb": 1}  # this machine's free disk is not under test
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    cluster = load_cluster(path)
    for host, state in (("h0", "busy"), ("h1", "alarm"), ("h2", "link-down"), ("h3", "no-driver")):
        test_cluster.set_hardware(host, state)
    pool = NodePool(cluster)
    source = WatchedHealth(pool, cluster.nodes, timeout=5)

    async def script(pilot: Pilot[None]) -> None:
        await rounds_done(pilot, 1, timeout=60)
        table = pilot.app.screen.query_one(NodeTable)
        statuses = [cell(table, n, "status") for n in ("h0", "h1", "h2", "h3")]
        assert statuses == ["WARN", "FAIL", "FAIL", "FAIL"], statuses
        assert cell(table, "h1", "npus") == "6/8" and cell(table, "h2", "links") == "0/8"
        assert "busy" in cell(table, "h0", "reasons") and "npu-smi" in cell(table, "h3", "reasons")
        test_cluster.set_hardware("h1", "healthy")
        test_cluster.cut("h2")
        await pilot.press("r")
        await rounds_done(pilot, 2, timeout=60)
        assert cell(table, "h1", "status") == "OK"
        assert cell(table, "h2", "status") == "UNREACHABLE (stale)"
        assert cell(table, "h2", "links") == "0/8"  # its last good readings, dimmed

    try:
        drive(make_app(cluster, source, refresh=3600), script, size=(160, 50))
        assert eventually(lambda: source.closed)  # the app closed its services when it went away
    finally:
        pool.close()
        test_cluster.heal("h2")
        for host in ("h0", "h1", "h2", "h3"):
            test_cluster.set_hardware(host, "healthy")


class WatchedHealth(ClusterHealth):
    closed = False

    def close(self) -> None:
        self.closed = True
        super().close()
