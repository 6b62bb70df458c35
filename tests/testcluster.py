"""A cluster of real SSH hosts on this machine, for integration tests and benchmarks.

Each host is a network namespace on a Linux bridge with its own address, an "anchor" process
(`sleep infinity`) that owns the host's mount and UTS namespaces (its hostname, its private
storage at `TestCluster.node_storage_path`, its hardware stand-ins at /usr/local/sbin), and a
real OpenSSH sshd entered into those namespaces. The anchor keeps hostname and mounts alive while
sshd is killed and restarted, and gives `exec()` something to enter while sshd is down.

Layout under `root`:
    client_key, client_key.pub      the key authorised for root on every host
    <prefix>-h0/                    state_dir: host keys, sshd_config, sshd.pid, sshd.log, bin/
    storage/h0/                     the host's private storage

Everything in the kernel is named with the prefix, so a crashed run's leftovers are found and
removed by the next start(). Needs root: see capability_problem(). No pytest import here: bench/
scripts use this module too.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import yaml

SSHD = "/usr/sbin/sshd"
STANDINS = Path(__file__).resolve().parent / "standins"
STANDIN_TOOLS = ("npu-smi", "hccn_tool")
STANDIN_FILES = ("standin.sh",)
DEFAULT_HARDWARE = "healthy"
STATE_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*")  # a folder name in standins/recordings
# Set in the environment of anchors and sshd's so that a crashed run's processes are found even
# when their network namespace has lost its name.
MARKER_ENV = "ACTEST_CLUSTER"
PREFIX_PATTERN = re.compile(r"[a-z][a-z0-9]{0,9}")  # "<prefix>x123" must fit 15-char ifnames
SUBNET_PATTERN = re.compile(r"(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)")
MAX_HOSTS = 200
READY_TIMEOUT = 15.0
KILL_TIMEOUT = 5.0
COMMAND_TIMEOUT = 30.0
CLONE_NEWNET = 0x40000000


class ClusterError(RuntimeError):
    """The test cluster could not be built or driven; the message says which step and why."""


@dataclass(frozen=True)
class TestHost:
    """One host of the test cluster, as tests see it."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    """"h0", "h1", ... for hosts on the main bridge; "i0", ... for isolated hosts."""
    address: str
    """Its address on its own network; for isolated hosts reachable only from the bastion."""
    hostname: str
    """Its UTS hostname, e.g. "actest-h0"."""
    netns: str
    """Its network namespace name, e.g. "actest-h0"."""
    state_dir: Path
    """Host keys, sshd_config, sshd pid file, sshd log, bin/ (the stand-ins)."""
    storage: Path
    """Root-namespace path of its private storage, seen by the host at node_storage_path."""


@dataclass(frozen=True)
class _Leg:
    """One veth between a bridge in the root namespace and a host."""

    link: str  # root-side name; setting it down cuts the host
    device: str  # name inside the host
    address: str
    mac: str  # fixed, so every neighbour can be told it in advance
    bridge: str


@dataclass(frozen=True)
class _Neighbour:
    address: str
    mac: str


@dataclass
class _Runtime:
    """The processes behind one host while the cluster runs."""

    anchor: subprocess.Popen[bytes] | None = None
    sshd: subprocess.Popen[bytes] | None = None


def capability_problem() -> str | None:
    """Why this machine cannot build the cluster, or None if it can."""
    if not sys.platform.startswith("linux"):
        return "the test cluster needs Linux (network, mount and UTS namespaces)"
    if os.geteuid() != 0:
        return "the test cluster needs root (namespaces, bridges, mounts, sshd)"
    for tool in ("ip", "unshare", "nsenter", "ssh-keygen", SSHD):
        if shutil.which(tool) is None:
            return f"the test cluster needs {tool}, which is not installed"
    # Root inside an unprivileged container may still be refused namespaces: try one.
    probe = subprocess.run(
        ["unshare", "--net", "--mount", "--uts", "true"],
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False,
    )
    if probe.returncode != 0:
        return f"cannot create namespaces here: {probe.stderr.strip()}"
    return None


