"""The jobs screen and the job screen, driven with Pilot on jobs built by hand on two local nodes: log
panes fill as lines are written, the chart gains points, the errors panel marks who failed first and
Enter shows the error in its pane; the jobs list shows what the store and the nodes say."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from textual.pilot import Pilot

from console.app import AscendConsole
from console.records import JobState
from console.screens.job import JobScreen, header_line
from console.screens.jobs import JobsScreen
from console.services import ConsoleServices
from console.store import Store
from console.widgets.job_table import JobTable
from console.widgets.job_tables import ErrorTable, RankTable
from console.widgets.loss_chart import LossChart
from remote.health import NodeHealth
from remote.inventory import load_cluster
from remote.pool import NodePool
from tests.handjobs import (
    JOB_ID,
    NODES,
    HandJob,
    hand_job,
    loss_line,
    losses,
    ms_line,
    started_line,
    traceback_lines,
    worker_exit_line,
    write,
)

WAIT = 30.0
CLOCK = 1_796_591_500.0
"""2026-12-06 21:11:40 UTC: the snapshots' fixed now."""


class NoHealth:
    """These tests are about jobs: health rounds report nothing."""

    def check(self) -> Sequence[NodeHealth]:
        return ()

    def close(self) -> None:
        pass


def cluster_file(tmp_path: Path) -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text("name: hand\nnodes:\n" + "".join(
        f"  - name: {node}\n    transport: local\n    workdir: {tmp_path / node}\n    cluster_ip: 127.0.0.1\n"
        for node in NODES))
    return path


def failed_job(tmp_path: Path) -> HandJob:
    """Rank 3 (node1, pid 3811) raised after step 17, ten seconds before msrun on node1 saw its worker
    exit; both runs ended 1."""
    job = hand_job(tmp_path)
    for rank in range(3):
        write(job.log(rank), losses(1, 20))
    write(job.log(3), [ms_line(3811, "rank 3 registered", stamp="2026-12-06-21:07:01.000.000")])
    write(job.log(3), [loss_line(step, 9.0, stamp="2026-12-06 21:07:05,000") for step in range(1, 18)])
    write(job.log(3), traceback_lines("rank 3 fails"))
    write(job.console("node0"), [started_line(0), started_line(1)])
    write(job.console("node1"), [started_line(2), started_line(3), worker_exit_line(3811, 1)])
    job.exited("node0", 1)
    job.exited("node1", 1)
    return job


def app_on(tmp_path: Path, job: HandJob, *, mode: str = "jobs", open_job: bool = True,
           clock: Callable[[], float] = time.time, state: JobState = "failed",
           exit_code: int | None = 1) -> AscendConsole:
    path = cluster_file(tmp_path)
    cluster = load_cluster(path)
    store = Store(tmp_path / "console.db")
    record = replace(job.record, cluster_file=str(path), state=state, exit_code=exit_code,
                     created_at=CLOCK - 754, updated_at=CLOCK - 60)
    store.create_job(record)
    services = ConsoleServices(cluster, NoHealth(), NodePool(cluster), store, refresh=3600, clock=clock)
    return AscendConsole(services, mode=mode, job_id=JOB_ID if open_job else None)


