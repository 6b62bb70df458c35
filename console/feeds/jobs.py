"""The jobs feed: every job in the store, refreshed from its nodes and its logs, as one snapshot a round.

A round asks the nodes of every unfinished job for its state (console/jobs/refresh.py), reads what its
logs gained since the store last read them (console/jobs/follow.py catch_up: loss steps, errors, the
first failure), then reads the store and posts a frozen `JobsSnapshot`. Jobs launched by another console
or by the CLI are there as well: the store is shared.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from textual.app import App
from textual.message import Message

from console.feeds.rounds import RoundFeed
from console.jobs.failure import FirstFailure
from console.jobs.follow import catch_up
from console.jobs.logview import RankProgress, rank_progress
from console.jobs.refresh import refresh_jobs, refresh_on
from console.jobs.view import nodes_text
from console.records import JobRecord, LaunchRecord
from console.services import ConsoleServices
from console.store import Store

INTERVAL = 10.0
LOG_READ_TIMEOUT = 10.0


@dataclass(frozen=True)
class JobSummary:
    """One job as the jobs screen shows it."""

    job: JobRecord
    launches: tuple[LaunchRecord, ...]
    progress: tuple[RankProgress, ...]

    @property
    def nodes(self) -> str:
        return nodes_text(self.launches)

    @property
    def lead(self) -> RankProgress | None:
        """The rank that counts for progress: the furthest, the loss-bearing one at equal steps."""
        with_loss = [p for p in self.progress if p.loss is not None] or list(self.progress)
        return max(with_loss, key=lambda p: (p.step, p.rank)) if with_loss else None

    @property
    def first_failure(self) -> FirstFailure | None:
        document = self.job.first_failure
        return FirstFailure(**document) if document else None


@dataclass(frozen=True)
class JobsSnapshot:
    jobs: tuple[JobSummary, ...]
    """Unfinished jobs first, newest first within each group."""
    finished_at: float
    unreachable: tuple[str, ...] = ()
    """What could not be asked this round (node: reason)."""
    rounds: int = 0
    """Rounds of asking the nodes behind it (0: what the store held when the console opened)."""


def job_summaries(store: Store) -> tuple[JobSummary, ...]:
    jobs = store.jobs()
    summaries = [JobSummary(job, tuple(store.launches(job.id)), tuple(rank_progress(store.metrics(job.id))))
                 for job in jobs]
    return tuple(sorted(summaries, key=lambda s: s.job.finished))  # stable: newest first kept


class JobsFeed(RoundFeed):
    """Round after round; posts `JobsFeed.Listed` to the app."""

    GROUP = "jobs-feed"
    DESCRIPTION = "refreshing the jobs from their nodes"

    class Listed(Message):
        def __init__(self, snapshot: JobsSnapshot) -> None:
            super().__init__()
            self.snapshot = snapshot

    class RefreshNow(Message):
        """Post it to the app (from any thread) when a job changed: the next round starts now."""

    def __init__(self, app: App[Any], services: ConsoleServices, *, interval: float = INTERVAL) -> None:
        super().__init__(app, interval=interval)
        self._services = services
        self._count = 0
        self._tried: set[str] = set()
        """Ended jobs whose logs this feed tried to read (touched by its thread only)."""

    def first_round(self) -> None:
        if self._services.store is not None:  # what the store holds, at once; then what the nodes say
            self._list(self._services.store, ())

    def round(self) -> float:
        store = self._services.store
        if store is None:
            self.stop()
            return 0.0
        began = time.monotonic()
        unreachable = self._refresh(store)
        self._count += 1
        self._list(store, unreachable)
        return time.monotonic() - began

    def _list(self, store: Store, unreachable: tuple[str, ...]) -> None:
        snapshot = JobsSnapshot(job_summaries(store), self._services.clock(), unreachable, self._count)
        self._app.post_message(self.Listed(snapshot))

    def _refresh(self, store: Store) -> tuple[str, ...]:
        """Ask the nodes of unfinished jobs (this cluster's over the app's pool), then read their logs."""
        services = self._services
        unfinished = store.jobs(unfinished_only=True)
        here = [j for j in unfinished if services.pool is not None and services.runs_here(j)]
        results = refresh_on(store, services.pool, here, timeout=services.timeout) \
            if here and services.pool is not None else []
        results += refresh_jobs(store, job_ids=[j.id for j in unfinished if j not in here],
                                timeout=services.timeout, cluster=services.cluster)
        unreachable = [f.reason for r in results for f in r.failures]
        # unfinished jobs, those that ended since the last round, and ended ones whose logs nobody read
        unread = [j for j in store.jobs() if j.finished and j.id not in self._tried
                  and not store.log_cursors(j.id)]
        self._tried.update(j.id for j in unread)  # once a session: their nodes may be long gone
        ended = [r.job for r in results if r.job.finished]
        for job in store.jobs(unfinished_only=True) + ended + [j for j in unread if j not in ended]:
            unreachable += [f"{job.id}: logs not read from {node}" for node in
                            self._read_logs(store, job)]
        return tuple(unreachable)

    def _read_logs(self, store: Store, job: JobRecord) -> list[str]:
        try:
            with self._services.pool_for(job) as pool:
                return catch_up(store, pool, job, timeout=LOG_READ_TIMEOUT)
        except ValueError as exc:
            return [str(exc)]
