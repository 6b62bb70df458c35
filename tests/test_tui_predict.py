"""The job screen of a predict job, built by hand on two local nodes: the answer where a training job's
chart is, one entry per prompt with its time to the first token and tokens per second, `5` showing it
alone at 80 columns (a predict job has no `2` chart), `c` copying every entry."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from console.app import AscendConsole
from console.widgets.answer_pane import AnswerPane
from model.answers import PREDICT_OVER, SAVED_MARK, Speed, result_line, speed_line
from tests.handjobs import HandJob, hand_job, started_line, write
from tests.test_tui_jobs import CLOCK, app_on, drive, failed_job, job_screen, settle, until

BOS = "<\uff5cbegin\u2581of\u2581sentence\uff5c>"
ANSWERS = ("请介绍一下北京。北京是中华人民共和国的首都，有三千多年建城史，故宫、天坛和长城都在这里，"  # noqa: RUF001
           "每年有许多人来看它们。",
           "Return the number of lines in the file, counting the last one even when it has no newline "
           "at its end; an empty file has none.")


def predict_job(tmp_path: Path) -> HandJob:
    """Two prompts answered by every rank; rank 0's speeds 0.41 s and 0.38 s to the first token."""
    job = hand_job(tmp_path)
    plan = {**job.record.plan, "kind": "predict", "prompts": ["请介绍一下北京", "Return the number of"]}
    job = HandJob(job.record.__class__(**{**job.record.__dict__, "plan": plan}), job.dirs)
    prefix = "2026-12-06 21:10:05,122 - mindformers[predict.py:60] - INFO - "
    for rank, first in ((0, 0.41), (3, 0.52)):
        write(job.log(rank), [prefix + speed_line(Speed(1.9, 32, 16.8, first)),
                              prefix + speed_line(Speed(2.0, 32, 16.0, first - 0.03)),
                              prefix + result_line([BOS + text for text in ANSWERS]),
                              prefix + SAVED_MARK + "text_generation_result.txt", prefix + PREDICT_OVER])
    write(job.console("node0"), [started_line(0), started_line(1)])
    write(job.console("node1"), [started_line(2), started_line(3)])
    job.exited("node0", 0)
    job.exited("node1", 0)
    return job


def predict_app(tmp_path: Path) -> AscendConsole:
    return app_on(tmp_path, predict_job(tmp_path), clock=lambda: CLOCK, state="exited", exit_code=0)


async def answered(pilot: Pilot[None]) -> None:
    screen = job_screen(pilot)
    pane = screen.query_one(AnswerPane)
    await until(pilot, lambda: screen.feed is not None and screen.feed.finished and pane.answer is not None,
                "the answer read")
    await settle(pilot)


def test_the_answer_of_a_predict_job_one_entry_a_prompt_with_its_speed(tmp_path: Path):
    async def script(pilot: Pilot[None]) -> None:
        await answered(pilot)
        screen = job_screen(pilot)
        pane = screen.query_one(AnswerPane)
        assert pane.answer is not None and pane.answer.texts == ANSWERS and pane.answer.rank == 0
        heads = [str(w.render()) for w in pane.query(".answer-head")]
        assert heads == ["prompt 1 of 2 · first token 0.41 s · 32 tokens at 16.8 tokens/s",
                         "prompt 2 of 2 · first token 0.38 s · 32 tokens at 16.0 tokens/s"]
        assert not screen.query_one("#job-side").display  # 80 columns: the logs first
        await pilot.press("2")  # no chart for a predict job
        assert screen.view == "logs"
        await pilot.press("5")
        await settle(pilot)
        assert screen.query_one("#job-side").display and pane.display
        assert not screen.query_one("#log-grid").display and not screen.query_one("#error-table").display
        assert pane.has_focus
        await pilot.press("c")
        assert pilot.app.clipboard == "\n\n".join(ANSWERS)

    drive(predict_app(tmp_path), script)


async def answer_view(pilot: Pilot[None]) -> None:
    await answered(pilot)
    if pilot.app.size.width < 120:
        await pilot.press("5")
        await settle(pilot)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_snapshot_job_screen_of_a_predict_job(snap_compare, size, tmp_path: Path, utc: None):
    # A person sees: the job exited well, its two answers wrapped, each under its time to the first
    # token and tokens per second; at 80x24 the answer view alone (5), at 160x50 beside the panes.
    assert snap_compare(predict_app(tmp_path), terminal_size=size, run_before=answer_view)


def test_a_training_job_has_its_chart_and_no_answer_view(tmp_path: Path):
    async def script(pilot: Pilot[None]) -> None:
        screen = job_screen(pilot)
        await until(pilot, lambda: screen.job is not None, "the job read")
        assert screen.check_action("view", ("chart",)) and not screen.check_action("view", ("answer",))
        await pilot.press("5")
        assert screen.view == "logs"

    drive(app_on(tmp_path, failed_job(tmp_path)), script)
