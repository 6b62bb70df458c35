"""A node's NPUs and links as keyed tables (NPU rows keyed by id and chip, links by device)."""

from __future__ import annotations

from typing import ClassVar

from console.healthdoc import process_text
from console.widgets.keyed_table import Cell, Column, KeyedTable, Row
from remote.health import LinkReport, NodeHealth, NpuReport

NONE = "\N{EN DASH}"
TONES = ("ok", "warn", "fail", "unknown", "unreachable")
TONE_CSS = """
{name} > .{prefix}ok {{ color: $text-success; }}
{name} > .{prefix}warn {{ color: $text-warning; }}
{name} > .{prefix}unknown {{ color: $text-accent; }}
{name} > .{prefix}fail {{ color: $text-error; text-style: bold; }}
{name} > .{prefix}unreachable {{ color: $text-error; }}
"""


def number(value: float | None) -> str:
    return NONE if value is None else f"{value:g}"


def npu_row(report: NpuReport) -> Row:
    npu = report.npu
    tone = report.status.value.lower()
    processes = ", ".join(process_text(report, p, memory=True) for p in report.processes)
    return (
        Cell(str(npu.id)), Cell(str(npu.chip)), Cell(npu.name), Cell(npu.health, tone),
        Cell(f"{number(npu.hbm_used_mb)}/{number(npu.hbm_total_mb)}"), Cell(number(npu.temp_c)),
        Cell(number(npu.power_w)), Cell(number(npu.aicore_pct)), Cell(processes or NONE),
        Cell("; ".join(report.reasons), tone),
    )


def link_row(report: LinkReport) -> Row:
    tone = report.status.value.lower()
    return (Cell(str(report.device)), Cell(report.link, tone), Cell(report.net_health, tone),
            Cell(report.ip or NONE), Cell(report.status.value, tone))


class NpuTable(KeyedTable):
    COLUMNS = (
        Column("npu", "NPU"), Column("chip", "chip"), Column("name", "name"), Column("health", "health"),
        Column("hbm", "HBM MB"), Column("temp", "temp C"), Column("power", "power W"),
        Column("aicore", "AICore %"), Column("processes", "processes"), Column("reasons", "reasons"),
    )
    TONE_PREFIX = "npu-table--"
    COMPONENT_CLASSES: ClassVar[set[str]] = {f"npu-table--{tone}" for tone in TONES}
    DEFAULT_CSS = TONE_CSS.format(name="NpuTable", prefix="npu-table--")

    def show(self, health: NodeHealth) -> None:
        self.show_rows([(f"{n.npu.id}.{n.npu.chip}", npu_row(n)) for n in health.npus])


class LinkTable(KeyedTable):
    COLUMNS = (
        Column("device", "device"), Column("link", "link"), Column("net_health", "net health"),
        Column("ip", "IP"), Column("status", "status"),
    )
    TONE_PREFIX = "link-table--"
    COMPONENT_CLASSES: ClassVar[set[str]] = {f"link-table--{tone}" for tone in TONES}
    DEFAULT_CSS = TONE_CSS.format(name="LinkTable", prefix="link-table--")

    def show(self, health: NodeHealth) -> None:
        self.show_rows([(str(link.device), link_row(link)) for link in health.links])