class TestCluster:
    """K SSH hosts in network namespaces, plus optional hosts reachable only via hosts[0].

    The prefix names everything this cluster creates, and start() first removes whatever
    carries it: two clusters running at once need different prefixes and subnets.
    """

    __test__ = False  # not a pytest test class, despite the name

    node_storage_path = "/srv/actest"

    def __init__(
        self,
        root: Path,
        hosts: int = 4,
        *,
        isolated: int = 0,
        prefix: str = "actest",
        subnet_base: str = "10.201",
    ) -> None:
        if not PREFIX_PATTERN.fullmatch(prefix):
            raise ValueError(f"prefix {prefix!r}: want 1-10 of [a-z0-9], starting with a letter")
        if not SUBNET_PATTERN.fullmatch(subnet_base):
            raise ValueError(f"subnet_base {subnet_base!r}: want the first two octets, '10.201'")
        if not 1 <= hosts <= MAX_HOSTS or not 0 <= isolated <= MAX_HOSTS:
            raise ValueError(f"hosts must be 1..{MAX_HOSTS} and isolated 0..{MAX_HOSTS}")
        self.root = Path(root).absolute()
        self.prefix = prefix
        self.subnet_base = subnet_base
        self.client_key = self.root / "client_key"
        self.bridge = f"{prefix}br0"
        self.isolated_bridge = f"{prefix}br1"
        self.sink = f"{prefix}nul"
        self.gateway = _Neighbour(f"{subnet_base}.0.1", _mac(0, 1))
        self.hosts = [self._describe(f"h{i}", f"{subnet_base}.0.{10 + i}") for i in range(hosts)]
        self.isolated_hosts = [
            self._describe(f"i{j}", f"{subnet_base}.1.{10 + j}") for j in range(isolated)
        ]
        self._legs = self._plan_legs()
        self._runtime = {host.name: _Runtime() for host in self.all_hosts}

    # ----------------------------------------------------------------- description

    @property
    def all_hosts(self) -> list[TestHost]:
        return [*self.hosts, *self.isolated_hosts]

    def host(self, name: str) -> TestHost:
        for host in self.all_hosts:
            if host.name == name:
                return host
        known = ", ".join(h.name for h in self.all_hosts)
        raise KeyError(f"no test host {name!r}; the cluster has {known}")

    def _describe(self, name: str, address: str) -> TestHost:
        netns = f"{self.prefix}-{name}"
        return TestHost(
            name=name, address=address, hostname=netns, netns=netns,
            state_dir=self.root / netns, storage=self.root / "storage" / name,
        )

    def _plan_legs(self) -> dict[str, list[_Leg]]:
        legs: dict[str, list[_Leg]] = {}
        for i, host in enumerate(self.hosts):
            legs[host.name] = [
                _Leg(f"{self.prefix}v{i}", "eth0", host.address, _mac(0, 10 + i), self.bridge)
            ]
        if self.isolated_hosts:  # the bastion's second leg, on the isolated bridge
            bastion = f"{self.subnet_base}.1.1"
            legs["h0"].append(
                _Leg(f"{self.prefix}b0", "eth1", bastion, _mac(1, 1), self.isolated_bridge)
            )
        for j, host in enumerate(self.isolated_hosts):
            legs[host.name] = [
                _Leg(f"{self.prefix}x{j}", "eth0", host.address, _mac(1, 10 + j),
                     self.isolated_bridge)
            ]
        return legs

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> TestCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Remove leftovers with this prefix, then build every host with empty storage.

        On return every sshd accepts connections. On failure, what was built is removed.
        """
        problem = capability_problem()
        if problem:
            raise ClusterError(problem)
        self.stop()
        try:
            self._prepare_files()
            self._build_network()
            self._start_anchors(self.all_hosts)
            self._start_sshds(self.all_hosts)
        except BaseException:
            self.stop()  # a half-built cluster would be found as leftovers anyway; be tidy now
            raise

    def stop(self) -> None:
        """Kill every process of the cluster and delete its kernel objects. Idempotent."""
        own = [p for rt in self._runtime.values() for p in (rt.anchor, rt.sshd) if p is not None]
        remove_leftovers(self.prefix, extra_pids=[p.pid for p in own])
        for proc in own:
            _reap(proc)
        self._runtime = {host.name: _Runtime() for host in self.all_hosts}

    # ----------------------------------------------------------------- building

    def _prepare_files(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # sshd refuses to start without its privilege separation directory; the hosts'
        # mount namespaces see the root namespace's /run, and need the mount point for storage.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        Path(self.node_storage_path).mkdir(parents=True, exist_ok=True)
        for path in (self.client_key, self.client_key.with_suffix(".pub")):
            path.unlink(missing_ok=True)
        keygens = [_keygen_argv("ed25519", self.client_key, f"{self.prefix}-client")]
        for host in self.all_hosts:
            for path in (host.state_dir, host.storage):
                shutil.rmtree(path, ignore_errors=True)
                path.mkdir(parents=True)
            self._install_standins(host)
            keygens += self._host_keygens(host)
        _run_parallel(keygens, "generate keys")
        authorized = self.client_key.with_suffix(".pub").read_text()
        for host in self.all_hosts:
            (host.state_dir / "authorized_keys").write_text(authorized)
            (host.state_dir / "sshd_config").write_text(self._sshd_config(host))

    def _host_keygens(self, host: TestHost) -> list[list[str]]:
        return [
            _keygen_argv(kind, host.state_dir / f"ssh_host_{kind}_key", host.hostname)
            for kind in ("ed25519", "ecdsa")
        ]

    def _sshd_config(self, host: TestHost) -> str:
        state = host.state_dir
        listen = [f"ListenAddress {leg.address}" for leg in self._legs[host.name]]
        return "\n".join([
            "Port 22",
            *listen,
            f"HostKey {state}/ssh_host_ed25519_key",
            f"HostKey {state}/ssh_host_ecdsa_key",
            f"PidFile {state}/sshd.pid",
            f"AuthorizedKeysFile {state}/authorized_keys",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",  # authorized_keys may sit under /tmp, whose mode StrictModes rejects
            "Subsystem sftp internal-sftp",  # SFTP without an extra binary
            "AllowTcpForwarding yes",  # the bastion forwards for ProxyJump
            "MaxSessions 64",
            "MaxStartups 100:30:200",  # fan-out benchmarks open many connections at once
            "LogLevel VERBOSE",
            "UseDNS no",  # no DNS here: a reverse lookup would only add a timeout
            "PrintMotd no",
            "PrintLastLog no",
            "",
        ])

    def _install_standins(self, host: TestHost) -> None:
        shutil.copytree(STANDINS / "recordings", host.state_dir / "bin" / "recordings")
        for name in STANDIN_FILES:
            shutil.copy2(STANDINS / name, host.state_dir / "bin" / name)
        self._apply_hardware(host, DEFAULT_HARDWARE)

    def _build_network(self) -> None:
        # One `ip -batch` per namespace instead of one process per command: much faster. The
        # batch files stay in the state dirs, to show how the network was built.
        root_batch = _write_lines(self.root / "network.batch", self._root_commands())
        _run_parallel([["ip", "-batch", str(root_batch)]], "build the bridges and links")
        host_batches = [
            ["ip", "-n", host.netns, "-batch",
             str(_write_lines(host.state_dir / "network.batch", self._host_commands(host)))]
            for host in self.all_hosts
        ]
        _run_parallel(host_batches, "configure the hosts' networks")

    def _root_commands(self) -> list[str]:
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
        # the route goes away with the link.
        lines += [f"link add {self.sink} type veth peer name {self.sink[:-1]}p",
                  f"link set {self.sink} arp off up",
                  f"route add {self.subnet_base}.0.0/16 dev {self.sink}"]
        for host in self.all_hosts:
            lines.append(f"netns add {host.netns}")
            for leg in self._legs[host.name]:
                lines += [
                    f"link add {leg.link} type veth peer name {leg.device}"
                    f" address {leg.mac} netns {host.netns}",
                    f"link set {leg.link} master {leg.bridge} up",
                ]
        lines += _neighbour_commands(self.bridge, self._segment(self.bridge))
        return lines

    def _host_commands(self, host: TestHost) -> list[str]:
        lines = ["link set lo up"]
        for leg in self._legs[host.name]:
            lines += [f"addr add {leg.address}/24 dev {leg.device}",
                      f"link set {leg.device} up"]
            others = [n for n in self._segment(leg.bridge) if n.address != leg.address]
            lines += _neighbour_commands(leg.device, others)
        return lines

    def _segment(self, bridge: str) -> list[_Neighbour]:
        """Every address on one bridge with its MAC, the root namespace's included."""
        members = [_Neighbour(leg.address, leg.mac)
                   for legs in self._legs.values() for leg in legs if leg.bridge == bridge]
        return [self.gateway, *members] if bridge == self.bridge else members

    def _start_anchors(self, hosts: Sequence[TestHost]) -> None:
        for host in hosts:
            self._runtime[host.name].anchor = self._spawn_anchor(host)
        deadline = time.monotonic() + READY_TIMEOUT
        for host in hosts:
            self._wait_anchor(host, deadline)

    def _spawn_anchor(self, host: TestHost) -> subprocess.Popen[bytes]:
        # Private propagation keeps the bind mounts out of the root namespace. /run/netns is
        # replaced by an empty one so the host neither lists nor pins the other hosts' netns.
        script = (
            'set -e; hostname "$1"; mount --bind "$2" "$3"; mount --bind "$4" /usr/local/sbin; '
            "if umount -R -l /run/netns; then mount -t tmpfs netns /run/netns; fi; "
            "exec sleep infinity"
        )
        argv = [
            "ip", "netns", "exec", host.netns,
            "unshare", "--mount", "--uts", "--propagation", "private", "--",
            "sh", "-c", script, "anchor", host.hostname, str(host.storage),
            self.node_storage_path, str(host.state_dir / "bin"),
        ]
        with (host.state_dir / "anchor.log").open("ab") as log:
            return subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True, env=self._marked_env(),
            )

    def _wait_anchor(self, host: TestHost, deadline: float) -> None:
        """Wait until the anchor has made its mounts (it has exec'd sleep)."""
        anchor = self._runtime[host.name].anchor
        assert anchor is not None
        while _comm(anchor.pid) != "sleep":
            if anchor.poll() is not None or time.monotonic() > deadline:
                log = _tail(host.state_dir / "anchor.log")
                raise ClusterError(
                    f"could not set up the namespaces of {host.name} "
                    f"(exit status {anchor.poll()}):\n{log}"
                )
            time.sleep(0.01)

    def _marked_env(self) -> dict[str, str]:
        return {**os.environ, MARKER_ENV: self.prefix}

    # ----------------------------------------------------------------- sshd

    def _start_sshds(self, hosts: Sequence[TestHost]) -> None:
        for host in hosts:
            self._runtime[host.name].sshd = self._spawn_sshd(host)
        deadline = time.monotonic() + READY_TIMEOUT
        results: dict[str, str | None] = {host.name: "the probe did not run" for host in hosts}
        threads = [
            threading.Thread(target=self._probe_sshd, args=(host, deadline, results))
            for host in hosts
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        failures = [self._sshd_failure(host, reason)
                    for host in hosts if (reason := results[host.name]) is not None]
        if failures:
            raise ClusterError("\n\n".join(failures))

    def _spawn_sshd(self, host: TestHost) -> subprocess.Popen[bytes]:
        anchor = self._runtime[host.name].anchor
        if anchor is None or anchor.poll() is not None:
            raise ClusterError(f"{host.name} is not running; start() the cluster first")
        log = host.state_dir / "sshd.log"
        # nsenter and sshd -D exec without forking, so the Popen pid is the listener's pid.
        argv = [
            "nsenter", "-t", str(anchor.pid), "-n", "-m", "-u", "--",
            SSHD, "-D", "-e", "-E", str(log), "-f", str(host.state_dir / "sshd_config"),
        ]
        with log.open("ab") as out:  # errors before sshd opens its log still land there
            return subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True, env=self._marked_env(),
            )

    def _probe_sshd(self, host: TestHost, deadline: float, results: dict[str, str | None]) -> None:
        """Thread body: connect to port 22 from inside the host's netns until sshd greets.

        From inside, because the root namespace cannot reach isolated hosts.
        """
        sshd = self._runtime[host.name].sshd
        try:
            _enter_netns(host.netns)  # this thread only; it ends with the probe
            while True:
                if sshd is not None and sshd.poll() is not None:
                    results[host.name] = f"sshd exited with status {sshd.returncode}"
                    return
                if _greets(host.address, 22):
                    results[host.name] = None
                    return
                if time.monotonic() > deadline:
                    results[host.name] = f"no SSH banner on port 22 within {READY_TIMEOUT:.0f}s"
                    return
                time.sleep(0.02)
        except OSError as error:
            results[host.name] = f"probe failed: {error}"

    def _sshd_failure(self, host: TestHost, reason: str) -> str:
        log = _tail(host.state_dir / "sshd.log")
        return f"sshd on {host.name} ({host.address}): {reason}; sshd.log ends:\n{log}"

    def kill_sshd(self, name: str) -> None:
        """SIGKILL the host's sshd listener and its session processes, as in a crash."""
        runtime = self._runtime[self.host(name).name]
        if runtime.sshd is not None:
            _kill_tree(runtime.sshd.pid)
            _reap(runtime.sshd)
            runtime.sshd = None

    def start_sshd(self, name: str) -> None:
        """(Re)start the host's sshd; returns once it accepts TCP connections on port 22."""
        host = self.host(name)
        self._stop_listener(host)
        self._start_sshds([host])

    def _stop_listener(self, host: TestHost) -> None:
        """SIGTERM the listener only: like restarting sshd, open sessions survive."""
        sshd = self._runtime[host.name].sshd
        if sshd is not None and sshd.poll() is None:
            sshd.terminate()
            _reap(sshd)
        self._runtime[host.name].sshd = None

    def rotate_host_key(self, name: str) -> None:
        """Give the host new host keys and restart its sshd ("host key changed")."""
        host = self.host(name)
        for path in host.state_dir.glob("ssh_host_*_key*"):
            path.unlink()
        _run_parallel(self._host_keygens(host), f"generate new host keys for {name}")
        self.start_sshd(name)

    def host_key_line(self, name: str) -> str:
        """known_hosts lines for the host's current keys: "ADDRESS keytype base64"."""
        host = self.host(name)
        lines = []
        for kind in ("ed25519", "ecdsa"):
            keytype, blob = (host.state_dir / f"ssh_host_{kind}_key.pub").read_text().split()[:2]
            lines.append(f"{host.address} {keytype} {blob}")
        return "\n".join(lines)

    def accepted_logins(self, name: str) -> int:
        """How many SSH logins the host's sshd has accepted since start() (from its log)."""
        log = self.host(name).state_dir / "sshd.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return sum(1 for line in text.splitlines() if line.startswith("Accepted publickey for "))

    def write_known_hosts(self, path: Path, names: list[str] | None = None) -> Path:
        """A known_hosts file for the named hosts (default: all, isolated ones included)."""
        chosen = names if names is not None else [h.name for h in self.all_hosts]
        path.write_text("".join(self.host_key_line(name) + "\n" for name in chosen))
        return path

    def write_ssh_config(self, path: Path, known_hosts: Path) -> Path:
        """An ssh_config (for `ssh -F`) that reaches every host as root with the client key.

        Needed for `ssh -J`: options given with -o/-i apply to the target, not the jump host.
        """
        path.write_text(
            "Host *\n"
            "    User root\n"
            f"    IdentityFile {self.client_key}\n"
            "    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile {known_hosts}\n"
            "    GlobalKnownHostsFile /dev/null\n"
            "    StrictHostKeyChecking yes\n"
            "    BatchMode yes\n"
        )
        return path

    # ----------------------------------------------------------------- faults and state

    def cut(self, name: str) -> None:
        """Set the host's links down (the bastion's both): packets are dropped, connects time out."""
        for leg in self._legs[self.host(name).name]:
            _ip("link", "set", leg.link, "down")

    def heal(self, name: str) -> None:
        for leg in self._legs[self.host(name).name]:
            _ip("link", "set", leg.link, "up")

    def set_hardware(self, name: str, state: str) -> None:
        """Choose the recorded hardware state the host's npu-smi / hccn_tool report."""
        self._apply_hardware(self.host(name), state)

    def _apply_hardware(self, host: TestHost, state: str) -> None:
        bin_dir = host.state_dir / "bin"
        folder = bin_dir / "recordings" / state
        if not STATE_PATTERN.fullmatch(state) or not folder.is_dir():
            known = sorted(p.name for p in (bin_dir / "recordings").iterdir() if p.is_dir())
            raise ValueError(f"no hardware state {state!r}; known: {', '.join(known)}")
        absent = _absent_tools(folder / "absent")
        for tool in STANDIN_TOOLS:
            if tool in absent:
                (bin_dir / tool).unlink(missing_ok=True)
            else:
                _replace_file(bin_dir / tool, (STANDINS / tool).read_bytes(), mode=0o755)
        _replace_file(bin_dir / "hardware", f"{state}\n".encode(), mode=0o644)

    def exec(
        self, name: str, argv: list[str], timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run argv inside the host's network, mount and UTS namespaces (not over SSH)."""
        anchor = self._runtime[self.host(name).name].anchor
        if anchor is None or anchor.poll() is not None:
            raise ClusterError(f"{name} is not running; start() the cluster first")
        return subprocess.run(
            ["nsenter", "-t", str(anchor.pid), "-n", "-m", "-u", "--", *argv],
            capture_output=True, text=True, timeout=timeout, check=False,
        )

    def cluster_yaml(
        self,
        path: Path,
        names: list[str] | None = None,
        *,
        known_hosts: Path,
        extra_defaults: dict[str, object] | None = None,
    ) -> Path:
        """A cluster file for the console; default nodes: the directly reachable hosts."""
        chosen = names if names is not None else [h.name for h in self.hosts]
        defaults: dict[str, object] = {
            "user": "root",
            "port": 22,
            "identity_file": str(self.client_key),
            "known_hosts": str(known_hosts),
            "workdir": self.node_storage_path,
            "devices": 8,
            "transport": "ssh",
            **(extra_defaults or {}),
        }
        nodes = [{"name": n, "host": self.host(n).address} for n in chosen]
        document = {"name": self.prefix, "defaults": defaults, "nodes": nodes}
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path


# --------------------------------------------------------------------- leftovers


def remove_leftovers(prefix: str, extra_pids: Iterable[int] = ()) -> None:
    """Remove every process, namespace, link and mount a cluster with this prefix may have left.

    Never raises for things already gone: it runs on partial state (a crashed run, a failed start).
    """
    namespaces = _prefixed_netns(prefix)
    _kill_and_wait({*_cluster_pids(prefix, namespaces), *extra_pids})
    for netns in namespaces:
        _ip("netns", "delete", netns, check=False)
    # Deleting a namespace frees its veths only later (asynchronously): delete them now, or the
    # next start() finds the names taken.
    for link in _prefixed_links(prefix):
        _ip("link", "delete", link, check=False)
    for mount_point in _prefixed_mounts(prefix):
        subprocess.run(["umount", "-l", mount_point], capture_output=True, check=False,
                       timeout=COMMAND_TIMEOUT)


def leftovers(prefix: str) -> list[str]:
    """What a cluster with this prefix has left behind, for assertions and diagnostics."""
    namespaces = _prefixed_netns(prefix)
    found = [f"netns {ns}" for ns in namespaces]
    found += [f"link {link}" for link in _prefixed_links(prefix)]
    found += [f"process {pid} ({_comm(pid)})" for pid in sorted(_cluster_pids(prefix, namespaces))]
    found += [f"mount {m}" for m in _prefixed_mounts(prefix)]
    return found


def _prefixed_netns(prefix: str) -> list[str]:
    try:
        names = os.listdir("/run/netns")
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(f"{prefix}-"))


