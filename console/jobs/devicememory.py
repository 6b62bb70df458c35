"""What a job's memory estimate is judged against on the nodes it runs on: an NPU's HBM, or on CPU nodes
(the local demo, the test cluster) each rank's share of the first node's host memory, read from it."""

from __future__ import annotations

from collections.abc import Sequence

from model.estimate import NPU_910B, DeviceMemory, host_share
from remote.inventory import Cluster, NodeSpec
from remote.pool import NodePool
from remote.probes.system import parse_meminfo

MEMINFO_TIMEOUT = 10.0


def device_memory(cluster: Cluster, nodes: int, ranks_per_node: int) -> DeviceMemory:
    """For `nodes` of the cluster's nodes running `ranks_per_node` ranks each. A layout larger than the
    cluster is asked about NPUs, whatever these machines are."""
    chosen = cluster.nodes[:nodes]
    if len(chosen) < nodes:
        return NPU_910B
    with NodePool(cluster) as pool:
        return nodes_memory(pool, chosen, ranks_per_node)


def nodes_memory(pool: NodePool, nodes: Sequence[NodeSpec], ranks_per_node: int) -> DeviceMemory:
    """HBM when any node has NPUs or the ranks are more than a node's devices; else the first node's
    MemTotal over its ranks. A CPU node whose memory cannot be read keeps the HBM figure, named so that
    nobody reads it as the host's."""
    if (not nodes or any(node.backend == "npu" for node in nodes)
            or ranks_per_node > min(node.devices for node in nodes)):
        return NPU_910B
    first = nodes[0]
    result = pool.transport(first).run(["cat", "/proc/meminfo"], timeout=MEMINFO_TIMEOUT)
    memory = parse_meminfo(result.stdout) if result.ok else None
    if memory is None:
        why = result.describe() if not result.ok else "no MemTotal in /proc/meminfo"
        return DeviceMemory(NPU_910B.bytes, f"64 GiB (host memory of {first.name} unread: {why})",
                            on_npu=False)
    return host_share(memory.total_kb * 1024, ranks_per_node)
