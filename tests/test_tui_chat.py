"""The chat pane, against the real `model.serve` and against an endpoint that holds its answers: a
person types a question and sees the answer grow as it is written, then its figures; Escape stops an
answer at once and keeps what came, and the stopped answer's late news leaves the next one alone; when
the server dies mid-answer the pane says the endpoint is gone, gives the question back and the console
goes on. Snapshots at 80x24 and 160x50."""

from __future__ import annotations

import asyncio

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from console.app import AscendConsole, make_app
from console.feeds.answers import AnswerFeed
from console.screens.chat import AnswerView, ChatScreen
from console.serving.answer import AnswerStats
from console.serving.client import EndpointError
from console.serving.conversation import ChatSettings
from tests.held_endpoint import held_endpoint
from tests.recorded_health import CLOCK, fleet
from tests.serving import running_server
from tests.test_tui import Rounds, cluster_of, until

ANSWER_LIMIT = 180.0
"""Seconds an answer may take on a loaded machine (a limit on the wait, not a speed check)."""


def chat_app(url: str, *, max_tokens: int) -> AscendConsole:
    nodes = fleet(["healthy"])
    return make_app(cluster_of(nodes), Rounds(nodes), refresh=3600, clock=lambda: CLOCK,
                    chat=ChatSettings(url, max_tokens=max_tokens, temperature=0.0))


def chat_screen(pilot: Pilot[None]) -> ChatScreen:
    screen = pilot.app.screen
    assert isinstance(screen, ChatScreen)
    return screen


async def ask(pilot: Pilot[None], question: str) -> AnswerView:
    screen = chat_screen(pilot)
    screen.query_one(Input).value = question  # as if typed (or pasted)
    await pilot.press("enter")
    await pilot.pause()
    view = screen.query(AnswerView).last()
    assert view is not None
    return view


def test_answers_show_their_figures_and_go_into_the_history(tmp_path):
    async def run() -> None:
        with running_server(tmp_path) as server:
            app = chat_app(server.url, max_tokens=24)
            async with app.run_test(size=(80, 24)) as pilot:
                screen = chat_screen(pilot)
                await until(pilot, lambda: screen.model == "tiny", timeout=30)
                assert "freshly initialised" in str(screen.query_one("#chat-warning").render())
                view = await ask(pilot, "Hello")
                await until(pilot, lambda: "tokens/s" in str(view.footnote), timeout=ANSWER_LIMIT)
                assert "first token" in str(view.footnote) and view.text
                assert screen.conversation.turns == [{"role": "user", "content": "Hello"},
                                                     {"role": "assistant", "content": view.text}]

    asyncio.run(run())


def test_an_answer_shows_as_it_is_written_and_escape_stops_it_at_once(tmp_path):
    # the endpoint holds each answer after its first piece, so what the pane shows meanwhile is certain
    async def run() -> None:
        with held_endpoint() as endpoint:
            app = chat_app(endpoint.url, max_tokens=24)
            async with app.run_test(size=(80, 24)) as pilot:
                screen = chat_screen(pilot)
                await until(pilot, lambda: screen.model == "held", timeout=30)
                first = await ask(pilot, "Hello")
                await until(pilot, lambda: first.text == "a", timeout=30)
                assert str(first.footnote) == "…"  # written so far, not ended
                endpoint.answer(1).release.set()
                await until(pilot, lambda: "tokens/s" in str(first.footnote), timeout=30)
                assert first.text == "ab"

                second = await ask(pilot, "More")
                await until(pilot, lambda: second.text == "a", timeout=30)
                await pilot.press("escape")
                assert screen.running is None and "stopped" in str(second.footnote)
                assert screen.conversation.turns[-1] == {"role": "assistant", "content": "a"}
                assert app.screen is screen  # Escape stopped the answer; it did not leave the pane
                # the connection is shut, though the endpoint says nothing more: it sees the client leave
                assert endpoint.answer(2).left.wait(30)
                await until(pilot, lambda: "tokens/s" in str(second.footnote), timeout=30)

    asyncio.run(run())


