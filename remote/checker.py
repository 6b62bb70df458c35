"""Check many nodes at once: probe through the pool's pooled connections, then judge."""

from __future__ import annotations

import time
from collections.abc import Sequence

from remote.fanout import map_nodes
from remote.health import (
    Finding,
    NodeHealth,
    Status,
    assess,
    carry_static,
    keep_last_good,
    with_drift,
)
from remote.inventory import NodeSpec
from remote.pool import NodePool
from remote.probe import run_probe

PROBE_TIMEOUT = 30.0
# How often a repeated check also re-reads what rarely changes (versions, firmware, addresses).
STATIC_EVERY = 300.0


class ClusterChecker:
    """Repeated checks of the same nodes, as the dashboard and `check --watch` make them.

    The first check of a node is a full probe, later ones are quick unless the static facts are
    older than `static_every`; a node that stops answering keeps its last values, marked stale.
    Not for concurrent use: one refresh at a time (the callers never overlap their polls).
    """

    def __init__(
        self,
        pool: NodePool,
        nodes: Sequence[NodeSpec],
        *,
        timeout: float = PROBE_TIMEOUT,
        static_every: float = STATIC_EVERY,
    ) -> None:
        self.pool = pool
        self.nodes = tuple(nodes)
        self.timeout = timeout
        self.static_every = static_every
        self._last: dict[str, NodeHealth] = {}
        self._full_at: dict[str, float] = {}

    def refresh(self) -> list[NodeHealth]:
        """Every node's verdict, in cluster order, with version drift judged across them."""
        by_name = {h.node: h for h in map_nodes(self.pool, self.nodes, self._check_one)}
        reports = with_drift([by_name[n.name] for n in self.nodes])
        self._last = {r.node: r for r in reports}
        return reports

    def _check_one(self, node: NodeSpec) -> NodeHealth:
        try:
            return self._probe_and_judge(node)
        except Exception as exc:  # noqa: BLE001 - one node's surprise must not blank the whole fleet
            return NodeHealth(node.name, node.host, Status.UNKNOWN,
                              (Finding(Status.UNKNOWN, f"internal error while checking: {exc!r}"),))

    def _probe_and_judge(self, node: NodeSpec) -> NodeHealth:
        previous = self._last.get(node.name)
        full = time.monotonic() - self._full_at.get(node.name, -self.static_every) >= self.static_every
        probe = run_probe(self.pool.transport(node), timeout=self.timeout, full=full)
        if full and probe.result.error is None:
            self._full_at[node.name] = time.monotonic()
        current = assess(node, probe, self.pool.cluster.health)
        return keep_last_good(previous, current if full else carry_static(previous, current))


def check_nodes(
    pool: NodePool,
    nodes: Sequence[NodeSpec],
    *,
    timeout: float = PROBE_TIMEOUT,
) -> list[NodeHealth]:
    """One full check of every node."""
    return ClusterChecker(pool, nodes, timeout=timeout).refresh()
