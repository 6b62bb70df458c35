"""One node in full: reasons, system, NPUs with their processes, links, and the raw probe output."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Log, Static, TabbedContent, TabPane

from console.clock import clock_text
from console.feeds.health import HealthSnapshot
from console.widgets.detail_tables import LinkTable, NpuTable
from remote.health import Finding, NodeHealth, Status, SystemReport

NONE = "\N{EN DASH}"
STATUS_CLASSES = tuple(f"-{s.value.lower()}" for s in Status)


def title_line(health: NodeHealth) -> str:
    took = f" in {health.elapsed:.1f} s" if health.elapsed >= 0.05 else ""
    when = "last answered" if health.stale else "checked"
    stale = " (stale: not answering)" if health.stale else ""
    return (f"{health.node} · {health.host} · {health.status.value}{stale} · "
            f"{when} {clock_text(health.checked_at)}{took}")


def system_lines(system: SystemReport | None) -> list[str]:
    if system is None:
        return ["no system readings (the node has not answered yet)"]
    rows: list[tuple[str, object]] = [
        ("backend", system.backend), ("hostname", system.hostname),
        ("kernel", f"{system.kernel} {system.machine}".strip()), ("CPUs", system.cpus),
        ("memory", _memory(system)),
        ("load", " ".join(f"{x:g}" for x in system.load) if system.load else None),
        ("disk", f"{system.disk.avail_kb / 1024**2:.0f} GB free of {system.disk.size_kb / 1024**2:.0f} GB "
                 f"on {system.disk.mount}" if system.disk else None),
        ("driver", system.driver_version), ("firmware", system.firmware_version),
        ("MindSpore", system.mindspore_version),
        ("container", f"{system.container.name}: {system.container.status}" if system.container else None),
        ("clock offset", f"{system.clock_offset_s:+.2f} s" if system.clock_offset_s is not None else None),
    ]
    return [f"{name:>12}  {NONE if value in (None, '') else value}" for name, value in rows]


def _memory(system: SystemReport) -> str | None:
    if system.memory_total_kb is None:
        return None
    total = system.memory_total_kb / 1024**2
    free = (system.memory_available_kb or 0) / 1024**2
    return f"{free:.0f} GB available of {total:.0f} GB"


def raw_lines(health: NodeHealth) -> list[str]:
    lines: list[str] = []
    for name, text in health.raw.items():
        lines.append(f"──── {name} " + "─" * max(0, 60 - len(name)))
        lines.extend(text.rstrip("\n").splitlines() or ["(nothing printed)"])
    return lines or ["no probe output (the node did not answer)"]


class NodeDetailScreen(Screen[None]):
    """Everything the last check learnt about one node, kept current from `app.health`; Escape goes back."""

    HELP_TITLE = "node detail"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="detail.back"),
        Binding("o", "tab('overview')", "Overview", id="detail.overview"),
        Binding("n", "tab('npus')", "NPUs", id="detail.npus"),
        Binding("l", "tab('links')", "Links", id="detail.links"),
        Binding("p", "tab('raw')", "Probe output", id="detail.raw"),
    ]

    def __init__(self, health: NodeHealth) -> None:
        super().__init__()
        self.node = health.node
        self._health = health
        self._findings: tuple[Finding, ...] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="detail-title", markup=False)
        with TabbedContent(id="detail-tabs"):
            with TabPane("Overview", id="overview"), VerticalScroll(id="overview-scroll"):
                yield VerticalScroll(id="findings")
                yield Static("", id="system", markup=False)
            with TabPane("NPUs", id="npus"):
                yield NpuTable(id="npu-table")
            with TabPane("Links", id="links"):
                yield LinkTable(id="link-table")
            with TabPane(f"Probe output ({clock_text(self._health.checked_at)})", id="raw"):
                yield Log(id="raw-log", auto_scroll=False)
        yield Footer()

    def on_mount(self) -> None:
        self.show(self._health)
        self.query_one("#raw-log", Log).write_lines(raw_lines(self._health))
        self.watch(self.app, "health", self._newer, init=False)

    def _newer(self, snapshot: HealthSnapshot | None) -> None:
        report = next((r for r in snapshot.reports if r.node == self.node), None) if snapshot else None
        if report is not None:
            self.show(report)

    def show(self, health: NodeHealth) -> None:
        """Show a newer report of the node (the raw output stays the one the screen opened with)."""
        self._health = health
        title = self.query_one("#detail-title", Static)
        title.update(title_line(health))
        title.remove_class(*STATUS_CLASSES).add_class(f"-{health.status.value.lower()}")
        self._show_findings(tuple(sorted(health.findings, key=lambda f: -f.status.rank)))
        self.query_one("#system", Static).update("\n".join(system_lines(health.system)))
        self.query_one(NpuTable).show(health)
        self.query_one(LinkTable).show(health)

    def _show_findings(self, findings: tuple[Finding, ...]) -> None:
        if findings == self._findings:
            return
        self._findings = findings
        box = self.query_one("#findings", VerticalScroll)
        box.remove_children()
        box.mount_all([
            Static(f"{f.status.value:<11} {f.text}", markup=False,
                   classes=f"finding -{f.status.value.lower()}")
            for f in findings
        ] or [Static("no problems found", classes="finding -ok")])

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
