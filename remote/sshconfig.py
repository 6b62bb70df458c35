"""Where and as whom to connect: the cluster file combined with ~/.ssh/config, as `ssh -o` would."""

from __future__ import annotations

import getpass
from dataclasses import dataclass, replace
from pathlib import Path

import paramiko

from remote.hostkeys import known_hosts_name
from remote.inventory import NodeSpec


@dataclass(frozen=True)
class SSHTarget:
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...]
    known_hosts: Path
    proxy_jump: str | None
    proxy_command: str | None

    @property
    def known_as(self) -> str:
        return known_hosts_name(self.hostname, self.port)

    @property
    def address(self) -> str:
        return f"{self.user}@{self.hostname}:{self.port}"


def load_ssh_config(path: str | None) -> paramiko.SSHConfig | None:
    if not path:
        return None
    expanded = Path(path).expanduser()
    return paramiko.SSHConfig.from_path(str(expanded)) if expanded.is_file() else None


def resolve_target(node: NodeSpec, config: paramiko.SSHConfig | None) -> SSHTarget:
    """The cluster file wins where it says something; ~/.ssh/config fills in the rest."""
    found = config.lookup(node.host) if config is not None else {"hostname": node.host}
    identities = [node.identity_file] if node.identity_file else list(found.get("identityfile", []))
    return SSHTarget(
        hostname=str(found.get("hostname", node.host)),
        port=node.port or int(found.get("port", 22)),
        user=node.user or str(found.get("user") or getpass.getuser()),
        identity_files=tuple(str(Path(p).expanduser()) for p in identities),
        known_hosts=Path(node.known_hosts).expanduser(),
        proxy_jump=node.proxy_jump or _unless_none(found.get("proxyjump")),
        proxy_command=None if node.proxy_jump else _unless_none(found.get("proxycommand")),
    )


def _unless_none(value: object) -> str | None:
    """ssh_config spells "no proxy" as the word none."""
    return None if value is None or str(value).lower() == "none" else str(value)


def jump_node(spec: str, behind: NodeSpec) -> NodeSpec:
    """A node for the last hop of a ProxyJump `[user@]host[:port],...`; earlier hops become its jump."""
    *earlier, last = [hop.strip() for hop in spec.split(",")]
    user, _, hostport = last.rpartition("@")
    host, _, port = hostport.partition(":")
    return replace(
        behind,
        name=f"jump:{last}",
        host=host,
        cluster_ip=host,
        user=user or None,
        port=int(port) if port else None,
        proxy_jump=",".join(earlier) or None,
    )
