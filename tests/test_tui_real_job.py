"""The TUI on a real running job: the tiny DeepSeek-V3 under msrun on a local cluster (two nodes on this
machine), followed by the jobs screen and the job screen, a traceback injected on one rank named first,
and a stop from the screen that leaves no process of the job."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from console.app import AscendConsole
from console.screens.confirm import ConfirmScreen
from console.screens.job import JobScreen
from console.screens.jobs import JobsScreen
from console.services import ConsoleServices
from console.store import Store
from console.widgets.job_table import JobTable
from console.widgets.job_tables import ErrorTable
from console.widgets.loss_chart import LossChart
from remote.inventory import load_cluster
from remote.pool import NodePool
from tests.handjobs import marked
from tests.rank_jobs import REPO, write_job
from tests.test_logs_local import local_cluster
from tests.test_tui_jobs import NoHealth

WAIT = 300.0
TRACEBACK = ("Traceback (most recent call last):\n  File \"/job/code/model/train.py\", line 88, in <module>\n"
             "    sys.exit(main())\nRuntimeError: injected failure on rank 0\n")


async def until(pilot: Pilot[None], condition: Callable[[], bool], what: str, wait: float = WAIT) -> None:
    deadline = time.monotonic() + wait
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await pilot.pause(0.2)


def points(chart: LossChart) -> int:
    return sum(len(series) for series in chart.series().values())


@pytest.fixture
def launched(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A long tiny job (1,000 steps) launched by the CLI on a local cluster; stopped at the end anyway."""
    cluster = local_cluster(tmp_path)
    job = write_job(tmp_path, "train_dataset.data_loader.sizes=[8000, 0, 0]",
                    "callbacks[0].per_print_times=1")
    env = {**os.environ, "ASCEND_CONSOLE_STATE": str(tmp_path / "state"),
           "ASCEND_CONSOLE_CORPUS": str(tmp_path / "corpus")}
    cli = [sys.executable, "-m", "console.cli", "-c", str(cluster)]
    done = subprocess.run([*cli, "launch", str(job), "--json"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    job_id = json.loads(done.stdout)["job_id"]
    yield cluster, job_id
    subprocess.run([*cli, "stop", job_id, "--timeout", "5"], cwd=REPO, env=env, capture_output=True,
                   timeout=120, check=False)


def test_a_running_job_watched_in_the_tui_then_stopped_from_it(launched: tuple[Path, str], tmp_path: Path):
    cluster_path, job_id = launched
    cluster = load_cluster(cluster_path)
    store = Store(tmp_path / "state" / "console.db")
    services = ConsoleServices(cluster, NoHealth(), NodePool(cluster), store, refresh=3600)
    app = AscendConsole(services, mode="jobs")
    worker_0 = tmp_path / "n0" / "jobs" / job_id / "logs" / "worker_0.log"

    async def script(pilot: Pilot[None]) -> None:
        jobs = pilot.app.screen
        assert isinstance(jobs, JobsScreen)
        table = jobs.query_one(JobTable)
        await until(pilot, lambda: table.row_count == 1 and str(table.get_row_at(0)[0]) == job_id, "listed")
        table.focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, JobScreen), "the job screen")
        screen = pilot.app.screen
        assert isinstance(screen, JobScreen)
        chart = screen.query_one(LossChart)
        await until(pilot, lambda: points(chart) >= 2, "the first steps charted")
        seen = points(chart)
        await until(pilot, lambda: points(chart) > seen, "more steps charted as they come")
        last = next(p for path, p in screen.panes.items() if path.endswith("worker_1.log"))
        assert any("loss:" in s.line.text for _, s in last.view.store.since(last.view.store.first))

        with worker_0.open("a") as log:  # rank 0 "raises": its traceback lands in its log
            log.write(TRACEBACK)
        errors = screen.query_one(ErrorTable)
        def first_marked() -> bool:
            return any(str(errors.get_row_at(i)[0]) == "first" for i in range(errors.row_count))

        await until(pilot, first_marked, "the traceback listed and marked first", wait=60)
        row = next(i for i in range(errors.row_count) if str(errors.get_row_at(i)[0]) == "first")
        assert [str(c) for c in errors.get_row_at(row)[1:3]] == ["n0", "0"]
        errors.focus()
        errors.move_cursor(row=row)
        await pilot.press("enter")
        pane = next(p for path, p in screen.panes.items() if path.endswith("worker_0.log"))
        await until(pilot, lambda: pane.has_focus_within, "its pane focused", wait=30)

        await pilot.press("s")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "asked first", wait=10)
        await pilot.press("y")
        await until(pilot, lambda: not marked(job_id, "n0") and store.job(job_id).finished,
                    "no process of the job left, and the job ended", wait=120)
        assert store.job(job_id).state == "stopped"

    async def run() -> None:
        async with app.run_test(size=(160, 50)) as pilot:
            await script(pilot)

    asyncio.run(run())
