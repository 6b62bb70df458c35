"""The dashboard: a summary line, the node table or the fleet view, and the highlighted node's reasons."""

from __future__ import annotations

import time
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import ContentSwitcher, DataTable, Footer, Static

from console.clock import clock_text
from console.feeds.health import HealthSnapshot
from console.screens.node_detail import NodeDetailScreen
from console.services import ConsoleServices
from console.widgets.fleet import FleetView
from console.widgets.fleet_cells import FleetNode
from console.widgets.node_table import NodeTable, worst_first
from remote.health import NodeHealth, Status, summarize, worst

STATUS_CLASSES = tuple(f"-{s.value.lower()}" for s in Status)


SLOW_ROUND = 2.0  # seconds a round runs before the header says it is still checking


def checked_line(snapshot: HealthSnapshot | None, running_for: float | None) -> str:
    """When the last round finished (and took), and how long the current one runs if it is slow."""
    parts = []
    if snapshot is not None:
        took = f" ({snapshot.elapsed:.1f} s)" if snapshot.elapsed >= 0.05 else ""
        parts.append(f"checked {clock_text(snapshot.finished_at)}{took}")
    if running_for is not None and running_for >= SLOW_ROUND:
        parts.append(f"checking… {running_for:.0f} s")
    return " · ".join(parts)


def reasons_line(report: NodeHealth | None) -> str:
    if report is None:
        return ""
    reasons = worst_first(report)
    if report.stale:
        return f"{report.node}: {reasons} (showing readings from {clock_text(report.checked_at)})"
    return f"{report.node}: {reasons or 'no problems found'}"


class DashboardScreen(Screen[None]):
    """Live health of every node of the cluster (the app polls it; this screen watches `app.health`)."""

    HELP_TITLE = "health dashboard"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "show_fleet", "Fleet", tooltip="One cell per NPU, every node", id="dashboard.fleet"),
        Binding("f", "show_table", "Table", tooltip="One row per node", id="dashboard.table"),
        Binding("r", "refresh", "Refresh", tooltip="Check every node now", id="dashboard.refresh"),
    ]

    def __init__(self, services: ConsoleServices) -> None:
        super().__init__()
        self.cluster = services.cluster
        self._interval = services.refresh
        self._checked_text = ""

    def compose(self) -> ComposeResult:
        nodes = self.cluster.nodes
        with Horizontal(id="header"):
            yield Static(f"{self.cluster.name} · checking {len(nodes)} nodes…", id="summary", markup=False)
            yield Static("", id="checked", markup=False)
        with Vertical(id="main"):
            with ContentSwitcher(initial="node-table", id="views"):
                yield NodeTable({n.name: n.devices for n in nodes}, id="node-table")
                yield FleetView([FleetNode(n.name, n.devices, n.backend == "cpu") for n in nodes],
                                temperature_c=self.cluster.health.temperature_c, id="fleet")
            yield Static("", id="reasons", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(1.0, self._show_checked)
        self.watch(self.app, "health", self._show_health)

    @property
    def snapshot(self) -> HealthSnapshot | None:
        snapshot: HealthSnapshot | None = getattr(self.app, "health", None)
        return snapshot

    # ----------------------------------------------------------------- rounds in

    def _show_checked(self) -> None:
        began: float | None = getattr(self.app, "health_round_began", None)
        running = time.monotonic() - began if began is not None else None
        line = checked_line(self.snapshot, running)
        if line != self._checked_text:  # the clock ticks every second; redraw only on change
            self._checked_text = line
            self.query_one("#checked", Static).update(line)

    def _show_health(self, snapshot: HealthSnapshot | None) -> None:
        if snapshot is None:
            return
        summary = self.query_one("#summary", Static)
        summary.update(f"{self.cluster.name} · {summarize(snapshot.reports).text}")
        self._show_checked()
        self._set_status_class(summary, worst(r.status for r in snapshot.reports))
        self.query_one(NodeTable).show(snapshot.reports)
        self.query_one(FleetView).show(snapshot.reports)
        self._show_reasons()

    @staticmethod
    def _set_status_class(widget: Static, status: Status) -> None:
        widget.remove_class(*STATUS_CLASSES)
        widget.add_class(f"-{status.value.lower()}")

    def report(self, node: str | None) -> NodeHealth | None:
        if self.snapshot is None or node is None:
            return None
        return next((r for r in self.snapshot.reports if r.node == node), None)

    # ----------------------------------------------------------------- the highlighted node

    @property
    def highlighted_node(self) -> str | None:
        if self.query_one(ContentSwitcher).current == "fleet":
            return self.query_one(FleetView).highlighted_node
        return self.query_one(NodeTable).highlighted_key

    def _show_reasons(self) -> None:
        report = self.report(self.highlighted_node)
        reasons = self.query_one("#reasons", Static)
        reasons.update(reasons_line(report))
        self._set_status_class(reasons, report.status if report else Status.OK)

    def on_data_table_row_highlighted(self, _message: DataTable.RowHighlighted) -> None:
        self._show_reasons()

    def on_fleet_view_node_highlighted(self, _message: FleetView.NodeHighlighted) -> None:
        self._show_reasons()

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        self.open_detail(message.row_key.value)

    def on_fleet_view_node_selected(self, message: FleetView.NodeSelected) -> None:
        self.open_detail(message.node)

    def open_detail(self, node: str | None) -> None:
        report = self.report(node)
        if report is not None:
            self.app.push_screen(NodeDetailScreen(report))
        elif node is not None:
            self.notify(f"{node}: not checked yet", timeout=3)

    # ----------------------------------------------------------------- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        showing = self.query_one(ContentSwitcher).current if self.is_mounted else "node-table"
        if action == "show_fleet":
            return showing != "fleet"
        if action == "show_table":
            return showing == "fleet"
        return True

    def action_show_fleet(self) -> None:
        self._switch("fleet")

    def action_show_table(self) -> None:
        self._switch("node-table")

    def _switch(self, view: str) -> None:
        self.query_one(ContentSwitcher).current = view
        self.query_one(f"#{view}").focus()
        self._show_reasons()
        self.refresh_bindings()

    async def action_refresh(self) -> None:
        await self.app.run_action("refresh_health")
        self.notify("checking now…", timeout=2)
