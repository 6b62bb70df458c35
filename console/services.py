"""What the app owns and hands to its screens: the cluster, the node pool, the health source, the store.

Created once (by `console.cli` for a real cluster, by tests with fakes) and closed once, by the app,
when it exits. Screens use these; none of them opens or closes a shared service of its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from console.feeds.health import ClusterHealth, HealthSource
from console.jobs.refresh import job_cluster
from console.records import JobRecord
from console.store import Store, StoreError
from remote.inventory import Cluster
from remote.pool import NodePool


@dataclass
class ConsoleServices:
    cluster: Cluster
    health: HealthSource
    """Rounds of node health (the app polls it once, every screen watches the result)."""
    pool: NodePool | None = None
    """Connections to the nodes, shared by every feed and action (None: a test without nodes)."""
    store: Store | None = None
    """The jobs, their loss history and events (None: it could not be opened; `store_error` says why)."""
    store_error: str = ""
    refresh: float = 5.0
    """Seconds between health rounds."""
    timeout: float = 15.0
    """Seconds a node gets to answer a health round or a job refresh."""
    clock: Callable[[], float] = time.time
    _closed: bool = field(default=False, repr=False)

    @classmethod
    def for_cluster(cls, cluster: Cluster, *, refresh: float, timeout: float) -> ConsoleServices:
        """The real services: one node pool for health and jobs, the user's store."""
        pool = NodePool(cluster)
        store, error = None, ""
        try:
            store = Store.open_default()
        except StoreError as exc:
            error = str(exc)
        return cls(cluster, ClusterHealth(pool, cluster.nodes, timeout=timeout), pool, store, error,
                   refresh=refresh, timeout=timeout)

    def runs_here(self, job: JobRecord) -> bool:
        """Whether the job ran on this cluster (so the shared pool reaches its nodes)."""
        return Path(job.cluster_file).resolve() == Path(self.cluster.source).resolve()

    @contextmanager
    def pool_for(self, job: JobRecord) -> Iterator[NodePool]:
        """Connections to the job's nodes: the shared pool for this cluster's jobs, else a pool of the
        job's own cluster file for as long as it is used. ValueError when that file cannot be read."""
        if self.pool is not None and self.runs_here(job):
            yield self.pool
            return
        found = job_cluster(job.cluster_file, job.cluster_name, self.cluster)
        if isinstance(found, str):
            raise ValueError(found)
        with NodePool(found) as pool:
            yield pool

    def close(self) -> None:
        """Release everything. Closing the pool can wait for a connect in progress, so it runs on a
        thread of its own: quitting never waits for a stuck node."""
        if self._closed:
            return
        self._closed = True
        threading.Thread(target=self.health.close, name="close-health", daemon=True).start()
        if self.pool is not None:
            threading.Thread(target=self.pool.close, name="close-pool", daemon=True).start()
        if self.store is not None:
            self.store.close()
