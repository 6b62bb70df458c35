"""NodePool: one transport per node, opened on first use and kept, plus the fan-out threads."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import paramiko

from remote.inventory import Cluster, NodeSpec
from remote.local import LocalTransport
from remote.ssh import SSHTransport
from remote.sshconfig import jump_node, load_ssh_config, resolve_target
from remote.transport import Transport


class NodePool:
    """Everything the console holds open to a cluster; `close()` releases all of it."""

    def __init__(self, cluster: Cluster, *, workers: int | None = None) -> None:
        self.cluster = cluster
        self.workers = workers or cluster.fanout
        # paramiko blocks, so remote/ owns a bounded pool of threads that callers share
        self.executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="remote")
        self._ssh_config: paramiko.SSHConfig | None = load_ssh_config(cluster.ssh_config)
        self._transports: dict[str, Transport] = {}
        self._lock = threading.RLock()

    def transport(self, node: NodeSpec | str) -> Transport:
        spec = self.cluster.node(node) if isinstance(node, str) else node
        return self._pooled(spec, trusted_via=None, chain=())

    def _pooled(self, node: NodeSpec, *, trusted_via: str | None, chain: tuple[str, ...]) -> Transport:
        with self._lock:
            if node.name not in self._transports:
                self._transports[node.name] = self._make(node, trusted_via, (*chain, node.name))
            return self._transports[node.name]

    def _make(self, node: NodeSpec, trusted_via: str | None, chain: tuple[str, ...]) -> Transport:
        if node.transport == "local":
            return LocalTransport(node)
        return SSHTransport(node, ssh_config=self._ssh_config, jump=self._jump_for(node, chain),
                            trusted_via=trusted_via)

    def _jump_for(self, node: NodeSpec, chain: tuple[str, ...]) -> SSHTransport | None:
        """The transport of the bastion in front of `node`: a cluster node, or a pooled hop of its own."""
        spec = resolve_target(node, self._ssh_config).proxy_jump
        if spec is None:
            return None
        is_node = spec in {n.name for n in self.cluster.nodes}
        hop = self.cluster.node(spec) if is_node else jump_node(spec, node)
        if hop.name in chain:
            raise ValueError(f"proxy_jump loops: {' -> '.join((*chain, hop.name))}")
        jump = self._pooled(hop, trusted_via=None if is_node else node.name, chain=chain)
        if not isinstance(jump, SSHTransport):
            raise ValueError(f"{node.name}: proxy_jump {spec!r} names a local node")
        return jump

    def connections_opened(self) -> int:
        with self._lock:
            transports = list(self._transports.values())
        return sum(t.connections_opened for t in transports if isinstance(t, SSHTransport))

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            transport.close()

    def __enter__(self) -> NodePool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