def _prefixed_links(prefix: str) -> list[str]:
    pattern = re.compile(rf"{re.escape(prefix)}(br[01]|nu[lp]|[vbx]\d+)")
    return sorted(n for n in os.listdir("/sys/class/net") if pattern.fullmatch(n))


def _prefixed_mounts(prefix: str) -> list[str]:
    with open("/proc/self/mountinfo") as mountinfo:
        points = [line.split()[4] for line in mountinfo]
    return [p for p in points if p.startswith(f"/run/netns/{prefix}-")]


def _cluster_pids(prefix: str, namespaces: Sequence[str]) -> set[int]:
    """Processes in the prefix's namespaces, marked with it, or sshd's running its configs."""
    inodes = set()
    for netns in namespaces:
        try:
            stat = os.stat(f"/run/netns/{netns}")
            inodes.add((stat.st_dev, stat.st_ino))
        except OSError:
            continue
    marker = f"\0{MARKER_ENV}={prefix}\0".encode()
    config = re.compile(rf"/{re.escape(prefix)}-[^/]+/sshd_config")
    found = set()
    for pid in _all_pids():
        if pid == os.getpid():
            continue
        try:
            net = os.stat(f"/proc/{pid}/ns/net")
            environ = b"\0" + Path(f"/proc/{pid}/environ").read_bytes()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or a kernel thread
            continue
        is_sshd = bool(argv) and argv[0].endswith(b"sshd")
        if ((net.st_dev, net.st_ino) in inodes or marker in environ
                or (is_sshd and any(config.search(a.decode(errors="replace")) for a in argv))):
            found.add(pid)
    return found


