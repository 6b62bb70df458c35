"""What a log pane holds, as data: a bounded line store and the rows a view of it takes. No widgets.

Lines are numbered in arrival order (`seq`, counted from 0 for the pane's life), so a line keeps its
number while older ones are dropped. A view is the seqs shown (all lines, or errors and warnings
only) with where each starts in rows (a wrapped line takes several); both grow at the end and lose
their front as the store drops lines, so appending never re-walks what is already there.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.jobs.joblog import JobLine

SEVERE = frozenset({"error", "warning"})
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class StoredLine:
    line: JobLine
    received: float
    """Console clock when the batch holding it reached the pane."""


def printable(text: str) -> str:
    """The text as one screen line: tabs expanded, other control characters (ANSI escapes, CR) shown as ?."""
    if "\t" in text:
        text = text.expandtabs(8)
    return _CONTROL.sub("?", text)


_MINDFORMERS_PREFIX = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - [\w.]+\[[^\]]*\] - (DEBUG|INFO|WARNING|ERROR|CRITICAL) - ")
_MINDSPORE_PREFIX = re.compile(
    r"\[(DEBUG|INFO|WARNING|ERROR|CRITICAL|EXCEPTION)\] ([A-Z_]+)\(\d+[,:]\w+,[^)]*\):\S+ "
    r"\[[^\]]*\] ?(?:\w+\] )?")


def short_prefix(text: str) -> str:
    """The line without its logger's prefix (time, process, source file: 60 columns a line), keeping the
    level where it is not INFO and MindSpore's module: `WARNING DISTRIBUTED Topology build timed out…`."""
    found = _MINDFORMERS_PREFIX.match(text)
    if found:
        level = found[1]
        return ("" if level == "INFO" else f"{level} ") + text[found.end():]
    found = _MINDSPORE_PREFIX.match(text)
    if found:
        level = found[1]
        return ("" if level == "INFO" else f"{level} ") + f"{found[2]} " + text[found.end():]
    return text


def is_severe(stored: StoredLine) -> bool:
    return stored.line.severity in SEVERE


class LineStore:
    """The newest `capacity` lines; `dropped` says how many older ones were let go."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"scrollback must hold at least one line, not {capacity}")
        self.capacity = capacity
        self.dropped = 0
        self._lines: list[StoredLine] = []
        self._head = 0
        """Index in _lines of the oldest kept line (the list is compacted now and then, not per drop)."""

    def __len__(self) -> int:
        return len(self._lines) - self._head

    @property
    def first(self) -> int:
        """Seq of the oldest line kept."""
        return self.dropped

    @property
    def end(self) -> int:
        """Seq the next line will get."""
        return self.dropped + len(self)

    def add(self, lines: Iterable[JobLine], received: float) -> int:
        """Keep `lines`; returns how many old lines this dropped."""
        self._lines.extend(StoredLine(line, received) for line in lines)
        excess = len(self) - self.capacity
        if excess <= 0:
            return 0
        self._head += excess
        self.dropped += excess
        if self._head >= self.capacity:
            del self._lines[: self._head]
            self._head = 0
        return excess

    def get(self, seq: int) -> StoredLine:
        if not self.first <= seq < self.end:
            raise IndexError(f"line {seq} is not kept (kept: {self.first}..{self.end - 1})")
        return self._lines[self._head + seq - self.dropped]

    def since(self, seq: int) -> Iterator[tuple[int, StoredLine]]:
        """(seq, line) of the kept lines from `seq` on."""
        start = max(seq, self.first)
        for index in range(self._head + start - self.dropped, len(self._lines)):
            yield self.dropped + index - self._head, self._lines[index]

    def locate(self, number: int) -> int | None:
        """Seq of the newest kept line that is line `number` of its file (a file that started over
        repeats numbers: the newest is the one being read now)."""
        for index in range(len(self._lines) - 1, self._head - 1, -1):
            if self._lines[index].line.number == number:
                return self.dropped + index - self._head
        return None


class RowMap:
    """The seqs a view shows and the row each starts at; `rows_of` says how many rows a line takes."""

    def __init__(self, rows_of: Callable[[StoredLine], int]) -> None:
        self._rows_of = rows_of
        self.seqs: list[int] = []
        self._starts: list[int] = []
        self._end = 0

    def add(self, seq: int, stored: StoredLine) -> None:
        self.seqs.append(seq)
        self._starts.append(self._end)
        self._end += self._rows_of(stored)

    def trim(self, first: int) -> int:
        """Forget lines before seq `first`; returns how many rows that removed from the top."""
        count = bisect_left(self.seqs, first)
        if not count:
            return 0
        before = self._starts[0]
        del self.seqs[:count], self._starts[:count]
        return (self._starts[0] if self._starts else self._end) - before

    @property
    def rows(self) -> int:
        return self._end - (self._starts[0] if self._starts else self._end)

    def at(self, y: int) -> tuple[int, int] | None:
        """(seq, row within the line) shown at row y of the view, if any."""
        if not self._starts or not 0 <= y < self.rows:
            return None
        index = bisect_right(self._starts, self._starts[0] + y) - 1
        return self.seqs[index], self._starts[0] + y - self._starts[index]

    def row_of(self, seq: int) -> int | None:
        """The row where line `seq` starts, if the view shows it."""
        index = bisect_left(self.seqs, seq)
        if index == len(self.seqs) or self.seqs[index] != seq:
            return None
        return self._starts[index] - self._starts[0]

    def index_at_or_after(self, seq: int) -> int:
        return bisect_left(self.seqs, seq)


def matches(query: str) -> Callable[[str], bool]:
    """Smart case: a query with no capital letter matches any case."""
    if query.lower() == query:
        return lambda text: query in text.lower()
    return lambda text: query in text


def find(store: LineStore, seqs: Sequence[int], query: str, start: int, *, forward: bool) -> int | None:
    """Seq of the next line of the view after (or before) position `start` holding `query`, wrapping
    around the view; `start` is an index into `seqs` (the current match, or where the reader is)."""
    if not query or not seqs:
        return None
    hit = matches(query)
    count = len(seqs)
    step = 1 if forward else -1
    for offset in range(1, count + 1):
        seq = seqs[(start + step * offset) % count]
        if hit(store.get(seq).line.text):
            return seq
    return None


def spans(text: str, query: str) -> list[tuple[int, int]]:
    """Where `query` occurs in `text` (smart case), as (start, end) pairs."""
    if not query:
        return []
    haystack, needle = (text.lower(), query) if query.lower() == query else (text, query)
    found: list[tuple[int, int]] = []
    at = haystack.find(needle)
    while at >= 0:
        found.append((at, at + len(needle)))
        at = haystack.find(needle, at + len(needle))
    return found
