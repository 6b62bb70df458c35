"""The cluster's network: bridges, veths and neighbour entries, planned as `ip -batch` lines.

Every address and MAC is fixed in advance, so each host can be told all its neighbours.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tests.testcluster.commands import COMMAND_TIMEOUT, ClusterError
from tests.testcluster.host import TestHost

CLONE_NEWNET = 0x40000000


@dataclass(frozen=True)
class Leg:
    """One veth between a bridge in the root namespace and a host."""

    link: str  # root-side name; setting it down cuts the host
    device: str  # name inside the host
    address: str
    mac: str  # fixed, so every neighbour can be told it in advance
    bridge: str


@dataclass(frozen=True)
class Neighbour:
    address: str
    mac: str


class Network:
    """The links of one cluster: hosts on the main bridge, isolated hosts behind hosts[0].

    The main bridge is `<subnet_base>.<segment>.0/24`, the isolated one the next /24: clusters that
    share a subnet_base (one test run's) keep apart by segment.
    """

    def __init__(
        self,
        prefix: str,
        subnet_base: str,
        hosts: Sequence[TestHost],
        isolated_hosts: Sequence[TestHost],
        *,
        segment: int = 0,
    ) -> None:
        self.prefix = prefix
        self.subnet_base = subnet_base
        self.segment = segment
        self.hosts = list(hosts)
        self.isolated_hosts = list(isolated_hosts)
        self.bridge = f"{prefix}br0"
        self.isolated_bridge = f"{prefix}br1"
        self.sink = f"{prefix}nul"
        self.gateway = Neighbour(f"{subnet_base}.{segment}.1", _mac(segment, 1))
        self.legs = self._plan_legs()

    def _plan_legs(self) -> dict[str, list[Leg]]:
        legs: dict[str, list[Leg]] = {}
        for i, host in enumerate(self.hosts):
            legs[host.name] = [
                Leg(f"{self.prefix}v{i}", "eth0", host.address, _mac(self.segment, 10 + i), self.bridge)
            ]
        if self.isolated_hosts:  # the bastion's second leg, on the isolated bridge
            bastion = f"{self.subnet_base}.{self.segment + 1}.1"
            legs["h0"].append(
                Leg(f"{self.prefix}b0", "eth1", bastion, _mac(self.segment + 1, 1), self.isolated_bridge)
            )
        for j, host in enumerate(self.isolated_hosts):
            legs[host.name] = [
                Leg(f"{self.prefix}x{j}", "eth0", host.address, _mac(self.segment + 1, 10 + j),
                    self.isolated_bridge)
            ]
        return legs

    def root_commands(self) -> list[str]:
        """The batch for the root namespace: bridges, sink, namespaces and veths."""
        lines = [
            f"link add {self.bridge} address {self.gateway.mac} type bridge",
            f"addr add {self.gateway.address}/24 dev {self.bridge}",
            f"link set {self.bridge} up",
        ]
        if self.isolated_hosts:  # no address: the root namespace must not reach these hosts
            lines += [f"link add {self.isolated_bridge} type bridge",
                      f"link set {self.isolated_bridge} up"]
        # The rest of the test network goes to a link that drops everything. Without it, packets
        # for isolated hosts would leave by the default route (on some sandboxes a proxy there
        # even accepts the TCP connection); with it they vanish, as on a closed private network.
        # A veth whose peer stays down, without ARP (not every kernel has the dummy driver);
        # the route goes away with the link. It covers this cluster's two segments only (the main
        # one's own /24 route is more specific), so that clusters sharing a subnet_base coexist.
        lines += [f"link add {self.sink} type veth peer name {self.sink[:-1]}p",
                  f"link set {self.sink} arp off up",
                  f"route add {self.subnet_base}.{self.segment}.0/23 dev {self.sink}"]
        for host in [*self.hosts, *self.isolated_hosts]:
            lines.append(f"netns add {host.netns}")
            for leg in self.legs[host.name]:
                lines += [
                    f"link add {leg.link} type veth peer name {leg.device}"
                    f" address {leg.mac} netns {host.netns}",
                    f"link set {leg.link} master {leg.bridge} up",
                ]
        lines += _neighbour_commands(self.bridge, self._segment(self.bridge))
        return lines

    def host_commands(self, host: TestHost) -> list[str]:
        """The batch for inside one host's namespace: addresses and neighbours."""
        lines = ["link set lo up"]
        for leg in self.legs[host.name]:
            lines += [f"addr add {leg.address}/24 dev {leg.device}",
                      f"link set {leg.device} up"]
            others = [n for n in self._segment(leg.bridge) if n.address != leg.address]
            lines += _neighbour_commands(leg.device, others)
        return lines

    def _segment(self, bridge: str) -> list[Neighbour]:
        """Every address on one bridge with its MAC, the root namespace's included."""
        members = [Neighbour(leg.address, leg.mac)
                   for legs in self.legs.values() for leg in legs if leg.bridge == bridge]
        return [self.gateway, *members] if bridge == self.bridge else members


def ip(*args: str, check: bool = True) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True,
                            timeout=COMMAND_TIMEOUT, check=False)
    if check and result.returncode != 0:
        raise ClusterError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


def enter_netns(netns: str) -> None:
    """Move the calling thread (only) into a named network namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns {netns}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def _mac(segment: int, octet: int) -> str:
    return f"02:ac:{segment:02x}:00:00:{octet:02x}"  # locally administered


def _neighbour_commands(device: str, neighbours: Iterable[Neighbour]) -> list[str]:
    # Permanent neighbour entries: a cut host then never answers (connects time out) instead
    # of failing address resolution, which the kernel reports as "No route to host".
    return [f"neigh replace {n.address} lladdr {n.mac} dev {device} nud permanent"
            for n in neighbours]
