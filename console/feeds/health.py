"""The health feed: one thread checks the cluster round after round and posts immutable snapshots.

Rounds never overlap (one thread, one round at a time; the worker group is exclusive), each round
is bounded by the check's own timeout, and a node that stops answering keeps its last good
readings, marked stale. Closing the source (the node pool) is what lets a quit not wait for a
stuck node; the app's services do that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from textual.app import App
from textual.message import Message
from textual.worker import get_current_worker

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
        self._checker = ClusterChecker(pool, nodes, timeout=timeout)

    def check(self) -> Sequence[NodeHealth]:
        return self._checker.refresh()

    def close(self) -> None:
        """Nothing of its own to release: the pool belongs to the app's services, which close it."""


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


class HealthFeed:
    """Polls the health source round after round on one worker thread of the app, and posts
    `HealthFeed.RoundStarted` and `HealthFeed.Checked` to the app. One per app: every screen watches
    the app's `health` rather than polling on its own. A round that raises ends the worker in error;
    the app's worker handler says so and calls `restart` after the interval."""

    GROUP = "health-poll"

    class Checked(Message):
        """A round finished."""

        def __init__(self, snapshot: HealthSnapshot) -> None:
            super().__init__()
            self.snapshot = snapshot

    class RoundStarted(Message):
        """A round began (the dashboard shows how long it runs when a node makes it slow)."""

    def __init__(self, app: App[Any], source: HealthSource, *, interval: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._app = app
        self._source = source
        self.interval = interval
        self._clock = clock
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._previous: dict[str, NodeHealth] = {}  # touched by the worker thread only
        self._rounds = 0

    def start(self) -> None:
        self._app.run_worker(self._poll, thread=True, exclusive=True, group=self.GROUP, exit_on_error=False,
                             description="checking every node's health")

    def restart(self) -> None:
        if not self._stopping.is_set():
            self.start()

    def poll_now(self) -> None:
        """Start the next round now (or right after the one running)."""
        self._wake.set()

    def stop(self) -> None:
        """Make a running round end soon (closing the source cuts a stuck node's wait short)."""
        self._stopping.set()
        self._wake.set()

    def _poll(self) -> None:
        worker = get_current_worker()
        while not (worker.is_cancelled or self._stopping.is_set()):
            self._app.post_message(self.RoundStarted())
            started = self._clock()
            began = time.monotonic()
            reports = carry_forward(self._previous, self._source.check())
            self._previous = {r.node: r for r in reports}
            self._rounds += 1
            finished = self._clock()
            self._app.post_message(self.Checked(HealthSnapshot(reports, finished, finished - started,
                                                               self._rounds)))
            self._wake.wait(max(MIN_GAP, self.interval - (time.monotonic() - began)))
            self._wake.clear()