# --------------------------------------------------------------------- processes


def _all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _parent_and_state(pid: int) -> tuple[int, str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
    return int(fields[1]), fields[0]


def _alive(pid: int) -> bool:
    info = _parent_and_state(pid)
    return info is not None and info[1] not in ("Z", "X")


def _kill_and_wait(pids: Iterable[int]) -> None:
    """SIGKILL, then wait (bounded) until each is gone or a zombie."""
    pending = set(pids)
    for pid in pending:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + KILL_TIMEOUT
    while pending and time.monotonic() < deadline:
        pending = {pid for pid in pending if _alive(pid)}
        time.sleep(0.01)


def _kill_tree(root_pid: int) -> None:
    """SIGKILL a process and all its descendants.

    Stop them first, until no new child appears, then kill: killing a parent first would
    re-parent its children to init, and they would escape.
    """
    stopped: set[int] = set()
    for _ in range(100):
        parents = {pid: info[0] for pid in _all_pids() if (info := _parent_and_state(pid))}
        tree = {root_pid} | _descendants(root_pid, parents)
        new = tree - stopped
        if not new:
            break
        for pid in new:
            _signal(pid, signal.SIGSTOP)
        stopped |= new
    _kill_and_wait(stopped)


def _descendants(root_pid: int, parents: dict[int, int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), [root_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.kill(pid, signum)


def _reap(proc: subprocess.Popen[bytes]) -> None:
    """Wait for a child we started (so it leaves no zombie); kill it if it lingers."""
    try:
        proc.wait(timeout=KILL_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):  # stuck in the kernel: give up
            proc.wait(timeout=KILL_TIMEOUT)


# --------------------------------------------------------------------- commands and files


def _ip(*args: str, check: bool = True) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True,
                            timeout=COMMAND_TIMEOUT, check=False)
    if check and result.returncode != 0:
        raise ClusterError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


def _neighbour_commands(device: str, neighbours: Iterable[_Neighbour]) -> list[str]:
    # Permanent neighbour entries: a cut host then never answers (connects time out) instead
    # of failing address resolution, which the kernel reports as "No route to host".
    return [f"neigh replace {n.address} lladdr {n.mac} dev {device} nud permanent"
            for n in neighbours]


def _keygen_argv(kind: str, path: Path, comment: str) -> list[str]:
    return ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(path)]


def _run_parallel(commands: list[list[str]], what: str) -> None:
    procs = [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for argv in commands]
    errors = []
    for argv, proc in zip(commands, procs, strict=True):
        try:
            out, _ = proc.communicate(timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        if proc.returncode != 0:
            errors.append(f"{' '.join(argv)}: exit {proc.returncode}: {out.strip()}")
    if errors:
        raise ClusterError(f"could not {what}:\n" + "\n".join(errors))


def _enter_netns(netns: str) -> None:
    """Move the calling thread (only) into a named network namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns {netns}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def _greets(address: str, port: int) -> bool:
    """Whether an SSH server there accepts a connection and sends its banner."""
    try:
        with socket.create_connection((address, port), timeout=1) as connection:
            return connection.recv(4) == b"SSH-"
    except OSError:
        return False


def _mac(segment: int, octet: int) -> str:
    return f"02:ac:{segment:02x}:00:00:{octet:02x}"  # locally administered


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def _absent_tools(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {line for line in lines if line}


def _replace_file(path: Path, data: bytes, mode: int) -> None:
    """Write atomically: a stand-in running meanwhile sees the old file or the new, never half."""
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_bytes(data)
    temporary.chmod(mode)
    temporary.replace(path)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(cannot read {path}: {error})"
