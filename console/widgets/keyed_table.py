"""A DataTable whose rows are keyed and refreshed by diff: only changed cells are touched.

Cells are plain data (`Cell`: text and a tone); a tone names one of the table's component
classes, so colours come from the stylesheet and the theme, never from Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual.theme import Theme
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey


@dataclass(frozen=True)
class Cell:
    """One table cell as data: what it says, and the component class that colours it ("" for none)."""

    text: str
    tone: str = ""


Row = tuple[Cell, ...]


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int | None = None  # None: as wide as the widest cell
    optional: bool = False
    """Left out when the table would not fit its width (what it says is shown elsewhere too)."""


CELL_PADDING = 2


class KeyedTable(DataTable[Text]):
    """Subclasses name their columns and tones; callers hand whole rows to `show_rows`."""

    COLUMNS: ClassVar[tuple[Column, ...]] = ()
    TONE_PREFIX: ClassVar[str] = "keyed-table--"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self._rows: dict[str, Row] = {}
        self._shown: tuple[int, ...] = tuple(range(len(self.COLUMNS)))
        """Indices of the columns on screen (optional ones leave when the table is too narrow)."""

    def on_mount(self) -> None:
        # Textual calls every class's on_mount: subclasses add rows through first_rows instead
        self._add_columns()
        self.show_rows(self.first_rows())
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    def _add_columns(self) -> None:
        for index in self._shown:
            column = self.COLUMNS[index]
            self.add_column(column.label, key=column.key, width=column.width)

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """Leave optional columns out, the rightmost first, until the table fits its width (no cut header,
        no horizontal scroll)."""
        shown = list(range(len(self.COLUMNS)))
        optional = [i for i in shown if self.COLUMNS[i].optional]
        while self.size.width and optional and sum(self._width(i) for i in shown) > self.size.width:
            shown.remove(optional.pop())
        if tuple(shown) == self._shown:
            return
        self._shown = tuple(shown)
        cursor = self.cursor_row
        self.clear(columns=True)
        self._add_columns()
        for key, row in self._rows.items():
            self.add_row(*self._cells(row), key=key)
        self._size_columns()
        if self.row_count:
            self.move_cursor(row=min(cursor, self.row_count - 1))

    def _width(self, index: int) -> int:
        column = self.COLUMNS[index]
        widest = max((len(row[index].text) for row in self._rows.values()), default=0)
        return (column.width or max(len(column.label), widest)) + CELL_PADDING

    def _cells(self, row: Row) -> list[Text]:
        return [self._rendered(row[index]) for index in self._shown]

    def first_rows(self) -> Sequence[tuple[str, Row]]:
        """What the table shows before the first `show_rows`."""
        return ()

    def show_rows(self, rows: Sequence[tuple[str, Row]]) -> None:
        """Make the table hold exactly `rows` (key, cells), touching only what changed.

        New keys are appended, vanished keys removed; the cursor stays on its row (`reorder` moves rows).
        """
        wanted = dict(rows)
        for key in [k for k in self._rows if k not in wanted]:
            self.remove_row(key)
            del self._rows[key]
        for key, row in rows:
            old = self._rows.get(key)
            if old is None:
                self.add_row(*self._cells(row), key=key)
            else:
                self._update(key, old, row)
            self._rows[key] = row
        self._size_columns()
        self._fit()

    def reorder(self, rows: Sequence[tuple[str, Row]]) -> None:
        """Every row again, in the order given; the cursor stays on the row it was on while the table
        has the focus (someone is looking at it), else it goes back to the top."""
        kept = self.highlighted_key if self.has_focus else None
        self.clear(columns=True)  # the widths too: they would keep what rows no longer shown needed
        self._add_columns()
        self._rows = {}
        for key, row in rows:
            self.add_row(*self._cells(row), key=key)
            self._rows[key] = row
        if kept in self._rows:
            self.move_cursor(row=list(self._rows).index(kept))
        self._size_columns()
        self._fit()

    def _size_columns(self) -> None:
        """Columns as wide as their widest cell now: DataTable measures new rows only when it is next
        idle, and a frame drawn before that shows every column cut to its label."""
        for index in self._shown:
            column = self.COLUMNS[index]
            if column.width is None:
                widest = max((cell_len(row[index].text) for row in self._rows.values()), default=0)
                self.columns[ColumnKey(column.key)].content_width = max(cell_len(column.label), widest)

    def _update(self, key: str, old: Row, new: Row) -> None:
        for index in self._shown:
            column, before, after = self.COLUMNS[index], old[index], new[index]
            if before != after:
                self.update_cell(key, column.key, self._rendered(after), update_width=column.width is None)

    def _rendered(self, cell: Cell) -> Text:
        if not cell.tone:
            return Text(cell.text)
        style = self.get_component_rich_style(self.TONE_PREFIX + cell.tone, partial=True)
        return Text(cell.text, style=style)

    def _theme_changed(self, _theme: Theme) -> None:
        self.call_after_refresh(self._restyle)

    def _restyle(self) -> None:
        for key, row in self._rows.items():
            for index in self._shown:
                column, cell = self.COLUMNS[index], row[index]
                if cell.tone:
                    self.update_cell(key, column.key, self._rendered(cell))

    @property
    def shown_rows(self) -> dict[str, Row]:
        """Key -> row, in the order shown."""
        return dict(self._rows)

    @property
    def highlighted_key(self) -> str | None:
        """The key of the row under the cursor, if any."""
        if not self.row_count or not self.is_valid_row_index(self.cursor_row):
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return key
