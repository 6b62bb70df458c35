"""The job screen's tables: every error event (the first failure marked), and every node and rank."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual.binding import Binding, BindingType

from console.clock import clock_text
from console.jobs.view import age_text
from console.records import LaunchRecord, LogEventRecord
from console.widgets.keyed_table import Cell, Column, KeyedTable, Row
from model.logsummary import stalled


def error_key(event: LogEventRecord) -> str:
    return f"{event.node}\0{event.path}\0{event.line}"


def error_row(event: LogEventRecord, *, first: bool) -> Row:
    rank = "" if event.rank is None else str(event.rank)
    when = "" if event.time is None else clock_text(event.time)
    head = event.lines[0] if event.lines else event.message
    tone = "first" if first else "error"
    return (Cell("first" if first else "", tone), Cell(event.node), Cell(rank), Cell(when),
            Cell(event.kind, tone), Cell(event.message if event.message else head))


class ErrorTable(KeyedTable):
    """Enter asks the screen to show the highlighted error in its log pane."""

    TONE_PREFIX: ClassVar[str] = "error-table--"
    COLUMNS: ClassVar[tuple[Column, ...]] = (
        Column("first", ""), Column("node", "node"), Column("rank", "rank"), Column("time", "time"),
        Column("kind", "kind"), Column("message", "message"))
    COMPONENT_CLASSES: ClassVar[set[str]] = {"error-table--first", "error-table--error"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Show in its log", id="error-table.show"),
    ]
    DEFAULT_CSS = """
    ErrorTable { scrollbar-size-horizontal: 1; }
    ErrorTable > .error-table--first { color: $text-error; text-style: bold reverse; }
    ErrorTable > .error-table--error { color: $text-error; }
    """

    def show(self, events: Sequence[LogEventRecord], first: LogEventRecord | None) -> None:
        first_key = error_key(first) if first is not None else None
        ordered = sorted(events, key=lambda e: (e.time or 0.0, e.id or 0))
        rows = [(error_key(e), error_row(e, first=error_key(e) == first_key)) for e in ordered]
        if rows != list(self.shown_rows.items()):  # few rows: redrawn whole, in time order
            self.reorder(rows)


@dataclass(frozen=True)
class RankState:
    """What the screen knows of one rank: from the node's launch and from the rank's own log."""

    node: str
    rank: int
    node_state: str
    exit_code: int | None = None
    step: int | None = None
    total_steps: int | None = None
    loss: float | None = None
    per_step_ms: float | None = None
    last_line_at: float | None = None
    """When its log last gained a line (console clock); None: its log is not followed."""

    def stalled(self, now: float) -> bool:
        if self.node_state != "running" or self.last_line_at is None:
            return False
        return stalled(now - self.last_line_at, self.per_step_ms)


def rank_row(state: RankState, *, now: float) -> Row:
    stalled = state.stalled(now)
    shown = "stalled" if stalled else state.node_state
    tone = "fail" if stalled or state.node_state in ("failed", "lost") or state.exit_code not in (None, 0) \
        else "ok" if state.node_state in ("running", "exited") else ""
    step = "" if state.step is None else (f"{state.step}/{state.total_steps}" if state.total_steps
                                          else str(state.step))
    loss = "" if state.loss is None else f"{state.loss:.4f}"
    silent = "" if state.last_line_at is None else age_text(now - state.last_line_at)
    code = "" if state.exit_code is None else str(state.exit_code)
    return (Cell(state.node), Cell(str(state.rank)), Cell(shown, tone), Cell(code), Cell(step), Cell(loss),
            Cell(silent, "fail" if stalled else ""))


class RankTable(KeyedTable):
    """Every node and rank of the job."""

    TONE_PREFIX: ClassVar[str] = "rank-table--"
    COLUMNS: ClassVar[tuple[Column, ...]] = (
        Column("node", "node"), Column("rank", "rank"), Column("state", "state"), Column("exit", "exit"),
        Column("step", "step"), Column("loss", "loss"), Column("quiet", "last line"))
    COMPONENT_CLASSES: ClassVar[set[str]] = {"rank-table--ok", "rank-table--fail"}
    DEFAULT_CSS = """
    RankTable > .rank-table--ok { color: $text-success; }
    RankTable > .rank-table--fail { color: $text-error; text-style: bold; }
    """

    def show(self, ranks: Sequence[RankState], *, now: float) -> None:
        self.show_rows([(f"{r.node}\0{r.rank}", rank_row(r, now=now)) for r in ranks])


def node_states(launches: Sequence[LaunchRecord]) -> dict[str, tuple[str, int | None]]:
    return {launch.node: (launch.effective_state, launch.exit_code) for launch in launches}
