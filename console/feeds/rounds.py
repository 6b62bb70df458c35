"""What every app-level feed shares: one exclusive worker thread of the app doing round after round,
woken early on demand, stopped for good when the app goes."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from textual.app import App
from textual.worker import get_current_worker


class RoundFeed:
    """Subclasses name their GROUP and DESCRIPTION and do one round in `round`. A round that raises
    ends the worker in error: the app's worker handler says so and calls `restart` after `interval`."""

    GROUP: ClassVar[str]
    DESCRIPTION: ClassVar[str]
    MIN_GAP: ClassVar[float] = 0.5
    """Seconds between rounds even when a round took longer than the interval."""

    def __init__(self, app: App[Any], *, interval: float) -> None:
        self._app = app
        self.interval = interval
        self._wake = threading.Event()
        self._stopping = threading.Event()

    def start(self) -> None:
        self._app.run_worker(self._rounds, thread=True, exclusive=True, group=self.GROUP,
                             exit_on_error=False, description=self.DESCRIPTION)

    def restart(self) -> None:
        if not self._stopping.is_set():
            self.start()

    def poll_now(self) -> None:
        """Start the next round now (or right after the one running)."""
        self._wake.set()

    def stop(self) -> None:
        """No round after the one running (whose waits the services' closing cuts short)."""
        self._stopping.set()
        self._wake.set()

    def _rounds(self) -> None:
        worker = get_current_worker()
        self.first_round()
        while not (worker.is_cancelled or self._stopping.is_set()):
            took = self.round()
            self._wake.wait(max(self.MIN_GAP, self.interval - took))
            self._wake.clear()

    def first_round(self) -> None:
        """Before the first round (e.g. post what is known without asking the nodes)."""

    def round(self) -> float:
        """One round, on the worker thread; the seconds it took."""
        raise NotImplementedError
