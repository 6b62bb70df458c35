"""The demo in the console: the same steps as `ascend-console demo --headless` (console/jobs/demo.py),
shown as they happen; once the job runs, its screen; when training ends, the trained model's answer.

One worker runs the steps and posts each `DemoProgress` to this screen. Leaving the demo (Escape, or
quitting) stops following; a job already launched goes on and stays in the jobs list.
"""

from __future__ import annotations

import threading
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Log, Static

from console.jobs.demo import DemoOptions, DemoProgress, ask, follow_training, shown_step, start_demo
from console.screens.job import JobScreen
from console.services import ConsoleServices

STAGE_TITLES = {"check": "checking the nodes", "corpus": "preparing the embedded corpus",
                "plan": "the plan", "launch": "launching", "train": "training", "end": "training ended",
                "ask": "asking the model"}
TITLE = "demo · the tiny DeepSeek-V3 under msrun on this machine's local cluster"


class DemoScreen(Screen[None]):
    """The demo's steps, one line each; the job's own screen opens over it once the job runs."""

    HELP_TITLE = "demo"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Leave", tooltip="Stop the demo here (a launched job goes on)",
                id="demo.leave"),
    ]
    DEFAULT_CSS = """
    DemoScreen > #demo-title { dock: top; padding: 0 1; background: $panel; text-style: bold; }
    DemoScreen > Log { height: 1fr; }
    """

    class Stepped(Message):
        def __init__(self, event: DemoProgress) -> None:
            super().__init__()
            self.event = event

    class Ended(Message):
        def __init__(self, verdict: str | None, answer: str, job_id: str | None) -> None:
            super().__init__()
            self.verdict, self.answer, self.job_id = verdict, answer, job_id

    def __init__(self, services: ConsoleServices, options: DemoOptions) -> None:
        super().__init__()
        self.services, self.options = services, options
        self._cancel = threading.Event()
        self._stage: str | None = None
        self.job_id: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(TITLE, id="demo-title")
        yield Log(id="demo-log", auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        if self.services.pool is None or self.services.store is None:
            why = self.services.store_error or "no node pool"
            self.query_one(Log).write_line(f"the demo needs the nodes and the store: {why}")
            return
        self.run_worker(self._run, thread=True, exit_on_error=False, group="demo",
                        description="the demo (check, corpus, launch, training, question)")

    def on_unmount(self) -> None:
        self._cancel.set()

    def _run(self) -> None:
        pool, store = self.services.pool, self.services.store
        assert pool is not None and store is not None
        started = start_demo(pool, store, self.options, progress=self._post)
        if started.failure is not None or started.job_id is None:
            self.post_message(self.Ended(started.failure or "the job was not launched", "", started.job_id))
            return
        job_id = started.job_id
        training = follow_training(store, pool, job_id, progress=self._post, limit=self.options.train_limit,
                                   cancel=self._cancel)
        if self._cancel.is_set():
            return
        answer = ask(pool, store, job_id, self.options, progress=self._post) if training.ended_well else None
        text = "" if answer is None else (answer.text or "" if answer.ok else f"(no answer: {answer.error})")
        self.post_message(self.Ended(training.verdict, text, job_id))

    def _post(self, event: DemoProgress) -> None:
        self.post_message(self.Stepped(event))

    def on_demo_screen_stepped(self, message: DemoScreen.Stepped) -> None:
        event, log = message.event, self.query_one(Log)
        if event.stage != self._stage:
            self._stage = event.stage
            log.write_line(f"== {STAGE_TITLES.get(event.stage, event.stage)}")
        if event.step is not None and not shown_step(event.step, event.total):
            return
        where = f"{event.node}: " if event.node else ""
        log.write_line(f"  {'' if event.ok else 'FAILED '}{where}{event.message}")
        if event.job_id is not None and self.job_id is None and event.stage == "train":
            self.job_id = event.job_id  # the job runs: its own screen, the demo's log beneath it
            self.app.push_screen(JobScreen(self.services, event.job_id))

    def on_demo_screen_ended(self, message: DemoScreen.Ended) -> None:
        self.query_one(Log).write_line(f"== {message.verdict or 'training ended well, the loss fell'}")
        self.app.push_screen(AnswerScreen(message.verdict, message.answer, self.options.question))


class AnswerScreen(ModalScreen[None]):
    """How the demo ended, and what the trained model said."""

    HELP_TITLE = "demo's answer"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter", "dismiss", "Close", id="answer.close")]
    DEFAULT_CSS = """
    AnswerScreen { align: center middle; }
    AnswerScreen > Vertical { width: 76; max-width: 100%; height: auto; max-height: 90%; padding: 1 2;
                              border: round $success; background: $surface; }
    AnswerScreen.-failed > Vertical { border: round $error; }
    AnswerScreen .title { text-style: bold; }
    AnswerScreen .keys { color: $text-muted; padding-top: 1; }
    """

    def __init__(self, verdict: str | None, answer: str, question: str) -> None:
        super().__init__()
        self._verdict, self._answer, self._question = verdict, answer, question

    def compose(self) -> ComposeResult:
        with Vertical():
            if self._verdict is None:
                yield Static("The demo passed: training ended and the loss fell.", classes="title",
                             markup=False)
                yield Static(f"Asked to continue {self._question!r}, the trained model wrote:", markup=False)
                yield Static(self._answer or "(nothing)", markup=False)
            else:
                yield Static(f"The demo failed: {self._verdict}", classes="title", markup=False)
            yield Static("enter / esc: close", classes="keys", markup=False)

    def on_mount(self) -> None:
        self.set_class(self._verdict is not None, "-failed")
