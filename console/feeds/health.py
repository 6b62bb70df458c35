"""The health poller: one thread checks the cluster round after round and posts immutable snapshots.

Rounds never overlap (one thread, one round at a time; the worker group is exclusive), each round
is bounded by the check's own timeout, and a node that stops answering keeps its last good
readings, marked stale. Closing the source (the node pool) is what lets a quit not wait for a
stuck node.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from textual import work
from textual.message import Message
from textual.widget import Widget
from textual.worker import Worker, WorkerState, get_current_worker

from remote.checker import ClusterChecker
from remote.health import NodeHealth, keep_last_good
from remote.inventory import NodeSpec
from remote.pool import NodePool

MIN_GAP = 0.5  # seconds between rounds even when a round took longer than the interval


class HealthSource(Protocol):
    """Where rounds of reports come from. `check` blocks; `close` makes a running `check` end soon."""

    def check(self) -> Sequence[NodeHealth]: ...

    def close(self) -> None: ...


class ClusterHealth:
    """The real source: repeated checks over a node pool's pooled connections (quick ones after
    the first: what rarely changes is re-read only now and then)."""

    def __init__(self, pool: NodePool, nodes: Sequence[NodeSpec], *, timeout: float) -> None:
        self._pool = pool
        self._checker = ClusterChecker(pool, nodes, timeout=timeout)

    def check(self) -> Sequence[NodeHealth]:
        return self._checker.refresh()

    def close(self) -> None:
        self._pool.close()


@dataclass(frozen=True)
class HealthSnapshot:
    """One round: every node's report in cluster order, when it finished and how long it took."""

    reports: tuple[NodeHealth, ...]
    finished_at: float
    elapsed: float
    round: int


def carry_forward(
    previous: Mapping[str, NodeHealth], reports: Sequence[NodeHealth]
) -> tuple[NodeHealth, ...]:
    """Nodes that did not answer keep their last good readings, marked stale."""
    return tuple(keep_last_good(previous.get(r.node), r) for r in reports)


class HealthPoller(Widget):
    """Invisible; mount it in the screen that wants `HealthPoller.Checked` messages."""

    DEFAULT_CSS = "HealthPoller { display: none; }"

    class Checked(Message):
        """A round finished."""

        def __init__(self, snapshot: HealthSnapshot) -> None:
            super().__init__()
            self.snapshot = snapshot

    class RoundStarted(Message):
        """A round began (the dashboard shows how long it runs when a node makes it slow)."""

    class Failed(Message):
        """A round raised instead of reporting; the poller tries again after the interval."""

        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self, source: HealthSource, *, interval: float,
                 clock: Callable[[], float] = time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self._source = source
        self._interval = interval
        self._clock = clock
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._previous: dict[str, NodeHealth] = {}  # touched by the worker thread only
        self._rounds = 0

    def on_mount(self) -> None:
        self._poll()

    def on_unmount(self) -> None:
        self._stopping.set()
        self._wake.set()
        # closing can wait for a connect in progress: never on the event loop's thread
        threading.Thread(target=self._source.close, name="health-source-close", daemon=True).start()

    def poll_now(self) -> None:
        """Start the next round now (or right after the one running)."""
        self._wake.set()

    @work(thread=True, exclusive=True, group="health-poll", exit_on_error=False,
          description="check every node's health, round after round")
    def _poll(self) -> None:
        worker = get_current_worker()
        while not (worker.is_cancelled or self._stopping.is_set()):
            self.post_message(self.RoundStarted())
            started = self._clock()
            began = time.monotonic()
            reports = carry_forward(self._previous, self._source.check())
            self._previous = {r.node: r for r in reports}
            self._rounds += 1
            finished = self._clock()
            snapshot = HealthSnapshot(reports, finished, finished - started, self._rounds)
            self.post_message(self.Checked(snapshot))
            self._wake.wait(max(MIN_GAP, self._interval - (time.monotonic() - began)))
            self._wake.clear()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "health-poll" or event.state is not WorkerState.ERROR:
            return
        event.stop()
        if self._stopping.is_set():
            return
        self.post_message(self.Failed(f"{type(event.worker.error).__name__}: {event.worker.error}"))
        self.set_timer(self._interval, self._poll)
