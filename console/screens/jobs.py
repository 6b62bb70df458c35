"""The jobs screen: every job in the store, running first, refreshed from the nodes in the background."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from console.feeds.jobs import JobsSnapshot, JobSummary
from console.jobs.view import age_text
from console.screens.stopping import stop_from_screen
from console.services import ConsoleServices
from console.widgets.job_table import JobTable


def detail_line(summary: JobSummary | None) -> str:
    """The highlighted job in one line: where it is, and what failed first."""
    if summary is None:
        return "no job yet: launch one with `ascend-console launch JOB.yaml`"
    job = summary.job
    parts = [f"{job.id} · {job.state} · {summary.nodes}"]
    failure = summary.first_failure
    if failure is not None:
        parts.append(f"first failure: {failure.describe()}")
    return " · ".join(parts)


class JobsScreen(Screen[None]):
    """Every job the store knows, launched from here, from the CLI or from another console."""

    HELP_TITLE = "jobs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "stop", "Stop", tooltip="Stop the highlighted job on every node", id="jobs.stop"),
        Binding("r", "refresh", "Refresh", tooltip="Ask the jobs' nodes now", id="jobs.refresh"),
    ]

    def __init__(self, services: ConsoleServices) -> None:
        super().__init__()
        self.services = services
        self._summaries: dict[str, JobSummary] = {}

    def compose(self) -> ComposeResult:
        with Vertical(id="header"):
            yield Static("jobs · reading the store…", id="jobs-summary", markup=False)
        yield JobTable(id="job-table")
        yield Static("", id="job-detail", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        if self.services.store is None:
            self.query_one("#jobs-summary", Static).update(
                f"jobs · the store cannot be used: {self.services.store_error}")
        self.watch(self.app, "jobs", self._show, init=True)

    def _show(self, snapshot: JobsSnapshot | None) -> None:
        if snapshot is None:
            return
        self._summaries = {s.job.id: s for s in snapshot.jobs}
        running = sum(not s.job.finished for s in snapshot.jobs)
        note = f" · {len(snapshot.unreachable)} not reached" if snapshot.unreachable else ""
        self.query_one("#jobs-summary", Static).update(
            f"jobs · {running} running, {len(snapshot.jobs) - running} ended · refreshed "
            f"{age_text(self.services.clock() - snapshot.finished_at)} ago{note}")
        self.query_one(JobTable).show(snapshot.jobs, now=self.services.clock())
        self._show_detail()

    @property
    def highlighted(self) -> JobSummary | None:
        key = self.query_one(JobTable).highlighted_key
        return self._summaries.get(key) if key else None

    def _show_detail(self) -> None:
        self.query_one("#job-detail", Static).update(detail_line(self.highlighted))

    def on_data_table_row_highlighted(self, _message: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        from console.screens.job import JobScreen

        job_id = message.row_key.value
        if job_id is not None:
            self.app.push_screen(JobScreen(self.services, job_id))

    async def action_refresh(self) -> None:
        await self.app.run_action("refresh_jobs")
        self.notify("asking the nodes…", timeout=2)

    def action_stop(self) -> None:
        summary = self.highlighted
        if summary is None:
            return
        stop_from_screen(self, self.services, summary.job)
