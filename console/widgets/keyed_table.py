"""A DataTable whose rows are keyed and refreshed by diff: only changed cells are touched.

Cells are plain data (`Cell`: text and a tone); a tone names one of the table's component
classes, so colours come from the stylesheet and the theme, never from Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.theme import Theme
from textual.widgets import DataTable


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


class KeyedTable(DataTable[Text]):
    """Subclasses name their columns and tones; callers hand whole rows to `show_rows`."""

    COLUMNS: ClassVar[tuple[Column, ...]] = ()
    TONE_PREFIX: ClassVar[str] = "keyed-table--"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self._rows: dict[str, Row] = {}

    def on_mount(self) -> None:
        # Textual calls every class's on_mount: subclasses add rows through first_rows instead
        for column in self.COLUMNS:
            self.add_column(column.label, key=column.key, width=column.width)
        self.show_rows(self.first_rows())
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    def first_rows(self) -> Sequence[tuple[str, Row]]:
        """What the table shows before the first `show_rows`."""
        return ()

    def show_rows(self, rows: Sequence[tuple[str, Row]]) -> None:
        """Make the table hold exactly `rows` (key, cells), touching only what changed.

        New keys are appended, vanished keys removed; the cursor stays on its row.
        """
        wanted = dict(rows)
        for key in [k for k in self._rows if k not in wanted]:
            self.remove_row(key)
            del self._rows[key]
        for key, row in rows:
            old = self._rows.get(key)
            if old is None:
                self.add_row(*(self._rendered(cell) for cell in row), key=key)
            else:
                self._update(key, old, row)
            self._rows[key] = row

    def _update(self, key: str, old: Row, new: Row) -> None:
        for column, before, after in zip(self.COLUMNS, old, new, strict=True):
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
            for column, cell in zip(self.COLUMNS, row, strict=True):
                if cell.tone:
                    self.update_cell(key, column.key, self._rendered(cell))

    @property
    def highlighted_key(self) -> str | None:
        """The key of the row under the cursor, if any."""
        if not self.row_count or not self.is_valid_row_index(self.cursor_row):
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return key
