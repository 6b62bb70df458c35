"""A serve job's screen for real on a local cluster: its server's log in a pane, and `t` talks to the
served model through the job's endpoint; Escape goes back to the job and `t` again finds the same
conversation."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from console.app import AscendConsole
from console.screens.chat import AnswerView, ChatScreen
from console.screens.job import JobScreen
from console.services import ConsoleServices
from remote.inventory import load_cluster
from tests.rank_jobs import write_job
from tests.serving import serve_files
from tests.test_logs_local import local_console
from tests.test_tui import until

ANSWER_LIMIT = 180.0
"""Seconds an answer may take on a loaded machine (a limit on the wait, not a speed check)."""


@pytest.mark.timeout(900)  # a server to start, an answer to write on a loaded machine: a limit on the wait
def test_a_serve_jobs_screen_shows_its_server_and_talks_to_it(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    console = local_console(tmp_path)
    monkeypatch.setenv("ASCEND_CONSOLE_STATE", str(tmp_path / "state"))  # the app's store: the same
    _, tokenizer = serve_files(tmp_path)
    job = write_job(tmp_path, f"processor.tokenizer.tokenizer_file={tokenizer}")
    done = console("launch", str(job), "--kind", "serve", "--nodes", "n0", "--json")
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    job_id = json.loads(done.stdout)["job_id"]
    services = ConsoleServices.for_cluster(load_cluster(tmp_path / "cluster.yaml"), refresh=3600, timeout=30)
    app = AscendConsole(services, mode="jobs", job_id=job_id)

    async def script(pilot: Pilot[None]) -> None:
        screen = pilot.app.screen
        assert isinstance(screen, JobScreen)
        [pane] = screen.panes.values()
        assert "server" in pane.log_title
        await until(pilot, lambda: len(pane.view.store) > 0, timeout=60)

        await pilot.press("t")
        await until(pilot, lambda: isinstance(pilot.app.screen, ChatScreen), timeout=60)
        chat = pilot.app.screen
        assert isinstance(chat, ChatScreen)
        await until(pilot, lambda: chat.model == "job", timeout=60)
        chat.query_one(Input).value = "Hello"
        await pilot.press("enter")
        await pilot.pause()
        view = chat.query(AnswerView).last()
        await until(pilot, lambda: "tokens/s" in str(view.footnote), timeout=ANSWER_LIMIT)

        await pilot.press("escape")  # no answer is being written: back to the job
        await until(pilot, lambda: pilot.app.screen is screen)
        await pilot.press("t")
        await until(pilot, lambda: pilot.app.screen is chat)
        assert [turn["role"] for turn in chat.conversation.turns] == ["user", "assistant"]

    async def run() -> None:
        try:
            async with app.run_test(size=(100, 30)) as pilot:
                await script(pilot)
        finally:
            services.close()

    try:
        asyncio.run(run())
    finally:
        stopped = console("stop", job_id)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
