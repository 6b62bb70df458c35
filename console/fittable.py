"""Tables that fit the terminal without cutting what people copy: numbers and paths stay whole.

Rich squeezes a table that is too wide by folding or ellipsing its cells, which turns a job directory
into five fragments and a pid into `12…`. A `FitTable` gives up room in an order instead: first short
headers (`cluster_ip` -> `ip`), then paths (each moved out of the table to a line of its own under it,
whole), then the columns marked droppable, least needed first. Free text (a note, an error) may wrap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

Kind = Literal["text", "number", "path"]
Shown = Literal["full", "short", "moved", "dropped"]
TEXT_ROOM = 16
"""Cells of free text wrap at words, but get this many cells (or their length) before paths move out."""


@dataclass(frozen=True)
class Column:
    """A column of a table that must fit: what kind of value it holds and what it may give up."""

    name: str
    kind: Kind = "text"
    """number: never cut or wrapped; path: never cut, moved under the table when there is no room;
    text: may wrap at words."""
    drop: int = 0
    """0: always shown; otherwise dropped when nothing else makes room, the highest first."""
    short: str | None = None
    """The header when room is short."""
    justify: Literal["left", "right"] = "left"


@dataclass(frozen=True)
class FitTable:
    """A renderable: the table at the console's width, then the paths that did not fit, one a line."""

    columns: Sequence[Column]
    rows: Sequence[Sequence[str]]
    """Cells in rich markup (escape what is not), one per column."""
    title: str | None = None
    key: int = 0
    """The column that names a row on a moved path's line (`node0 job dir: /…`)."""
    options: dict[str, Any] | None = None
    """Table keyword arguments (box, header_style...)."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        shown = self.layout(console, options.max_width)
        yield self._table(shown)
        for row in self.rows:
            for at, column in enumerate(self.columns):
                if shown[at] == "moved" and row[at]:
                    line = Text.from_markup(f"{row[self.key]} {escape(column.name)}: {row[at]}")
                    line.no_wrap, line.overflow = True, "ignore"
                    yield line

    def layout(self, console: Console, width: int) -> list[Shown]:
        """How each column is shown (`full`, `short`, `moved` under the table, `dropped`) at `width`."""
        shown: list[Shown] = ["full"] * len(self.columns)
        for at, how in self._savings():
            if self._width(console, shown) <= width:
                break
            shown[at] = how
        for at in [at for at, how in enumerate(shown) if how == "short"]:  # room a later step made
            shown[at] = "full"
            if self._width(console, shown) > width:
                shown[at] = "short"
        return shown

    def _savings(self) -> list[tuple[int, Shown]]:
        """What to give up, in order: short headers, then paths (the widest first), then droppable
        columns (the highest `drop` first)."""
        indexed = list(enumerate(self.columns))
        paths = sorted((at for at, c in indexed if c.kind == "path"), key=self._cell_width, reverse=True)
        drops = sorted((at for at, c in indexed if c.drop and c.kind != "path"),
                       key=lambda at: -self.columns[at].drop)
        return ([(at, "short") for at, c in indexed if c.short]
                + [(at, "moved") for at in paths] + [(at, "dropped") for at in drops])

    def _cell_width(self, at: int) -> int:
        return max((Text.from_markup(row[at]).cell_len for row in self.rows), default=0)

    def _table(self, shown: Sequence[Shown], rows: Sequence[Sequence[str]] | None = None) -> Table:
        table = Table(title=self.title, title_justify="left", **(self.options or {}))
        kept = [at for at, how in enumerate(shown) if how in ("full", "short")]
        for at in kept:
            column = self.columns[at]
            wraps = column.kind == "text"
            header = column.short if shown[at] == "short" and column.short else column.name
            table.add_column(header, justify=column.justify, no_wrap=not wraps, overflow="fold")
        for row in self.rows if rows is None else rows:
            table.add_row(*(row[at] for at in kept))
        return table

    def _width(self, console: Console, shown: Sequence[Shown]) -> int:
        """The columns' room at the least: numbers and paths whole, text at its longest word (and up to
        `TEXT_ROOM`), measured on a stand-in row so that the borders and padding count as drawn."""
        table = self._table(shown, rows=[[_stand_in(self._room(at)) for at in range(len(self.columns))]])
        return Measurement.get(console, console.options.update_width(1 << 20), table).maximum

    def _room(self, at: int) -> int:
        column = self.columns[at]
        if column.kind != "text":
            return self._cell_width(at)
        words = [len(word) for row in self.rows for word in Text.from_markup(row[at]).plain.split()]
        return max(max(words, default=0), min(self._cell_width(at), TEXT_ROOM))


def _stand_in(width: int) -> str:
    return "x" * width
