"""The node table: one row per node, keyed by node name, with the `check` command's columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from textual.binding import Binding, BindingType

from console.healthdoc import (
    disk_cell,
    hbm_cell,
    job_name,
    links_cell,
    max_cell,
    npus_cell,
    versions_cell,
)
from console.widgets.keyed_table import Cell, Column, KeyedTable, Row
from remote.health import NodeHealth, Status

REASONS_WIDTH = 48
# The job's name, cut: the optional columns leave together when they do not all fit, and at 160
# columns a long job id would take the reasons with it. The node's detail shows the whole id.
JOB_WIDTH = 9


def worst_first(report: NodeHealth) -> str:
    """The node's reasons joined, the most serious first (a FAIL must not hide behind a disk WARN)."""
    findings = sorted(report.findings, key=lambda f: -f.status.rank)
    return "; ".join(" ".join(f.text.split()) for f in findings)


def job_cell(report: NodeHealth) -> str:
    """The name of the job the node runs (`2 jobs` when several); blank when none."""
    if len(report.jobs) > 1:
        return f"{len(report.jobs)} jobs"
    name = job_name(report.jobs[0].id) if report.jobs else ""
    return name if len(name) <= JOB_WIDTH else name[: JOB_WIDTH - 1] + "…"


def status_tone(status: Status) -> str:
    return status.value.lower()


def status_cell(report: NodeHealth) -> Cell:
    text = report.status.value + (" (stale)" if report.stale else "")
    return Cell(text, status_tone(report.status))


def node_row(report: NodeHealth, devices: int) -> Row:
    """The row `check` prints for a node; a stale row's readings are dimmed: they are old."""
    npus = [n.npu for n in report.npus]
    reading = "stale" if report.stale else ""
    reasons = worst_first(report)
    if len(reasons) > REASONS_WIDTH:
        reasons = reasons[: REASONS_WIDTH - 1] + "…"
    return (
        Cell(report.node, status_tone(report.status)),
        status_cell(report),
        Cell(npus_cell(report, devices), reading),
        Cell(hbm_cell(report), reading),
        Cell(max_cell([n.temp_c for n in npus], " C"), reading),
        Cell(max_cell([n.power_w for n in npus], " W"), reading),
        Cell(max_cell([n.aicore_pct for n in npus], "%"), reading),
        Cell(links_cell(report), reading),
        Cell(disk_cell(report), reading),
        Cell(job_cell(report), reading),
        Cell(versions_cell(report), reading),
        Cell(reasons, reading),
    )


def waiting_row(node: str) -> Row:
    """A node not yet heard from."""
    return (Cell(node), Cell("checking…", "waiting"), *(Cell("") for _ in NodeTable.COLUMNS[2:]))


class NodeTable(KeyedTable):
    """Every node's health at a glance; Enter opens the highlighted node."""

    COLUMNS = (
        Column("node", "node"), Column("status", "status"), Column("npus", "NPUs"),
        Column("hbm", "HBM"), Column("temp", "temp"), Column("power", "power"),
        Column("aicore", "AICore"), Column("links", "links"), Column("disk", "disk free"),
        Column("job", "job", optional=True), Column("versions", "versions", optional=True),
        Column("reasons", "reasons", optional=True),
    )
    TONE_PREFIX = "node-table--"
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        f"node-table--{tone}" for tone in ("ok", "warn", "fail", "unknown", "unreachable", "stale", "waiting")
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open", tooltip="The node in full", id="node-table.details"),
    ]
    DEFAULT_CSS = """
    NodeTable { scrollbar-size-horizontal: 1; }
    NodeTable > .node-table--ok { color: $text-success; }
    NodeTable > .node-table--warn { color: $text-warning; }
    NodeTable > .node-table--unknown { color: $text-accent; }
    NodeTable > .node-table--fail { color: $text-error; text-style: bold; }
    NodeTable > .node-table--unreachable { color: $text-error; }
    NodeTable > .node-table--stale { color: $text-muted; text-style: italic; }
    NodeTable > .node-table--waiting { color: $text-muted; }
    """

    def __init__(self, devices: Mapping[str, int], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._devices = dict(devices)

    def first_rows(self) -> Sequence[tuple[str, Row]]:
        return [(node, waiting_row(node)) for node in self._devices]

    def show(self, reports: Sequence[NodeHealth]) -> None:
        """Show a new round of reports; nodes keep their place and the cursor its row."""
        by_node = {r.node: r for r in reports}
        self.show_rows([
            (node, node_row(by_node[node], devices) if node in by_node else waiting_row(node))
            for node, devices in self._devices.items()
        ])
