"""Printing followed logs on a terminal: a prefix per node and rank in the rank's colour, errors
highlighted; or one JSON event per line (docs/logs-json.md). Used by `logs` and `launch --follow`."""

from __future__ import annotations

import json
import posixpath
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

from console.jobs.joblog import JobEvent, JobLine, JobLogBatch
from console.jobs.logview import (
    failed_document,
    job_event_document,
    log_event_document,
    notice_document,
    run_ended_document,
)
from console.render import stdout_console
from model.logevents import LAUNCHER_SOURCE, LogEvent, line_severity

RANK_STYLES = ("cyan", "magenta", "green", "blue", "bright_cyan", "bright_magenta", "bright_green",
               "bright_blue")
SEVERITY_STYLES = {"error": "bold red", "warning": "yellow"}


class LogPrinter:
    """Filters and prints batches as they come; remembers per file whether --since-step was reached."""

    def __init__(self, *, json: bool = False, errors_only: bool = False, since_step: int | None = None,
                 ranks: Sequence[int] | None = None, console: Console | None = None) -> None:
        self.json, self.errors_only, self.since_step = json, errors_only, since_step
        self.ranks = set(ranks) if ranks else None
        self.console = console or stdout_console()
        self._reached: dict[str, int] = {}
        """Per file: the first line at or after the loss line of step `since_step`."""

    # --- a job's batches ---------------------------------------------------------------------------

    def batch(self, batch: JobLogBatch) -> None:
        for event in batch.events:
            self._note_step(event.file.path, event.event)
        if self.json:
            self._json_batch(batch)
        elif self.errors_only:
            for event in batch.events:
                if event.event.severity == "error":
                    self._print_error(event.file.label, event.event)
        else:
            for line in batch.lines:
                if self._shows(line):
                    self._print_line(line.file.label, line.file.rank, line.text, line.severity)
            for event in batch.events:  # msrun's own traceback: its lines do not look like msrun's
                if event.event.source == LAUNCHER_SOURCE:
                    self._print_error(event.file.label, event.event)
            for notice in batch.notices:
                self.console.print(Text(f"{batch.node}: {shown(notice.message)}", style="dim"))
        if not self.json:
            self._print_end(batch)

    def _print_end(self, batch: JobLogBatch) -> None:
        """The node's run ended, or following it failed."""
        if batch.exit_code is not None:
            style = "green" if batch.exit_code == 0 else "bold red"
            self.console.print(Text(f"{batch.node}: run ended with exit code {batch.exit_code}", style=style))
        if batch.error is not None:
            self.console.print(Text(f"{batch.node}: following its logs failed: {batch.error}",
                                    style="bold red"))

    def _shows(self, line: JobLine) -> bool:
        if line.copy:
            return False
        if line.file.role == "worker":
            if self.ranks is not None and line.file.rank not in self.ranks and line.severity != "error":
                return False
            if self.since_step is not None and line.number < self._reached.get(line.file.path, 1 << 62):
                return False
        return True

    def _json_batch(self, batch: JobLogBatch) -> None:
        now = time.time()
        documents: list[dict[str, Any]] = [job_event_document(e) for e in batch.events if self._wanted(e)]
        if not self.errors_only:
            documents += [notice_document(batch.node, notice, now) for notice in batch.notices]
        if batch.exit_code is not None:
            documents.append(run_ended_document(batch.node, batch.exit_code, now))
        if batch.error is not None:
            documents.append(failed_document(batch.node, batch.error, now))
        _write_json(documents)

    def _wanted(self, event: JobEvent) -> bool:
        if self.errors_only:
            return event.event.severity == "error"
        if event.file.role == "worker" and self.ranks is not None and event.rank not in self.ranks:
            return event.event.severity == "error"
        loss = event.event.loss
        return not (self.since_step is not None and loss is not None and loss.step < self.since_step)

    def _note_step(self, path: str, event: LogEvent) -> None:
        if self.since_step is None or path in self._reached:
            return
        if event.loss is not None and event.loss.step >= self.since_step:
            self._reached[path] = event.line

    # --- files on this machine -----------------------------------------------------------------------

    def file(self, path: str, lines: Sequence[str], events: Iterable[LogEvent], *, first: int = 1) -> None:
        """A part of a file on this machine: `lines` numbered from `first`, the events parsed so far
        that were not printed yet (a file is printed part by part, never held whole)."""
        events = list(events)
        for event in events:
            self._note_step(path, event)
        if self.json:
            _write_json([log_event_document(e, node=None, rank=None, file=path, time=e.time) for e in events
                         if (e.severity == "error" or not self.errors_only)
                         and not (self.since_step is not None and e.loss is not None
                                  and e.loss.step < self.since_step)])
            return
        label = posixpath.basename(path)
        if self.errors_only:
            for event in (e for e in events if e.severity == "error"):
                self._print_error(label, event)
            return
        start = self._reached.get(path, 1 << 62) if self.since_step is not None else 1
        for number, text in enumerate(lines, start=first):
            if number >= start:
                self._print_line(label, None, text, line_severity(text))

    # --- output ------------------------------------------------------------------------------------

    def _print_line(self, label: str, rank: int | None, text: str, severity: str | None) -> None:
        prefix_style = RANK_STYLES[rank % len(RANK_STYLES)] if rank is not None else "dim"
        line = Text.assemble((f"{label:<12} ", prefix_style),
                             (shown(text), SEVERITY_STYLES.get(severity or "", "")))
        self.console.print(line, overflow="ignore", crop=False)

    def _print_error(self, label: str, event: LogEvent) -> None:
        heading = f"{label}: {event.kind} at line {event.line}: {shown(event.message)}"
        self.console.print(Text(heading, style="bold red"))
        for text in event.lines:
            self.console.print(Text(f"    {shown(text)}"), overflow="ignore", crop=False)


_CONTROLS = {code: 0x2400 + code for code in range(0x20) if code != 0x09} | {0x7F: 0x2421} | {
    code: 0xFFFD for code in range(0x80, 0xA0)}
"""C0 controls as their pictures (ESC -> ␛), DEL as ␡, C1 controls as �; tab kept."""


def shown(text: str) -> str:
    """A remote log's text made safe for a terminal: no escape sequence of it reaches the terminal."""
    return text.translate(_CONTROLS)


def _write_json(documents: Sequence[dict[str, Any]]) -> None:
    if documents:
        # allow_nan=False: NaN is not JSON; the documents carry null (and a *_text) instead
        text = "".join(json.dumps(d, ensure_ascii=False, allow_nan=False) + "\n" for d in documents)
        sys.stdout.write(text)
        sys.stdout.flush()
