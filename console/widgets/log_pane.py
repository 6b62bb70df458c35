"""One followed log in a pane: a bounded line store rendered lazily, a follow (tail) flag, search,
an errors-and-warnings filter, wrap and timestamp toggles, and a jump to a file line.

The screen hands the pane each batch of lines as it arrives (`append`); the pane keeps the newest
`scrollback` lines and says at the top how many older ones it let go. Only the rows on screen are
rendered, each line once per look (cached), so a pane takes thousands of lines a second.
Scrolling up pauses following; lines that arrive meanwhile are kept and counted in the border;
`end` or `f` follows again. Colours come from component classes and the theme.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import ClassVar, Literal

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.events import Resize
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.theme import Theme
from textual.widgets import Input

from console.clock import clock_text
from console.jobs.joblog import JobLine
from console.widgets.log_lines import (
    LineStore,
    RowMap,
    StoredLine,
    find,
    is_severe,
    printable,
    short_prefix,
    spans,
)
from model.loglines import line_time

SCROLLBACK = 20_000
MAX_LINE_CHARS = 2_000
"""A longer line is shown cut, saying how much was cut (a 64 KiB line must not slow the pane)."""
TIME_WIDTH = 9
Timestamps = Literal["off", "received", "line"]
TIMESTAMP_CYCLE: dict[Timestamps, Timestamps] = {"off": "received", "received": "line", "line": "off"}


def time_prefix(stored: StoredLine, mode: Timestamps) -> str:
    """`HH:MM:SS ` of when the console got the line, or of the line's own timestamp (as the node
    printed it); blank where the line has none."""
    if mode == "received":
        return clock_text(stored.received) + " "
    if mode == "line":
        own = line_time(stored.line.text)
        return (time.strftime("%H:%M:%S", time.gmtime(own)) if own is not None else " " * 8) + " "
    return ""


def shown_text(stored: StoredLine, mode: Timestamps, *, short: bool = False) -> str:
    """The line as the pane prints it: timestamp, printable text (without its logger's prefix when
    `short`), cut when very long."""
    text = printable(short_prefix(stored.line.text) if short else stored.line.text)
    if len(text) > MAX_LINE_CHARS:
        text = f"{text[:MAX_LINE_CHARS]}… [{len(text) - MAX_LINE_CHARS:,} more characters]"
    return time_prefix(stored, mode) + text


class LogView(ScrollView, can_focus=True):
    """The lines of a `LogPane`; it owns the store and what is shown of it."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "log-pane--error", "log-pane--warning", "log-pane--time", "log-pane--match",
        "log-pane--marked", "log-pane--dropped",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("end", "follow", "Follow", show=False, id="log-pane.end"),
    ]
    DEFAULT_CSS = """
    LogView { background: $surface; scrollbar-gutter: stable; scrollbar-size-vertical: 1; }
    LogView > .log-pane--error { color: $text-error; }
    LogView > .log-pane--warning { color: $text-warning; }
    LogView > .log-pane--time { color: $text-muted; }
    LogView > .log-pane--match { background: $warning-muted; text-style: bold; }
    LogView > .log-pane--marked { background: $accent-muted; }
    LogView > .log-pane--dropped { color: $text-muted; text-style: italic; }
    """

    def __init__(self, scrollback: int, clock: Callable[[], float], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store = LineStore(scrollback)
        self._clock = clock
        self.tail = True
        self.errors_only = False
        self.wrap = False
        self.timestamps: Timestamps = "off"
        self.short = True
        """Loggers' prefixes left out (`t` shows the line's own time instead)."""
        self.query_text = ""
        self.marked: int | None = None
        """Seq of the line found or jumped to, highlighted."""
        self.unseen = 0
        """Lines that arrived while paused."""
        self._map = RowMap(self._rows_of)
        self._widest = 0
        self._steering = False
        self._cache: LRUCache[int, list[Strip]] = LRUCache(1024)
        self._cache_width = -1
        self._frame_style = Style()
        self._wrap_width = 1
        """Columns a wrapped line gets, read once per batch or rebuild (reading it per line is slow)."""

    # --- data in ---------------------------------------------------------------------------------

    def append(self, lines: Sequence[JobLine]) -> None:
        if not lines:
            return
        start, lead = self.store.end, self._lead
        self._wrap_width = max(1, self.scrollable_content_region.width)
        self.store.add(lines, self._clock())
        removed = self._map.trim(self.store.first)
        for seq, stored in self.store.since(start):
            if self._shown(stored):
                self._map.add(seq, stored)
                self._widest = max(self._widest, len(stored.line.text))
        if not self.tail:
            self.unseen += len(lines)
        self._resize_content(shift=removed - (self._lead - lead))

    def _shown(self, stored: StoredLine) -> bool:
        return not self.errors_only or is_severe(stored)

    @property
    def _lead(self) -> int:
        """Rows before the first line: the notice that older lines were dropped."""
        return 1 if self.store.dropped else 0

    def _rows_of(self, stored: StoredLine) -> int:
        if not self.wrap:
            return 1
        width = self._wrap_width
        text = stored.line.text
        if len(text) <= MAX_LINE_CHARS and text.isascii() and text.isprintable():
            cells = self._time_width + len(text)  # most lines: no need to build what is shown
        else:
            cells = cell_len(shown_text(stored, self.timestamps, short=self.short))
        return max(1, -(-cells // width))

    def _resize_content(self, *, shift: int = 0) -> None:
        """Tell the scroll machinery the new size; keep following, or keep the same lines in view."""
        width = 0 if self.wrap else min(self._widest, MAX_LINE_CHARS + 40) + self._time_width
        self.virtual_size = Size(width, self._lead + self._map.rows)
        if not self.is_mounted:
            return
        with self._steady():
            if self.tail:
                self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
            elif shift:
                self.scroll_to(y=max(0, self.scroll_y - shift), animate=False, immediate=True, force=True)
        self.refresh()

    @property
    def _time_width(self) -> int:
        return TIME_WIDTH if self.timestamps != "off" else 0

    def rebuild(self) -> None:
        """Lay the view out again (filter, wrap, timestamps or width changed), keeping the line at the
        top of the screen (or the marked one) in view."""
        anchor = self.marked if self.marked is not None else self.top_seq()
        self._cache.clear()
        self._wrap_width = max(1, self.scrollable_content_region.width)
        self._map = RowMap(self._rows_of)
        for seq, stored in self.store.since(self.store.first):
            if self._shown(stored):
                self._map.add(seq, stored)
        self._resize_content()
        if not self.tail and anchor is not None:
            self.show_seq(anchor, center=False)

    @property
    def shown_seqs(self) -> Sequence[int]:
        """Seqs of the lines the view shows (all, or errors and warnings only), oldest first."""
        return self._map.seqs

    # --- where the reader is -----------------------------------------------------------------------

    def top_seq(self) -> int | None:
        """Seq of the first line on screen (or the first shown after it)."""
        found = self._map.at(max(0, round(self.scroll_y) - self._lead))
        return found[0] if found else None

    def show_seq(self, seq: int, *, center: bool = True) -> None:
        row = self._map.row_of(seq)
        if row is None:
            return
        height = self.scrollable_content_region.height
        y = self._lead + row - (height // 3 if center else 0)
        with self._steady():
            self.scroll_to(y=max(0, y), animate=False, immediate=True, force=True)
        self.refresh()

    def set_tail(self, tail: bool) -> None:
        if tail == self.tail:
            return
        self.tail = tail
        if tail:
            self.unseen = 0
            self.marked = None
            self._cache.clear()
            self._resize_content()
        self.post_message(LogPane.FollowChanged(tail))

    def action_follow(self) -> None:
        self.set_tail(True)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._steering or not self.is_mounted:
            return
        # A clamp after a resize lands on the end: only a move above the end is the reader's
        if new_value < old_value and new_value < self.max_scroll_y:
            self.set_tail(False)
        elif new_value > old_value and new_value >= self.max_scroll_y:
            self.set_tail(True)

    @contextmanager
    def _steady(self) -> Iterator[None]:
        """While the pane itself moves the view, scrolling says nothing of the reader's wish to follow."""
        self._steering = True
        try:
            yield
        finally:
            self._steering = False

    def on_resize(self, _event: Resize) -> None:
        self._fit()

    def watch_show_horizontal_scrollbar(self, _shown: bool) -> None:
        # A scrollbar shown or hidden after the last line arrived moves the end (a row, or the wrap
        # width) without a Resize: fit again once it is drawn, or a following view ends a row short.
        if self.is_mounted:
            self.call_after_refresh(self._fit)

    def watch_show_vertical_scrollbar(self, shown: bool) -> None:
        self.watch_show_horizontal_scrollbar(shown)

    def _fit(self) -> None:
        if self.wrap:
            self.rebuild()
        elif self.tail:
            self._resize_content()

    # --- search ------------------------------------------------------------------------------------

    def search(self, *, forward: bool) -> bool:
        """Mark the next line holding the query after the marked one (or the top of the screen)."""
        if self.marked is not None:
            start = self._map.index_at_or_after(self.marked)
        else:
            top = self.top_seq()
            start = self._map.index_at_or_after(top) - 1 if top is not None else -1
        seq = find(self.store, self._map.seqs, self.query_text, start, forward=forward)
        if seq is None:
            return False
        found = spans(shown_text(self.store.get(seq), "off", short=self.short), self.query_text)
        self.mark(seq, found[0][0] if found else 0)
        return True

    def mark(self, seq: int, column: int = 0) -> None:
        """Highlight line `seq`, pause following, and bring the line (and its `column`) into view."""
        self.marked = seq
        self._cache.clear()
        self.set_tail(False)
        self.show_seq(seq)
        if not self.wrap:
            width = self.scrollable_content_region.width
            x = 0 if column + self._time_width < width - 8 else column + self._time_width - width // 3
            with self._steady():
                self.scroll_to(x=x, animate=False, immediate=True, force=True)

    # --- rendering ---------------------------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        self._frame_style = self.rich_style  # once a frame, not once a line: it walks the DOM
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        row = scroll_y + y
        style = self._frame_style
        if self._lead and row == 0:
            return self._dropped_notice(width, style)
        found = self._map.at(row - self._lead)
        if found is None:
            return Strip.blank(width, style)
        seq, part = found
        strips = self._strips(seq, width, style)
        strip = strips[part] if part < len(strips) else Strip.blank(width, style)
        x = 0 if self.wrap else scroll_x
        return strip.crop_extend(x, x + width, style)

    def _dropped_notice(self, width: int, style: Style) -> Strip:
        text = Text(f"── {self.store.dropped:,} older lines dropped: the pane keeps the newest "
                    f"{self.store.capacity:,} ──", no_wrap=True, end="")
        text.stylize(style + self._style("dropped"))
        return Strip(text.render(self.app.console)).crop_extend(0, width, style)

    def _strips(self, seq: int, width: int, style: Style) -> list[Strip]:
        if width != self._cache_width:
            self._cache.clear()
            self._cache_width = width
        cached = self._cache.get(seq)
        if cached is not None:
            return cached
        strip = Strip(self._text(seq, style).render(self.app.console))
        cuts = [*range(width, strip.cell_length, width), strip.cell_length]
        strips = list(strip.divide(cuts)) if self.wrap else [strip]
        self._cache[seq] = strips
        return strips

    def _text(self, seq: int, style: Style) -> Text:
        stored = self.store.get(seq)
        line_style = style
        if stored.line.severity in ("error", "warning"):
            line_style = style + self._style(stored.line.severity)
        text = Text(shown_text(stored, self.timestamps, short=self.short), no_wrap=True, end="")
        text.stylize(line_style)
        if self._time_width:
            text.stylize(self._style("time"), 0, self._time_width)
        for start, end in spans(text.plain[self._time_width:], self.query_text):
            text.stylize(self._style("match"), start + self._time_width, end + self._time_width)
        if seq == self.marked:
            text.stylize(self._style("marked"))
        return text

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"log-pane--{name}", partial=True)

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, _theme: Theme) -> None:
        self._cache.clear()
        self.refresh()


class LogPane(Vertical):
    """One followed log: title (node, rank, file) in the border, state and unseen lines below it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "toggle_follow", "Follow", tooltip="Follow the end, or pause", id="log-pane.follow"),
        Binding("slash", "open_search", "Search", id="log-pane.search"),
        Binding("n", "search(True)", "Next match", show=False, id="log-pane.next"),
        Binding("N", "search(False)", "Previous match", show=False, id="log-pane.previous"),
        Binding("e", "toggle_errors", "Errors", tooltip="Errors and warnings only, or all lines",
                id="log-pane.errors"),
        Binding("w", "toggle_wrap", "Wrap", id="log-pane.wrap"),
        Binding("x", "toggle_prefixes", "Prefixes", show=False,
                tooltip="Show or hide the loggers' prefixes (time, process, source file)",
                id="log-pane.prefixes"),
        Binding("t", "cycle_timestamps", "Times", tooltip="Received time, the line's own, or none",
                id="log-pane.timestamps"),
        Binding("escape", "close_search", "Close search", show=False, id="log-pane.close-search"),
    ]
    DEFAULT_CSS = """
    LogPane {
        border: round $primary-muted;
        border-title-color: $text;
        border-subtitle-color: $text-muted;
        height: 1fr;
    }
    LogPane:focus-within { border: round $primary; }
    LogPane.-paused { border-subtitle-color: $text-warning; }
    LogPane.-paused:focus-within { border: round $warning; }
    LogPane > LogView { height: 1fr; }
    LogPane > Input { display: none; height: 1; border: none; padding: 0 1; }
    LogPane.-searching > Input { display: block; }
    """

    class FollowChanged(Message):
        """The pane started following (tail) or was paused."""

        def __init__(self, following: bool) -> None:
            super().__init__()
            self.following = following

    def __init__(self, title: str, *, scrollback: int = SCROLLBACK, clock: Callable[[], float] = time.time,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.log_title = title
        self.border_title = title
        self._view = LogView(scrollback, clock)

    def compose(self) -> ComposeResult:
        yield self._view
        yield Input(placeholder="search (Enter: find, n/N: next/previous, Esc: close)", select_on_focus=False)

    def on_mount(self) -> None:
        self._show_state()

    @property
    def view(self) -> LogView:
        return self._view

    @property
    def following(self) -> bool:
        return self._view.tail

    def append(self, lines: Sequence[JobLine]) -> None:
        """Add a batch of lines as they arrived (kept even while paused; the oldest beyond the
        scrollback are dropped, and the pane says how many)."""
        self._view.append(lines)
        if not self._view.tail:
            self._show_state()

    def jump_to(self, line_number: int) -> bool:
        """Show line `line_number` of the file (its newest copy), pausing there; False (and a notice)
        when it is no longer, or not yet, in the scrollback."""
        view = self._view
        seq = view.store.locate(line_number)
        if seq is None:
            oldest = view.store.get(view.store.first).line.number if len(view.store) else None
            kept = f"the oldest kept is line {oldest:,}" if oldest is not None else "nothing is kept yet"
            self.notify(f"{self.log_title}: line {line_number:,} is not in the scrollback ({kept})",
                        severity="warning")
            return False
        if view.errors_only and not is_severe(view.store.get(seq)):
            view.errors_only = False
            view.rebuild()
        view.mark(seq)
        self._show_state()
        return True

    # --- actions -----------------------------------------------------------------------------------

    def action_toggle_follow(self) -> None:
        self._view.set_tail(not self._view.tail)

    def action_toggle_errors(self) -> None:
        self._view.errors_only = not self._view.errors_only
        self._view.rebuild()
        self._show_state()

    def action_toggle_wrap(self) -> None:
        self._view.wrap = not self._view.wrap
        self._view.rebuild()
        self._show_state()

    def action_toggle_prefixes(self) -> None:
        self._view.short = not self._view.short
        self._view.rebuild()
        self._show_state()

    def action_cycle_timestamps(self) -> None:
        self._view.timestamps = TIMESTAMP_CYCLE[self._view.timestamps]
        self._view.rebuild()
        self._show_state()

    def action_open_search(self) -> None:
        self.add_class("-searching")
        search = self.query_one(Input)
        search.value = self._view.query_text
        search.focus()

    def action_close_search(self) -> None:
        if self.has_class("-searching"):
            self.remove_class("-searching")
            self._view.focus()

    def action_search(self, forward: bool) -> None:
        if not self._view.query_text:
            self.action_open_search()
        elif not self._view.search(forward=forward):
            self.notify(f"{self.log_title}: no line holds {self._view.query_text!r}", severity="warning")
        self._show_state()

    @on(Input.Submitted)
    def _searched(self, event: Input.Submitted) -> None:
        event.stop()
        self._view.query_text = event.value
        self._view.marked = None
        self.action_close_search()
        if event.value:
            self.action_search(True)
        else:
            self._view.rebuild()
            self._show_state()

    @on(FollowChanged)
    def _follow_changed(self, _event: FollowChanged) -> None:
        self._show_state()

    def _show_state(self) -> None:
        view = self._view
        self.set_class(not view.tail, "-paused")
        parts = ["following" if view.tail else "paused"]
        if view.unseen:
            parts.append(f"{view.unseen:,} new (end/f)")
        if view.errors_only:
            parts.append("err+warn")
        if view.wrap:
            parts.append("wrap")
        if not view.short:
            parts.append("prefixes")
        if view.timestamps != "off":
            parts.append("recv time" if view.timestamps == "received" else "line time")
        if view.query_text:
            parts.append(f"/{view.query_text}")
        self.border_subtitle = " · ".join(parts)
