"""What the fleet view draws, as pure data: one glyph and tone per NPU, node labels, the grid layout.

No Textual here: tones are names the widget maps to its component classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from console.healthdoc import npus_cell
from remote.health import NodeHealth, NpuReport, Status

BARS = "▁▂▃▄▅▆▇█"
NO_DATA = "·"
LABEL_CAP = 10
GAP = 2
COOL_C = 30.0  # the bottom of the temperature bars


class ColourMode(str, Enum):
    HEALTH = "health"
    HBM = "HBM"
    TEMPERATURE = "temperature"

    def next(self) -> ColourMode:
        modes = list(ColourMode)
        return modes[(modes.index(self) + 1) % len(modes)]


HEALTH_GLYPHS = {
    Status.OK: ("█", "ok"), Status.WARN: ("▓", "warn"), Status.FAIL: ("X", "fail"),
    Status.UNKNOWN: ("?", "unknown"), Status.UNREACHABLE: (NO_DATA, "none"),
}


@dataclass(frozen=True)
class Glyph:
    char: str
    tone: str


BLANK = Glyph(" ", "")


@dataclass(frozen=True)
class FleetNode:
    """A node as the fleet view knows it before any report: its name and how many NPU slots it has."""

    name: str
    devices: int
    cpu: bool = False


def legend(mode: ColourMode, temperature_c: float) -> str:
    if mode is ColourMode.HEALTH:
        return "health: █ OK  ▓ WARN  X FAIL  ? unknown  · no data"
    if mode is ColourMode.HBM:
        return "HBM in use: ▁ 0% … █ 100%  · unknown"
    return f"temperature: ▁ {COOL_C:g} C … █ {temperature_c:g} C  · unknown"


def bar(fraction: float) -> str:
    index = math.ceil(min(max(fraction, 0.0), 1.0) * len(BARS)) - 1
    return BARS[max(index, 0)]


def hbm_glyph(report: NpuReport) -> Glyph:
    used, total = report.npu.hbm_used_mb, report.npu.hbm_total_mb
    if used is None or not total:
        return Glyph(NO_DATA, "none")
    fraction = used / total
    tone = "idle" if fraction < 0.1 else "low" if fraction < 0.5 else "mid" if fraction < 0.8 else "high"
    return Glyph(bar(fraction), tone)


def temperature_glyph(report: NpuReport, limit_c: float) -> Glyph:
    temp = report.npu.temp_c
    if temp is None:
        return Glyph(NO_DATA, "none")
    tone = "low" if temp < limit_c - 15 else "mid" if temp < limit_c else "high"
    return Glyph(bar((temp - COOL_C) / max(limit_c - COOL_C, 1.0)), tone)


def npu_glyph(report: NpuReport, mode: ColourMode, limit_c: float) -> Glyph:
    if mode is ColourMode.HBM:
        return hbm_glyph(report)
    if mode is ColourMode.TEMPERATURE:
        return temperature_glyph(report, limit_c)
    char, tone = HEALTH_GLYPHS[report.status]
    return Glyph(char, tone)


def node_glyphs(node: FleetNode, report: NodeHealth | None, mode: ColourMode, slots: int,
                limit_c: float, *, spaced: bool = False) -> tuple[Glyph, ...]:
    """A node's NPU area, one glyph per cell: its NPUs, then "·" for NPUs it should have but did
    not show; `spaced` puts a blank between NPUs. A CPU node says so in words instead.
    """
    width = area_width(slots, spaced)
    if node.cpu or (report is not None and report.system is not None and report.system.backend == "cpu"):
        word = npus_cell(report, node.devices) if report is not None else "CPU"
        word = word if len(word) <= width else "CPU"[:width]
        return tuple(Glyph(c, "cpu") for c in word.ljust(width))
    npus = report.npus if report is not None else ()
    glyphs = [npu_glyph(n, mode, limit_c) for n in npus[:slots]]
    expected = min(max(node.devices, len(glyphs)), slots)
    glyphs += [Glyph(NO_DATA, "none")] * (expected - len(glyphs))
    glyphs += [BLANK] * (slots - len(glyphs))
    if spaced:
        glyphs = [cell for glyph in glyphs for cell in (glyph, BLANK)][:-1]
    return tuple(glyphs)


def area_width(slots: int, spaced: bool) -> int:
    return 2 * slots - 1 if spaced and slots else slots


def short_labels(names: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """The names' shared prefix (up to a separator) and each name without it, at most LABEL_CAP wide."""
    shared = 0
    if len(names) > 1:
        while all(len(n) > shared and n[shared] == names[0][shared] for n in names):
            shared += 1
    prefix = names[0][:shared] if names else ""
    prefix = prefix[: max(prefix.rfind(sep) for sep in "-_.") + 1]
    labels = tuple(_cap(name[len(prefix):] or name) for name in names)
    return prefix, labels


def _cap(label: str) -> str:
    return label if len(label) <= LABEL_CAP else "…" + label[-(LABEL_CAP - 1):]


@dataclass(frozen=True)
class FleetLayout:
    """Where each node sits: `per_row` nodes a line, each a label, a blank and its NPU area, then a gap."""

    count: int
    label_width: int
    slots: int
    per_row: int
    spaced: bool = False

    @classmethod
    def fit(cls, count: int, label_width: int, slots: int, width: int, spaced: bool = False) -> FleetLayout:
        entry = label_width + 1 + area_width(slots, spaced)
        per_row = max(1, (width + GAP) // (entry + GAP))
        return cls(count, label_width, slots, per_row, spaced)

    @classmethod
    def choose(cls, count: int, label_width: int, slots: int, size: tuple[int, int]) -> FleetLayout:
        """Spaced NPUs (easier to tell apart) when the whole fleet fits the height so; dense otherwise."""
        width, height = size
        spaced = cls.fit(count, label_width, slots, width, spaced=True)
        return spaced if spaced.rows <= height else cls.fit(count, label_width, slots, width)

    @property
    def entry_width(self) -> int:
        return self.label_width + 1 + area_width(self.slots, self.spaced)

    @property
    def rows(self) -> int:
        return -(-self.count // self.per_row)

    @property
    def width(self) -> int:
        return self.per_row * (self.entry_width + GAP) - GAP

    def position(self, index: int) -> tuple[int, int]:
        """(x, y) of a node's label."""
        return (index % self.per_row) * (self.entry_width + GAP), index // self.per_row

    def index_at(self, x: int, y: int) -> int | None:
        column, offset = divmod(x, self.entry_width + GAP)
        index = y * self.per_row + column
        if offset >= self.entry_width or column >= self.per_row or not 0 <= index < self.count:
            return None
        return index
