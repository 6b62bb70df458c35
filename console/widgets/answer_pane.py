"""A predict job's answer: one entry per prompt, wrapped, each under a line with its timing when the logs
told it (time to the first token, tokens per second). The text can be selected with the mouse, and `c`
copies every entry to the clipboard."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.jobs.answer import JobAnswer, speed_text

WAITING = "no answer yet: no rank has printed its result line"


class AnswerPane(VerticalScroll, can_focus=True):
    """Shows the latest `JobAnswer` given to `show`."""

    DEFAULT_CSS = """
    AnswerPane { border: round $primary-muted; border-title-color: $text-muted; padding: 0 1; }
    AnswerPane:focus-within { border: round $primary; }
    AnswerPane .answer-head { color: $text-muted; text-style: bold; margin-top: 1; }
    AnswerPane .answer-head.-first { margin-top: 0; }
    AnswerPane .answer-text { width: 1fr; }
    AnswerPane .answer-waiting { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy", "Copy", tooltip="Copy every answer to the clipboard", id="answer.copy"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.answer: JobAnswer | None = None
        self.border_title = "answer"

    def compose(self) -> ComposeResult:
        yield Static(WAITING, classes="answer-waiting", markup=False)

    def show(self, answer: JobAnswer | None) -> None:
        """Redraw when the answer changed (a later result line, or speeds that arrived after it)."""
        if answer == self.answer:
            return
        self.answer = answer
        self.remove_children()
        if answer is None:
            self.mount(Static(WAITING, classes="answer-waiting", markup=False))
            return
        self.border_title = f"answer · {answer.node}" + (f" rank {answer.rank}" if answer.rank is not None
                                                           else "")
        self.mount_all([widget for index, text in enumerate(answer.texts)
                        for widget in self._entry(answer, index, text)])

    @staticmethod
    def _entry(answer: JobAnswer, index: int, text: str) -> tuple[Static, Static]:
        speed = answer.speed_of(index)
        head = f"prompt {index + 1} of {len(answer.texts)}" + (f" · {speed_text(speed)}" if speed else "")
        classes = "answer-head -first" if index == 0 else "answer-head"
        return Static(head, classes=classes, markup=False), Static(text, classes="answer-text", markup=False)

    def action_copy(self) -> None:
        if self.answer is None:
            self.notify("nothing to copy yet", timeout=3)
            return
        self.app.copy_to_clipboard("\n\n".join(self.answer.texts))
        self.notify(f"copied {len(self.answer.texts)} answer(s)", timeout=3)
