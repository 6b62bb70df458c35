"""The fleet view: every NPU of every node as one character, nodes wrapping in rows.

128 nodes of 8 NPUs take 26 lines at 80 columns (scrolled) and 12 at 160. Colour (and glyph) by health,
by HBM in use or by temperature; `c` switches. A CPU node says "CPU", not eight fake NPUs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.widgets.fleet_cells import (
    GAP,
    ColourMode,
    FleetLayout,
    FleetNode,
    legend,
    node_glyphs,
    short_labels,
)
from remote.health import NodeHealth

TONES = ("ok", "warn", "fail", "unknown", "unreachable", "none", "cpu", "idle", "low", "mid", "high",
         "waiting", "stale", "cursor")


class FleetView(ScrollView, can_focus=True):
    """A map of the cluster's NPUs; Enter opens the node under the cursor."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {f"fleet--{tone}" for tone in TONES}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "cycle_colour", "Colour", id="fleet.colour"),
        Binding("enter", "select", "Details", id="fleet.details"),
        Binding("left", "move(-1, 0)", "Previous node", show=False, id="fleet.left"),
        Binding("right", "move(1, 0)", "Next node", show=False, id="fleet.right"),
        Binding("up", "move(0, -1)", "Node above", show=False, id="fleet.up"),
        Binding("down", "move(0, 1)", "Node below", show=False, id="fleet.down"),
        Binding("home", "jump(0)", "First node", show=False, id="fleet.first"),
        Binding("end", "jump(-1)", "Last node", show=False, id="fleet.last"),
    ]
    DEFAULT_CSS = """
    FleetView {
        border-top: solid $primary-muted;
        border-title-color: $text-muted;
        padding: 0 1;
    }
    FleetView:focus { border-top: solid $primary; }
    FleetView > .fleet--ok { color: $text-success; }
    FleetView > .fleet--warn { color: $text-warning; }
    FleetView > .fleet--fail { color: $text-error; text-style: bold; }
    FleetView > .fleet--unknown { color: $text-accent; }
    FleetView > .fleet--unreachable { color: $text-error; }
    FleetView > .fleet--none { color: $text-disabled; }
    FleetView > .fleet--cpu { color: $text-secondary; }
    FleetView > .fleet--idle { color: $text-muted; }
    FleetView > .fleet--low { color: $text-success; }
    FleetView > .fleet--mid { color: $text-warning; }
    FleetView > .fleet--high { color: $text-error; }
    FleetView > .fleet--waiting { color: $text-muted; }
    FleetView > .fleet--stale { text-style: dim italic; }
    FleetView > .fleet--cursor { text-style: reverse bold; }
    """

    mode: reactive[ColourMode] = reactive(ColourMode.HEALTH)
    cursor: reactive[int] = reactive(0)

    class NodeHighlighted(Message):
        def __init__(self, node: str) -> None:
            super().__init__()
            self.node = node

    class NodeSelected(Message):
        def __init__(self, node: str) -> None:
            super().__init__()
            self.node = node

    def __init__(self, nodes: Sequence[FleetNode], *, temperature_c: float, id: str | None = None) -> None:
        super().__init__(id=id)
        self._fleet = tuple(nodes)
        self._prefix, self._labels = short_labels([n.name for n in nodes])
        self._temperature_c = temperature_c
        self._reports: dict[str, NodeHealth] = {}
        self._slots = max((n.devices for n in nodes if not n.cpu), default=0)
        if any(n.cpu for n in nodes):
            self._slots = max(self._slots, 8)
        self._grid = FleetLayout.fit(len(nodes), max(map(len, self._labels), default=1), self._slots, 80)

    # ----------------------------------------------------------------- data in

    def show(self, reports: Sequence[NodeHealth]) -> None:
        """Show a new round of reports (nodes not in it keep their last)."""
        self._reports.update((r.node, r) for r in reports)
        self._grow_slots(reports)
        self.refresh()

    def _grow_slots(self, reports: Sequence[NodeHealth]) -> None:
        """A node may show more NPUs than the cluster file says (A3: two dies per device)."""
        widest = max((len(r.npus) for r in reports), default=0)
        if widest > self._slots:
            self._slots = widest
            self._relayout()

    @property
    def highlighted_node(self) -> str | None:
        return self._fleet[self.cursor].name if self._fleet else None

    # ----------------------------------------------------------------- layout

    def on_resize(self, _event: events.Resize) -> None:
        self._relayout()

    def _relayout(self) -> None:
        width = max(self.scrollable_content_region.width, 1)
        size = (width, max(self.scrollable_content_region.height, 1))
        self._grid = FleetLayout.choose(len(self._fleet), self._grid.label_width, self._slots, size)
        self.virtual_size = Size(self._grid.width, self._grid.rows)
        self._reveal_cursor()
        self.refresh()

    def watch_mode(self, mode: ColourMode) -> None:
        prefix = f"{self._prefix}…  " if self._prefix else ""
        self.border_title = f"{prefix}{legend(mode, self._temperature_c)}"
        self.refresh()

    def watch_cursor(self, cursor: int) -> None:
        self._reveal_cursor()
        self.refresh()
        if self._fleet:
            self.post_message(self.NodeHighlighted(self._fleet[cursor].name))

    def _reveal_cursor(self) -> None:
        x, y = self._grid.position(self.cursor)
        self.scroll_to_region(Region(x, y, self._grid.entry_width, 1), animate=False, immediate=True)

    # ----------------------------------------------------------------- drawing

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        base = self.rich_style
        row = scroll_y + y
        segments: list[Segment] = []
        first = row * self._grid.per_row
        for index in range(first, min(first + self._grid.per_row, len(self._fleet))):
            if index > first:
                segments.append(Segment(" " * GAP, base))
            segments.extend(self._entry(index, base))
        strip = Strip(segments).crop_extend(scroll_x, scroll_x + self.scrollable_content_region.width, base)
        return strip.apply_offsets(scroll_x, row)

    def _entry(self, index: int, base: Style) -> list[Segment]:
        node = self._fleet[index]
        report = self._reports.get(node.name)
        label_tones = [report.status.value.lower() if report else "waiting"]
        if index == self.cursor:
            label_tones.append("cursor")
        label = self._labels[index].rjust(self._grid.label_width)
        extra = ("stale",) if report is not None and report.stale else ()
        glyphs = node_glyphs(node, report, self.mode, self._slots, self._temperature_c,
                             spaced=self._grid.spaced)
        return [
            Segment(label, self._style(base, *label_tones)),
            Segment(" ", base),
            *(Segment(g.char, self._style(base, g.tone, *extra)) for g in glyphs),
        ]

    def _style(self, base: Style, *tones: str) -> Style:
        style = base
        for tone in tones:
            if tone:
                style += self.get_component_rich_style(f"fleet--{tone}", partial=True)
        return style

    # ----------------------------------------------------------------- actions

    def action_cycle_colour(self) -> None:
        self.mode = self.mode.next()

    def action_move(self, dx: int, dy: int) -> None:
        target = self.cursor + dx + dy * self._grid.per_row
        if 0 <= target < len(self._fleet):
            self.cursor = target

    def action_jump(self, index: int) -> None:
        if self._fleet:
            self.cursor = index % len(self._fleet)

    def action_select(self) -> None:
        if self._fleet:
            self.post_message(self.NodeSelected(self._fleet[self.cursor].name))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        index = self._grid.index_at(offset.x + self.scroll_offset.x, offset.y + self.scroll_offset.y)
        if index is not None:
            self.cursor = index
            if event.chain >= 2:
                self.action_select()
