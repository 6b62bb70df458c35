"""Stopping a job from a screen: asked first, done on a worker thread, the outcome per node as notices."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen

from console.feeds.jobs import JobsFeed
from console.jobs.service import stop_job, stop_text
from console.records import JobRecord
from console.screens.confirm import ConfirmScreen
from console.services import ConsoleServices

STOP_GRACE = 30
"""Seconds the ranks get to save a checkpoint and exit before SIGKILL (as `ascend-console stop`)."""


def stop_from_screen(screen: Screen[Any], services: ConsoleServices, job: JobRecord) -> None:
    """Ask, then stop every rank of `job` on every node and say what became of each node."""
    ended = f" It has already ended ({job.state}): what is left of it is stopped." if job.finished else ""
    question = f"Stop {job.id}?"
    detail = (f"SIGTERM to every rank on every node (they save a checkpoint), SIGKILL after "
              f"{STOP_GRACE} s, then a check that nothing is left.{ended}")

    def answered(yes: bool | None) -> None:
        if yes:
            screen.notify(f"stopping {job.id}…", timeout=STOP_GRACE)
            screen.run_worker(lambda: _stop(screen, services, job), thread=True, group=f"stop-{job.id}",
                              exit_on_error=False, description=f"stopping {job.id}")

    screen.app.push_screen(ConfirmScreen(question, detail), answered)


def _stop(screen: Screen[Any], services: ConsoleServices, job: JobRecord) -> None:
    if services.store is None:
        raise RuntimeError(f"the store cannot be used: {services.store_error}")
    with services.pool_for(job) as pool:
        outcome = stop_job(services.store, job.id, pool, grace=STOP_GRACE)
    for report in outcome.reports:
        severity = "information" if report.ok else "error"
        screen.app.call_from_thread(screen.notify, f"{report.node}: {stop_text(report)}",
                                    title=f"stop {job.id}", severity=severity, timeout=15)
    if outcome.checkpoint is not None:
        found = outcome.checkpoint
        said = f"checkpoint written: {found.path}" if found.path else found.error or "no checkpoint"
        screen.app.call_from_thread(screen.notify, f"{found.node}: {said}", title=f"stop {job.id}",
                                    severity="information" if found.path else "warning", timeout=30)
    screen.app.post_message(JobsFeed.RefreshNow())
