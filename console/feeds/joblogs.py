"""The job log feed: one job's logs followed for a screen, recorded into the store as they come.

A `JobFollow` (console/jobs/follow.py) runs on its own threads; its batches are kept in a buffer here
and the screen is told by one `JobLogFeed.Ready` message, posted only when the buffer was empty: a
flood of lines from eight busy ranks is a handful of messages a second, and no line is dropped (the
screen takes the whole buffer each time).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from contextlib import ExitStack
from typing import Any

from textual.message import Message
from textual.message_pump import MessagePump

from console.jobs.follow import JobFollow
from console.jobs.joblog import JobLogBatch
from console.records import JobRecord
from console.services import ConsoleServices


class JobLogFeed:
    """Start it on a worker thread (it connects); stop it when the screen goes."""

    class Ready(Message):
        """Batches are waiting: call `take()`."""

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, JobLogFeed.Ready)

    def __init__(self, target: MessagePump, services: ConsoleServices, job: JobRecord,
                 ranks: Iterable[int] | None = None) -> None:
        self._target, self._services, self.job = target, services, job
        self._ranks = None if ranks is None else tuple(ranks)
        self._lock = threading.Lock()
        self._pending: list[JobLogBatch] = []
        self._resources = ExitStack()
        self._follow: JobFollow | None = None
        self._stopped = False

    def start(self) -> None:
        """Blocking (it asks each node its time zone): run it on a worker thread."""
        pool = self._resources.enter_context(self._services.pool_for(self.job))
        follow = JobFollow(self.job, pool, self._arrived, store=self._services.store, ranks=self._ranks)
        with self._lock:
            if self._stopped:
                self._resources.close()
                return
            self._follow = follow
        follow.start()

    def _arrived(self, batch: JobLogBatch) -> None:
        with self._lock:
            announce = not self._pending
            self._pending.append(batch)
        if announce:
            self._target.post_message(self.Ready())

    def take(self) -> list[JobLogBatch]:
        """Everything that arrived since the last take, in order."""
        with self._lock:
            batches, self._pending = self._pending, []
        return batches

    def add_ranks(self, ranks: Iterable[int]) -> list[int]:
        """Follow more ranks' logs (from their start); the ranks newly followed."""
        follow = self._follow
        return follow.add_ranks(ranks) if follow is not None else []

    @property
    def finished(self) -> bool:
        """Every node's run ended and its files were read to their end."""
        follow = self._follow
        return follow is not None and follow.wait(0)

    def stop(self) -> None:
        """Blocking up to the followers' join: call it off the event loop."""
        with self._lock:
            self._stopped = True
            follow, self._follow = self._follow, None
        if follow is not None:
            follow.stop()
        self._resources.close()


def stop_in_background(feed: JobLogFeed, *_: Any) -> None:
    threading.Thread(target=feed.stop, name=f"stop-feed-{feed.job.id}", daemon=True).start()
