"""Whether a followed job's runs still go: the end of a run that never wrote its exit code (a rebooted
node, a killed wrapper) is told to its `JobFollow`, which would otherwise wait for it forever, and fails
the job, whose other nodes are stopped (console/jobs/lostrun.py)."""

from __future__ import annotations

import threading

from console.jobs.follow import JobFollow
from console.jobs.lostrun import fail_if_lost
from console.jobs.refresh import refresh_on
from console.store import Store
from remote.jobstate import ENDED
from remote.pool import NodePool

RUN_CHECK = 30.0
"""Seconds between asking the nodes whether their runs still go."""


class RunWatch:
    """Every RUN_CHECK seconds, asks the nodes whether the job's runs still go; a run that
    ended without writing its exit code (a rebooted node, a killed wrapper) is told to the follow."""

    def __init__(self, store: Store, pool: NodePool, job_id: str, follow: JobFollow,
                 every: float = RUN_CHECK) -> None:
        self.store, self.pool, self.job_id, self.follow, self.every = store, pool, job_id, follow, every
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="logs-run-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def _run(self) -> None:
        while not self._stopping.wait(self.every):
            self.check()

    def check(self) -> None:
        refreshed = refresh_on(self.store, self.pool, [self.store.job(self.job_id)])
        # an ended job (stopped from elsewhere) is not refreshed: its stored launches say how its runs are
        launches = refreshed[0].launches if refreshed else self.store.launches(self.job_id)
        ended = {launch.node for launch in launches
                 if launch.state in ENDED and launch.node not in self.follow.exit_codes}
        if ended:
            self.follow.runs_ended(ended)
        fail_if_lost(self.store, self.pool, self.job_id, timeout=self.every, read_logs=False)
