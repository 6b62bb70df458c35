"""The chat pane's feed: answers streamed from an OpenAI-compatible endpoint on a worker thread.

Text arrives a token at a time; it is buffered here and announced by one `Arrived` message that
replaces an older one, so a fast stream is a handful of messages a frame and no piece is lost (the
screen takes the whole buffer). Every message names the answer it belongs to: after Escape the screen
has moved on, and whatever the stopped answer still sends is told apart. The endpoint going away is
a `Failed` message the screen shows, never a crash.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from textual.message import Message
from textual.screen import Screen
from textual.worker import Worker, get_current_worker

from console.serving.answer import AnswerClock, AnswerStats
from console.serving.client import EndpointError, ServedModel, ServingClient
from console.serving.conversation import ChatSettings, stream_answer


class AnswerFeed:
    GROUP = "chat"

    class Connected(Message):
        """The endpoint said which model it serves."""

        def __init__(self, served: ServedModel) -> None:
            super().__init__()
            self.served = served

    class Arrived(Message):
        """Text is waiting: call `take()`."""

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, AnswerFeed.Arrived)

    class Ended(Message):
        def __init__(self, number: int, stats: AnswerStats, *, stopped: bool) -> None:
            super().__init__()
            self.number, self.stats, self.stopped = number, stats, stopped

    class Failed(Message):
        """Answer `number` (0: the connection before any) could not be had; `error` says why."""

        def __init__(self, number: int, error: EndpointError) -> None:
            super().__init__()
            self.number, self.error = number, error

    def __init__(self, screen: Screen[Any], settings: ChatSettings) -> None:
        self._screen = screen
        self.settings = settings
        self._lock = threading.Lock()
        self._pending: list[tuple[int, str]] = []
        self._served: ServedModel | None = None
        self._worker: Worker[None] | None = None
        self._client: ServingClient | None = None
        """The client of the answer being written, for `stop` to interrupt from the UI's thread."""
        self._numbers: dict[Worker[Any], int] = {}
        """Each worker's answer, for an error the worker did not foresee (a handful a chat)."""

    def connect(self) -> None:
        self._run(0, self._connect, f"connect to {self.settings.url}")

    def ask(self, number: int, messages: Sequence[dict[str, str]]) -> None:
        """Answer `messages` (the history and the question) as answer `number`."""
        turns = tuple(dict(m) for m in messages)  # the worker's own copy
        self._run(number, lambda: self._answer(number, turns), f"answer from {self.settings.url}")

    def number_of(self, worker: Worker[Any]) -> int:
        """The answer a worker of this feed was writing (0: the connection)."""
        return self._numbers.get(worker, 0)

    def stop(self) -> None:
        """The answer running stops now: its connection is shut, which wakes its thread however long the
        endpoint stays silent (quitting never waits on it) and tells the server to stop generating."""
        if self._worker is not None:
            self._worker.cancel()
        with self._lock:
            client = self._client
        if client is not None:
            client.interrupt()

    def take(self) -> list[tuple[int, str]]:
        """Every (answer number, text) that arrived since the last take, in order."""
        with self._lock:
            pieces, self._pending = self._pending, []
        return pieces

    def _run(self, number: int, work: Callable[[], None], description: str) -> None:
        self._worker = self._screen.run_worker(work, thread=True, exclusive=True, group=self.GROUP,
                                               exit_on_error=False, description=description)
        self._numbers[self._worker] = number

    def _connect(self) -> None:
        try:
            with ServingClient(self.settings.url) as client:
                self._model(client)
        except EndpointError as exc:
            self._screen.post_message(self.Failed(0, exc))

    def _model(self, client: ServingClient) -> ServedModel:
        if self._served is None:
            self._served = client.model(self.settings.model)
            self._screen.post_message(self.Connected(self._served))
        return self._served

    def _answer(self, number: int, turns: tuple[dict[str, str], ...]) -> None:
        worker = get_current_worker()
        answer = AnswerClock()  # stopped before its request: no figures
        try:
            with ServingClient(self.settings.url) as client, self._interruptible(client, worker):
                served = self._model(client)
                answer = AnswerClock()  # from the request sent
                for text in stream_answer(client, self.settings, served.id, turns, answer):
                    self._arrived(number, text)
                    if worker.is_cancelled:
                        break
        except EndpointError as exc:
            if not worker.is_cancelled:  # stopped: the error is the connection `stop` shut
                if not exc.reachable:
                    self._served = None  # ask the endpoint again next time: it may be another server
                self._screen.post_message(self.Failed(number, exc))
                return
        self._screen.post_message(self.Ended(number, answer.stats(), stopped=worker.is_cancelled))

    @contextmanager
    def _interruptible(self, client: ServingClient, worker: Worker[None]) -> Iterator[None]:
        """`client` is the one `stop` interrupts while the block runs (at once if it was stopped)."""
        with self._lock:
            self._client = client
        if worker.is_cancelled:
            client.interrupt()
        try:
            yield
        finally:
            with self._lock:
                if self._client is client:
                    self._client = None

    def _arrived(self, number: int, text: str) -> None:
        with self._lock:
            announce = not self._pending
            self._pending.append((number, text))
        if announce:
            self._screen.post_message(self.Arrived())
