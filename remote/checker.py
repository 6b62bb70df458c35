"""Check many nodes at once: probe through the pool's pooled connections, then judge."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from remote.fanout import map_nodes
from remote.health import NodeHealth, assess, with_drift
from remote.inventory import NodeSpec
from remote.pool import NodePool
from remote.probe import run_probe

PROBE_TIMEOUT = 30.0


def check_as_they_come(
    pool: NodePool,
    nodes: Sequence[NodeSpec],
    *,
    own_pids: frozenset[int] = frozenset(),
    timeout: float = PROBE_TIMEOUT,
) -> Iterator[NodeHealth]:
    """Each node's verdict as soon as it is in (drift needs them all: see `check_nodes`)."""

    def check_one(node: NodeSpec) -> NodeHealth:
        probe = run_probe(pool.transport(node), timeout=timeout)
        return assess(node, probe, pool.cluster.health, own_pids)

    return map_nodes(pool, nodes, check_one)


def check_nodes(
    pool: NodePool,
    nodes: Sequence[NodeSpec],
    *,
    own_pids: frozenset[int] = frozenset(),
    timeout: float = PROBE_TIMEOUT,
) -> list[NodeHealth]:
    """Every node's verdict, in cluster order, with version drift judged across them."""
    by_name = {h.node: h for h in check_as_they_come(pool, nodes, own_pids=own_pids, timeout=timeout)}
    return with_drift([by_name[n.name] for n in nodes])
