"""What a job's memory estimate is judged against on the nodes it runs on: an NPU's HBM, or on CPU nodes
(the local demo, the test cluster) each rank's share of the first node's host memory, read from it."""

from __future__ import annotations

from model.estimate import NPU_910B, DeviceMemory, host_share
from remote.inventory import Cluster
from remote.pool import NodePool
from remote.probes.system import parse_meminfo

MEMINFO_TIMEOUT = 10.0


def device_memory(cluster: Cluster, nodes: int, ranks_per_node: int) -> DeviceMemory:
    """HBM when the job's nodes have NPUs or are more than the cluster has (a layout asked about, not these
    machines); else the first node's MemTotal over its ranks. A CPU node whose memory cannot be read keeps
    the HBM figure, named so that nobody reads it as the host's."""
    chosen = cluster.nodes[:nodes]
    if (len(chosen) < nodes or any(node.backend == "npu" for node in chosen)
            or ranks_per_node > min(node.devices for node in chosen)):
        return NPU_910B
    first = chosen[0]
    with NodePool(cluster) as pool:
        result = pool.transport(first).run(["cat", "/proc/meminfo"], timeout=MEMINFO_TIMEOUT)
    memory = parse_meminfo(result.stdout) if result.ok else None
    if memory is None:
        why = result.describe() if not result.ok else "no MemTotal in /proc/meminfo"
        return DeviceMemory(NPU_910B.bytes, f"64 GiB (host memory of {first.name} unread: {why})",
                            on_npu=False)
    return host_share(memory.total_kb * 1024, ranks_per_node)