async def until(pilot: Pilot[None], condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await pilot.pause(0.05)


def drive(app: AscendConsole, script: Callable[[Pilot[None]], Awaitable[None]],
          size: tuple[int, int] = (80, 24)) -> None:
    import asyncio

    async def run() -> None:
        async with app.run_test(size=size) as pilot:
            await script(pilot)

    asyncio.run(run())


def points(chart: LossChart) -> int:
    return sum(len(series) for series in chart.series().values())


def job_screen(pilot: Pilot[None]) -> JobScreen:
    screen = pilot.app.screen
    assert isinstance(screen, JobScreen), screen
    return screen


def test_the_job_screen_marks_who_failed_first_and_enter_shows_it_in_its_pane(tmp_path: Path):
    job = failed_job(tmp_path)

    async def script(pilot: Pilot[None]) -> None:
        screen = job_screen(pilot)
        errors = screen.query_one(ErrorTable)
        await until(pilot, lambda: errors.row_count >= 2, "both errors listed")
        first = [errors.get_row_at(i) for i in range(errors.row_count)
                 if str(errors.get_row_at(i)[0]) == "first"]
        assert len(first) == 1 and [str(c) for c in first[0][1:3]] == ["node1", "3"], first
        assert "rank 3 fails" in str(first[0][5])
        # rank 0 and the last rank by default, rank 2 too: its node's msrun reported a failure
        await until(pilot, lambda: {"worker_0.log", "worker_2.log", "worker_3.log"} <=
                    {p.rsplit("/", 1)[-1] for p in screen.panes}, "panes of ranks 0, 2 and 3")
        assert points(screen.query_one(LossChart)) > 0
        await pilot.press("3")  # errors, alone at 80 columns
        assert errors.display and not screen.query_one("#log-grid").display
        errors.focus()
        row = next(i for i in range(errors.row_count) if str(errors.get_row_at(i)[0]) == "first")
        errors.move_cursor(row=row)
        await pilot.press("enter")
        pane = next(p for path, p in screen.panes.items() if path.endswith("worker_3.log"))
        await until(pilot, lambda: screen.query_one("#log-grid").display and pane.has_focus_within,
                    "the traceback's pane shown and focused")

    drive(app_on(tmp_path, job), script)


def test_lines_written_while_the_screen_is_open_reach_the_pane_and_the_chart(tmp_path: Path):
    job = hand_job(tmp_path)
    write(job.log(0), losses(1, 3))
    write(job.log(3), losses(1, 3))

    async def script(pilot: Pilot[None]) -> None:
        screen = job_screen(pilot)
        await until(pilot, lambda: len(screen.panes) == 2, "panes of rank 0 and rank 3")
        chart = screen.query_one(LossChart)
        await until(pilot, lambda: points(chart) >= 6, "the first steps charted")
        write(job.log(3), losses(4, 40))
        await until(pilot, lambda: points(chart) >= 43, "steps written later charted")
        pane = next(p for path, p in screen.panes.items() if path.endswith("worker_3.log"))
        await until(pilot, lambda: len(pane.view.store) >= 40, "the pane has every line")
        ranks = screen.query_one(RankTable)
        assert ranks.row_count == 4

    drive(app_on(tmp_path, job), script, size=(160, 50))


def test_the_jobs_screen_lists_the_job_and_enter_opens_it(tmp_path: Path):
    job = failed_job(tmp_path)

    async def script(pilot: Pilot[None]) -> None:
        screen = pilot.app.screen
        assert isinstance(screen, JobsScreen)
        table = screen.query_one(JobTable)
        await until(pilot, lambda: table.row_count == 1, "the job listed")
        assert str(table.get_row_at(0)[1]) == "failed (1)"
        table.focus()
        detail = screen.query_one("#job-detail")
        await until(pilot, lambda: "first failure: node1 rank 3: traceback" in str(detail.render()),
                    "its first failure said under the table")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, JobScreen), "the job screen open")
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, JobsScreen)

    drive(app_on(tmp_path, job, open_job=False), script)


async def settle(pilot: Pilot[None]) -> None:
    """Until what was shown last is drawn: messages handled, a frame, messages again."""
    await pilot.pause()
    await pilot.pause(0.3)
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


async def every_error_read(pilot: Pilot[None]) -> None:
    screen = job_screen(pilot)
    errors = screen.query_one(ErrorTable)
    def marked() -> bool:
        return any(str(errors.get_row_at(i)[0]) == "first" for i in range(errors.row_count))

    await until(pilot, lambda: screen.feed is not None and screen.feed.finished and marked(),
                "everything read")
    await settle(pilot)


async def listed(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, AscendConsole)
    await until(pilot, lambda: app.jobs is not None and app.jobs.rounds >= 1, "the nodes and logs read")
    await settle(pilot)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_snapshot_job_screen_of_a_failed_job(snap_compare, size, tmp_path: Path, utc: None):
    # A person sees: the job failed, rank 3's traceback marked first; at 80x24 the log panes
    # (rank 0 on top), at 160x50 panes, chart, errors and every rank at once.
    app = app_on(tmp_path, failed_job(tmp_path), clock=lambda: CLOCK)
    assert snap_compare(app, terminal_size=size, run_before=every_error_read)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_snapshot_jobs_screen(snap_compare, size, tmp_path: Path, utc: None):
    app = app_on(tmp_path, failed_job(tmp_path), open_job=False, clock=lambda: CLOCK)
    assert snap_compare(app, terminal_size=size, run_before=listed)


def test_the_job_header_says_less_before_it_would_wrap(tmp_path: Path):
    # At 80 columns a running job with checkpoints wrapped to a second line.
    job = replace(hand_job(tmp_path).record, state="running", created_at=CLOCK - 469, updated_at=CLOCK)
    wide = header_line(job, 173, 200, 54.0, now=CLOCK, checkpoints=2)
    assert wide == f"{job.id} · running 7m49s · step 173/200 (86%) · ETA 54s · 2 checkpoints"
    narrow = header_line(job, 173, 200, 54.0, now=CLOCK, checkpoints=2, width=78)
    assert narrow == f"{job.id} · running 7m49s · step 173/200 · ETA 54s · 2 ckpt"
    failed = replace(job, state="failed", first_failure={"node": "node1", "rank": 3})
    shortest = header_line(failed, 173, 200, None, now=CLOCK, width=78)
    assert shortest == f"{job.id} · failed 7m49s · step 173/200 · first: node1 r3"
