"""The demo in the console: the same steps as `demo --headless`, landing on the job's screen, then the
trained model's answer; on a clean state (XDG directories and corpus in tmp_path), 20 real steps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from console.app import AscendConsole
from console.jobs.demo import DemoOptions
from console.screens.demo import AnswerScreen
from console.screens.job import JobScreen
from console.services import ConsoleServices
from remote.inventory import embedded_default_path, load_cluster
from tests.test_demo import clean_env

WAIT = 900.0


async def until(pilot: Pilot[None], condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await pilot.pause(0.5)


def test_the_demo_in_the_console_lands_on_the_job_then_shows_the_answer(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch):
    for name, value in clean_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ASCEND_CONSOLE_STATE", raising=False)
    cluster = load_cluster(embedded_default_path())
    services = ConsoleServices.for_cluster(cluster, refresh=3600, timeout=30)
    app = AscendConsole(services, mode="jobs", demo=DemoOptions(steps=20, train_limit=600))

    async def script(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, JobScreen), "the job's screen")
        job = pilot.app.screen
        assert isinstance(job, JobScreen)
        await until(pilot, lambda: isinstance(pilot.app.screen, AnswerScreen), "the answer")
        answer = pilot.app.screen
        text = " ".join(str(s.render()) for s in answer.query("Static"))
        assert "The demo passed" in text and "Return the number of" in text, text
        assert services.store is not None and services.store.job(job.job_id).state == "exited"

    async def run() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await script(pilot)

    asyncio.run(run())
