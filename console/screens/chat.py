"""The chat pane: a conversation with an OpenAI-compatible endpoint, its answers streamed as they come.

Each answer shows its figures when it ends (time to the first token, tokens, tokens a second). Escape
stops the answer being written (what came stays, in the pane and in the history) and never leaves the
pane. The endpoint going away is said in the pane, and the next question tries it again.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Static
from textual.worker import Worker, WorkerState

from console.feeds.answers import AnswerFeed
from console.serving.client import ErrorKind
from console.serving.conversation import ChatSettings, Conversation

SAID: dict[ErrorKind, str] = {"refused": "refused", "failed": "failed", "timed out": "timed out",
                              "gone": "is gone"}
"""An endpoint's error as the pane says it: "the endpoint …"."""


class AnswerView(Static):
    """One answer: its text as it grows, then a line of figures (or what went wrong)."""

    DEFAULT_CSS = """
    AnswerView { margin: 0 0 1 2; }
    AnswerView.-failed { color: $error; }
    """

    def __init__(self, number: int, speaker: str) -> None:
        super().__init__(id=f"answer-{number}")
        self.speaker = speaker
        self.text = ""
        self.footnote = Text("…", style="dim")

    def add(self, text: str) -> None:
        self.text += text
        self._show()

    def note(self, footnote: str, *, failed: bool = False) -> None:
        self.footnote = Text(footnote, style="" if failed else "dim")
        self.set_class(failed, "-failed")
        self._show()

    def _show(self) -> None:
        if not self.text and self.has_class("-failed"):
            self.update(self.footnote)  # no answer came: only why
            return
        self.update(Text.assemble((f"{self.speaker} ", "bold"), self.text, "\n", self.footnote))


