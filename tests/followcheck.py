"""What the follower tests share: a thread-safe batch collector and the byte-for-byte check."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

from remote.follow import FileCursor, FollowBatch, FollowedLine, FollowNotice


class Collector:
    """on_batch for a test: keeps every batch (or, with keep_lines=False, only counts lines)."""

    def __init__(self, *, keep_lines: bool = True) -> None:
        self.keep_lines = keep_lines
        self.lines: list[FollowedLine] = []
        self.notices: list[FollowNotice] = []
        self.line_count = 0
        self.batches = 0
        self.finished = False
        self.cursors: dict[str, FileCursor] = {}
        self.clock_offset: float | None = None
        self._lock = threading.Lock()

    def __call__(self, batch: FollowBatch) -> None:
        with self._lock:
            if self.keep_lines:
                self.lines += batch.lines
            else:
                self.lines = list(batch.lines[-3:])
            self.line_count += len(batch.lines)
            self.notices += batch.notices
            self.batches += 1
            self.finished = batch.finished
            self.cursors = dict(batch.cursors)
            self.clock_offset = batch.clock_offset

    def of(self, path: str) -> list[FollowedLine]:
        with self._lock:
            return [line for line in self.lines if line.path == path]

    def kinds(self, path: str | None = None) -> list[str]:
        with self._lock:
            return [n.kind for n in self.notices if n.path == path]

    def consumed(self, path: str) -> int:
        with self._lock:
            cursor = self.cursors.get(path)
        return cursor.offset if cursor else 0


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def assert_exactly(lines: list[FollowedLine], content: bytes) -> None:
    """The lines are the file: numbered 1.., each starting where the last ended, none doubled."""
    assert [line.number for line in lines] == list(range(1, len(lines) + 1))
    assert lines[0].offset == 0 and all(a.end == b.offset for a, b in itertools.pairwise(lines))
    assert "".join(line.text + "\n" for line in lines).encode() == content