def test_a_stopped_answers_late_news_leaves_the_answer_being_written_alone(tmp_path):
    async def run() -> None:
        with held_endpoint() as endpoint:
            async with chat_app(endpoint.url, max_tokens=24).run_test(size=(80, 24)) as pilot:
                screen = chat_screen(pilot)
                await until(pilot, lambda: screen.model == "held", timeout=30)
                stopped = await ask(pilot, "Hello")
                await until(pilot, lambda: stopped.text == "a", timeout=30)
                await pilot.press("escape")
                running = await ask(pilot, "More")
                await until(pilot, lambda: running.text == "a", timeout=30)
                # what the stopped answer's worker may still say, after the next answer began
                figures = AnswerStats("a", 1, 1.0, 0.5, None)
                screen.post_message(AnswerFeed.Ended(1, figures, stopped=True))
                screen.post_message(AnswerFeed.Failed(1, EndpointError("went away", reachable=False)))
                await pilot.pause()
                header = str(screen.query_one("#chat-header").render())
                assert screen.running == (2, "More") and "answering" in header
                assert str(running.footnote) == "…" and not running.has_class("-failed")

    asyncio.run(run())


def test_quitting_while_an_answer_is_held_does_not_wait_for_it(tmp_path):
    async def run() -> None:
        with held_endpoint() as endpoint:
            async with chat_app(endpoint.url, max_tokens=24).run_test(size=(80, 24)) as pilot:
                screen = chat_screen(pilot)
                await until(pilot, lambda: screen.model == "held", timeout=30)
                view = await ask(pilot, "Hello")
                await until(pilot, lambda: view.text == "a", timeout=30)
                pilot.app.exit()
            # the answer's thread, joined when the test's event loop closes, was woken: its connection
            # was shut at quitting, while the endpoint still held the answer
            assert endpoint.answer(1).left.wait(30)

    asyncio.run(run())


def test_refusals_and_the_server_dying_mid_answer_are_said_in_the_pane_and_the_console_goes_on(tmp_path):
    async def run() -> None:
        with running_server(tmp_path) as server:
            app = chat_app(server.url, max_tokens=400)
            async with app.run_test(size=(80, 24)) as pilot:
                screen = chat_screen(pilot)
                await until(pilot, lambda: screen.model == "tiny", timeout=30)
                too_long = await ask(pilot, "word " * 600)
                await until(pilot, lambda: too_long.has_class("-failed"), timeout=30)
                assert "maximum context length is 512 tokens" in str(too_long.footnote)
                assert "ctrl+l starts a new chat" in str(too_long.footnote)
                assert screen.query_one(Input).value == ("word " * 600).strip()  # Enter asks it again
                view = await ask(pilot, "Tell me a long story")
                await until(pilot, lambda: bool(view.text), timeout=ANSWER_LIMIT)
                server.process.kill()
                await until(pilot, lambda: view.has_class("-failed"), timeout=30)
                assert "the endpoint is gone" in str(view.footnote)
                assert screen.running is None and screen.conversation.turns == []
                again = await ask(pilot, "Are you there?")
                await until(pilot, lambda: again.has_class("-failed"), timeout=30)
                assert "cannot reach" in str(again.footnote)
                assert app.is_running and app.screen is screen

    asyncio.run(run())


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_snapshot_chat_pane_with_the_endpoint_gone(snap_compare, size):
    # A person sees: the header with the URL, the red line saying nothing answers there, their question
    # and under it why there is no answer; the question is back in its box, for Enter to try again.
    async def asked(pilot: Pilot[None]) -> None:
        screen = chat_screen(pilot)
        await until(pilot, lambda: screen.query_one("#chat-warning").has_class("-failed"))
        view = await ask(pilot, "Hello?")
        await until(pilot, lambda: view.has_class("-failed"))
        await pilot.pause()

    gone = chat_app("http://127.0.0.1:9", max_tokens=8)
    assert snap_compare(gone, terminal_size=size, run_before=asked)
