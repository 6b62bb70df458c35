"""The jobs table: a row per job, keyed by id: state, nodes, step, loss, step time, ETA, first failure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.binding import Binding, BindingType

from console.feeds.jobs import JobSummary
from console.jobs.view import age_text, state_text
from console.widgets.keyed_table import Cell, Column, KeyedTable, Row

STATE_TONES = {"running": "ok", "starting": "busy", "launching": "busy", "stopping": "warn",
               "exited": "ok", "failed": "fail", "stopped": "warn", "lost": "fail", "planned": "dim"}
FAILURE_WIDTH = 60


def job_row(summary: JobSummary, *, now: float) -> Row:
    job, lead = summary.job, summary.lead
    step = "" if lead is None else (f"{lead.step}/{lead.total_steps}" if lead.total_steps else str(lead.step))
    loss = "" if lead is None or lead.loss is None else f"{lead.loss:.4f}"
    step_time = "" if lead is None or lead.per_step_ms is None else f"{lead.per_step_ms / 1000:.2f}s"
    eta = "" if job.finished or lead is None or lead.eta_seconds is None else age_text(lead.eta_seconds)
    failure = summary.first_failure
    failure_text = "" if failure is None else failure.describe()
    if len(failure_text) > FAILURE_WIDTH:
        failure_text = failure_text[: FAILURE_WIDTH - 1] + "…"
    tone = STATE_TONES.get(job.state, "")
    return (Cell(job.id, tone), Cell(state_text(job), tone), Cell(summary.nodes), Cell(step), Cell(loss),
            Cell(step_time), Cell(eta), Cell(age_text(now - job.created_at)), Cell(failure_text, "fail"))


class JobTable(KeyedTable):
    """Enter opens the highlighted job."""

    COLUMNS: ClassVar[tuple[Column, ...]] = (
        Column("job", "job"), Column("state", "state"), Column("nodes", "nodes"), Column("step", "step"),
        Column("loss", "loss"), Column("time", "s/step", optional=True), Column("eta", "ETA"),
        Column("age", "age", optional=True), Column("failure", "first failure", optional=True),
    )
    TONE_PREFIX: ClassVar[str] = "job-table--"
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        f"job-table--{tone}" for tone in ("ok", "busy", "warn", "fail", "dim")}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open", tooltip="The job's logs, chart, errors and ranks",
                id="job-table.open"),
    ]
    DEFAULT_CSS = """
    JobTable { height: 1fr; scrollbar-size-horizontal: 1; }
    JobTable > .job-table--ok { color: $text-success; }
    JobTable > .job-table--busy { color: $text-accent; }
    JobTable > .job-table--warn { color: $text-warning; }
    JobTable > .job-table--fail { color: $text-error; }
    JobTable > .job-table--dim { color: $text-muted; }
    """

    def show(self, jobs: Sequence[JobSummary], *, now: float) -> None:
        """Few rows, changing now and then: laid out whole again when anything changed (cells that grew
        do not always get their column's new width on the next frame when updated one by one)."""
        rows = [(summary.job.id, job_row(summary, now=now)) for summary in jobs]
        if rows != list(self.shown_rows.items()):
            self.reorder(rows)
