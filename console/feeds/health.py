"""The health feed: one thread checks the cluster round after round and posts immutable snapshots.

Rounds never overlap (one thread, one round at a time; the worker group is exclusive), each round
is bounded by the check's own timeout, and a node that stops answering keeps its last good
readings, marked stale. Closing the source (the node pool) is what lets a quit not wait for a
stuck node; the app's services do that.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from textual.app import App
from textual.message import Message

from console.feeds.rounds import RoundFeed
from remote.checker import ClusterChecker
from remote.health import NodeHealth, keep_last_good
from remote.inventory import NodeSpec
from remote.pool import NodePool


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


class HealthFeed(RoundFeed):
    """Checks the health source round after round and posts `HealthFeed.RoundStarted` and
    `HealthFeed.Checked` to the app. One per app: every screen watches the app's `health` rather than
    polling on its own."""

    GROUP = "health-poll"
    DESCRIPTION = "checking every node's health"

    class Checked(Message):
        """A round finished."""

        def __init__(self, snapshot: HealthSnapshot) -> None:
            super().__init__()
            self.snapshot = snapshot

    class RoundStarted(Message):
        """A round began (the dashboard shows how long it runs when a node makes it slow)."""

    def __init__(self, app: App[Any], source: HealthSource, *, interval: float,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(app, interval=interval)
        self._source = source
        self._clock = clock
        self._previous: dict[str, NodeHealth] = {}  # touched by the worker thread only
        self._count = 0

    def round(self) -> float:
        self._app.post_message(self.RoundStarted())
        started = self._clock()
        began = time.monotonic()
        reports = carry_forward(self._previous, self._source.check())
        self._previous = {r.node: r for r in reports}
        self._count += 1
        finished = self._clock()
        snapshot = HealthSnapshot(reports, finished, finished - started, self._count)
        self._app.post_message(self.Checked(snapshot))
        return time.monotonic() - began