class ChatScreen(Screen[None]):
    """Enter asks, Escape stops the answer, ctrl+l starts a new chat; the app's ctrl+q quits."""

    HELP_TITLE = "chat"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop", tooltip="Stop the answer being written", id="chat.stop"),
        Binding("escape", "back", "Back", tooltip="Back to the job (the conversation is kept)",
                id="chat.back"),
        Binding("ctrl+l", "new_chat", "New chat", tooltip="Forget the conversation so far", id="chat.new"),
        # the question box keeps the focus and would take PgUp/PgDn (priority: the transcript's first)
        Binding("pageup", "scroll_transcript(-1)", "Earlier", key_display="PgUp", priority=True,
                id="chat.earlier"),
        Binding("pagedown", "scroll_transcript(1)", "Later", key_display="PgDn", priority=True,
                id="chat.later"),
    ]
    DEFAULT_CSS = """
    ChatScreen { layout: vertical; }
    #chat-header { height: 1; background: $panel; padding: 0 1; }
    #chat-warning { color: $warning; padding: 0 1; display: none; }
    #chat-warning.-shown { display: block; }
    #chat-warning.-failed { color: $error; }
    #chat-transcript { height: 1fr; padding: 0 1; }
    .chat-question { margin: 1 0 0 0; color: $accent; }
    #chat-input { dock: bottom; margin-bottom: 1; }
    """

    def __init__(self, settings: ChatSettings) -> None:
        super().__init__()
        self.settings = settings
        self.conversation = Conversation()
        self.feed = AnswerFeed(self, settings)
        self.model = settings.model
        self.answers = 0
        self.running: tuple[int, str] | None = None
        """The answer being written and its question."""

    def compose(self) -> ComposeResult:
        yield Static(self._header("connecting…"), id="chat-header", markup=False)
        yield Static(id="chat-warning", markup=False)
        yield VerticalScroll(id="chat-transcript")
        # the box takes every printable key (q included) and the app's ctrl+q keeps the footer's slot
        yield Input(placeholder="Ask something · Enter sends · Esc stops · ctrl+q quits", id="chat-input")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#chat-transcript").can_focus = False  # keys go to the question box
        self.query_one(Input).focus()
        self.feed.connect()

    def on_unmount(self) -> None:
        self.feed.stop()  # its thread would keep the app from quitting while the endpoint stays silent

    def _header(self, state: str) -> str:
        return " · ".join(filter(None, ["Chat", self.settings.url, self.model, state]))

    def _warn(self, text: str, *, failed: bool = False) -> None:
        """The line under the header: the model's warning, or why the endpoint cannot be had."""
        warning = self.query_one("#chat-warning", Static)
        warning.update(text)
        warning.set_class(bool(text), "-shown")
        warning.set_class(failed, "-failed")

    def _say_state(self, state: str) -> None:
        self.query_one("#chat-header", Static).update(self._header(state))

    # --- asking -------------------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question or self.running is not None:
            return
        event.input.clear()
        self.answers += 1
        self.running = (self.answers, question)
        transcript = self.query_one("#chat-transcript", VerticalScroll)
        transcript.mount(Static(Text.assemble(("you ", "bold"), question), classes="chat-question"))
        transcript.mount(AnswerView(self.answers, self.model or "answer"))
        transcript.scroll_end(animate=False)  # asking shows the newest, wherever the reader was
        self.feed.ask(self.answers, self.conversation.asking(question))
        self._say_state("answering · Esc stops")
        self.refresh_bindings()

    def on_answer_feed_connected(self, message: AnswerFeed.Connected) -> None:
        self.model = message.served.id
        self._warn(f"warning: {message.served.warning}" if message.served.warning else "")
        self._say_state("answering · Esc stops" if self.running else "ready")

    def on_answer_feed_arrived(self, _message: AnswerFeed.Arrived) -> None:
        transcript = self.query_one("#chat-transcript", VerticalScroll)
        following = transcript.scroll_y >= transcript.max_scroll_y  # a reader scrolled back stays there
        for number, text in self.feed.take():
            view = self._view(number)
            if view is not None and self.running is not None and number == self.running[0]:
                view.add(text)
        if following:
            transcript.scroll_end(animate=False)

    def on_answer_feed_ended(self, message: AnswerFeed.Ended) -> None:
        current = self._current(message.number)
        view = self._view(message.number)
        if view is not None:
            stopped = message.stopped or not current
            view.note(f"{'stopped · ' if stopped else ''}{message.stats.summary()}")
        if current:  # a stopped answer's figures come late: the answer written now is not done
            self._finish(message.number)
            self._say_state("ready")

    def on_answer_feed_failed(self, message: AnswerFeed.Failed) -> None:
        what = f"the endpoint {SAID[message.error.kind]}"
        view = self._view(message.number)
        if view is None:
            if message.number == 0:  # the connection: no answer to say it under
                self._warn(f"{what}: {message.error}", failed=True)
        else:
            if self.query_one("#chat-warning").has_class("-failed"):
                self._warn("")  # the answer's note says it now, once
            hint = " · ctrl+l starts a new chat" if message.error.code == "context_length_exceeded" else ""
            view.note(f"{what}: {message.error}{hint}", failed=True)
        if self._current(message.number):
            self._unanswered(message.number)
            self._say_state(f"{what.removeprefix('the ')} · Enter retries")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """An answer's worker that failed in a way the feed did not foresee (the app shows the error):
        the question box is given back, if that answer is the one being written."""
        if event.worker.group != AnswerFeed.GROUP or event.state is not WorkerState.ERROR:
            return
        number = self.feed.number_of(event.worker)
        view = self._view(number)
        if view is not None:
            view.note(f"failed: {event.worker.error}", failed=True)
        if self._current(number):
            self._unanswered(number)
            self._say_state("failed · Enter retries")

    def _current(self, number: int) -> bool:
        """Whether news of answer `number` (0: the connection) is the pane's: it is the answer being
        written, or none is."""
        return self.running is None or self.running[0] == number

    def _unanswered(self, number: int) -> None:
        """Answer `number` failed: its question stays out of the history and is given back to edit."""
        if self.running is None or self.running[0] != number:
            return
        question = self.query_one(Input)
        if not question.value:
            question.value = self.running[1]
        self.running = None
        self.refresh_bindings()

    def _finish(self, number: int) -> None:
        """Answer `number` goes into the history as far as it got (once: Escape may have done it)."""
        view = self._view(number)
        if self.running is None or self.running[0] != number or view is None:
            return
        self.conversation.answered(self.running[1], view.text)
        self.running = None
        self.refresh_bindings()

    def _view(self, number: int) -> AnswerView | None:
        """Answer `number`'s view; None once a new chat removed it (or 0, the connection)."""
        found = self.query(f"#answer-{number}").results(AnswerView)
        return next(found, None)

    # --- keys -----------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Escape stops an answer being written. Otherwise it goes back only from a chat that is kept
        (a serve job's, installed by its screen): pressed twice to stop a long answer, it would
        otherwise take the conversation away."""
        if action == "stop":
            return self.running is not None
        if action == "back":
            return self.running is None and self.app.is_screen_installed(self)
        return True

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_scroll_transcript(self, pages: int) -> None:
        transcript = self.query_one("#chat-transcript", VerticalScroll)
        if pages < 0:
            transcript.scroll_page_up(animate=False)
        else:
            transcript.scroll_page_down(animate=False)

    def action_stop(self) -> None:
        if self.running is None:
            return
        number = self.running[0]
        self.feed.stop()
        view = self._view(number)
        if view is not None:
            view.note("stopped · the figures follow when the endpoint lets go")
        self._finish(number)
        self._say_state("ready")

    def action_new_chat(self) -> None:
        self.action_stop()
        self.conversation.clear()
        self.query_one("#chat-transcript", VerticalScroll).remove_children()
