"""The test cluster itself: building its hosts, driving their faults, writing client files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import yaml

from tests.testcluster.commands import COMMAND_TIMEOUT, ClusterError, run_parallel, tail
from tests.testcluster.hardware import apply_hardware, install_standins
from tests.testcluster.host import TestHost
from tests.testcluster.leftovers import marked_env, remove_leftovers
from tests.testcluster.network import Network, ip
from tests.testcluster.processes import comm, kill_tree, reap
from tests.testcluster.sshd import (
    HOST_KEY_KINDS,
    SSHD,
    host_keygens,
    keygen_argv,
    spawn_sshd,
    sshd_config,
    wait_for_banners,
)

PREFIX_PATTERN = re.compile(r"[a-z][a-z0-9]{0,9}")  # "<prefix>x123" must fit 15-char ifnames
SUBNET_PATTERN = re.compile(r"(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)")
MAX_HOSTS = 200
MAX_SEGMENT = 252  # the highest (even) third octet of a cluster's main bridge; isolated hosts take the next
READY_TIMEOUT = 15.0


@dataclass(frozen=True)
class ClusterPlace:
    """Where one cluster lives on this machine: the prefix that names its kernel objects and
    processes, and its addresses `<subnet_base>.<segment>.x` (isolated hosts: segment + 1).

    Clusters running at once need different places. One setting per run (a test run's, the
    benchmarks') gives one place, and every other cluster of that run is `derived` from it.
    """

    prefix: str
    subnet_base: str
    segment: int = 0

    def __post_init__(self) -> None:
        if not PREFIX_PATTERN.fullmatch(self.prefix):
            raise ValueError(f"prefix {self.prefix!r}: want 1-10 of [a-z0-9], starting with a letter")
        if not SUBNET_PATTERN.fullmatch(self.subnet_base):
            raise ValueError(f"subnet_base {self.subnet_base!r}: want the first two octets, '10.201'")
        if not 0 <= self.segment <= MAX_SEGMENT or self.segment % 2:
            raise ValueError(f"segment {self.segment}: want an even third octet, 0..{MAX_SEGMENT}")

    def derived(self, suffix: str, index: int) -> ClusterPlace:
        """Another cluster's place beside this one: prefix + suffix, and the segments 2 x index
        further on in the same subnet (index 1 and up: 0 is this place's own)."""
        return ClusterPlace(self.prefix + suffix, self.subnet_base, self.segment + 2 * index)

    def address(self, offset: int, last: int) -> str:
        return f"{self.subnet_base}.{self.segment + offset}.{last}"


DEFAULT_PLACE = ClusterPlace("actest", "10.201")


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

    Its place's prefix names everything this cluster creates, and start() first removes whatever
    carries it: two clusters running at once need different places (see ClusterPlace).
    """

    __test__ = False  # not a pytest test class, despite the name

    node_storage_path = "/srv/actest"

    def __init__(
        self,
        root: Path,
        hosts: int = 4,
        *,
        isolated: int = 0,
        place: ClusterPlace = DEFAULT_PLACE,
    ) -> None:
        if not 1 <= hosts <= MAX_HOSTS or not 0 <= isolated <= MAX_HOSTS:
            raise ValueError(f"hosts must be 1..{MAX_HOSTS} and isolated 0..{MAX_HOSTS}")
        self.root = Path(root).absolute()
        self.place = place
        self.prefix = place.prefix
        self.client_key = self.root / "client_key"
        self.hosts = [self._describe(f"h{i}", place.address(0, 10 + i)) for i in range(hosts)]
        self.isolated_hosts = [self._describe(f"i{j}", place.address(1, 10 + j)) for j in range(isolated)]
        self.network = Network(place.prefix, place.subnet_base, self.hosts, self.isolated_hosts,
                               segment=place.segment)
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
            reap(proc)
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
        keygens = [keygen_argv("ed25519", self.client_key, f"{self.prefix}-client")]
        for host in self.all_hosts:
            for path in (host.state_dir, host.storage):
                shutil.rmtree(path, ignore_errors=True)
                path.mkdir(parents=True)
            install_standins(host.state_dir / "bin")
            (host.state_dir / "home").mkdir(mode=0o700)
            keygens += host_keygens(host)
        run_parallel(keygens, "generate keys")
        authorized = self.client_key.with_suffix(".pub").read_text()
        for host in self.all_hosts:
            (host.state_dir / "authorized_keys").write_text(authorized)
            (host.state_dir / "sshd_config").write_text(self._sshd_config(host))

    def _sshd_config(self, host: TestHost) -> str:
        return sshd_config(host, [leg.address for leg in self.network.legs[host.name]])

    def _build_network(self) -> None:
        # One `ip -batch` per namespace instead of one process per command: much faster. The
        # batch files stay in the state dirs, to show how the network was built.
        root_batch = _write_lines(self.root / "network.batch", self.network.root_commands())
        run_parallel([["ip", "-batch", str(root_batch)]], "build the bridges and links")
        host_batches = [
            ["ip", "-n", host.netns, "-batch",
             str(_write_lines(host.state_dir / "network.batch", self.network.host_commands(host)))]
            for host in self.all_hosts
        ]
        run_parallel(host_batches, "configure the hosts' networks")

    def _start_anchors(self, hosts: Sequence[TestHost]) -> None:
        for host in hosts:
            self._runtime[host.name].anchor = self._spawn_anchor(host)
        deadline = time.monotonic() + READY_TIMEOUT
        for host in hosts:
            self._wait_anchor(host, deadline)

    def _spawn_anchor(self, host: TestHost) -> subprocess.Popen[bytes]:
        # Private propagation keeps the bind mounts out of the root namespace. /run/netns is
        # replaced by an empty one so the host neither lists nor pins the other hosts' netns.
        # Each host also gets its own empty /root: files left in ~ on one host are not on the
        # others, and the developer's shell start-up files (pyenv, conda: ~0.1 s a session, as
        # bash sources ~/.bashrc for sshd) do not leak into the hosts.
        # The one exception: an interpreter installed under /root (pyenv) stays visible at its own
        # path, so that the console's Python, and the ranks it launches there, run on every host.
        script = (
            'set -e; hostname "$1"; mount --bind "$2" "$3"; mount --bind "$4" /usr/local/sbin; '
            'if [ -n "$6" ]; then mkdir -p "$7"; mount --bind "$6" "$7"; fi; '
            'mount --rbind "$5" /root; '
            "if umount -R -l /run/netns; then mount -t tmpfs netns /run/netns; fi; "
            "exec sleep infinity"
        )
        interpreter, inside_home = _interpreter_under_root(host.state_dir / "home")
        argv = [
            "ip", "netns", "exec", host.netns,
            "unshare", "--mount", "--uts", "--propagation", "private", "--",
            "sh", "-c", script, "anchor", host.hostname, str(host.storage),
            self.node_storage_path, str(host.state_dir / "bin"), str(host.state_dir / "home"),
            interpreter, inside_home,
        ]
        with (host.state_dir / "anchor.log").open("ab") as log:
            return subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True, env=marked_env(self.prefix),
            )

    def _wait_anchor(self, host: TestHost, deadline: float) -> None:
        """Wait until the anchor has made its mounts (it has exec'd sleep)."""
        anchor = self._runtime[host.name].anchor
        assert anchor is not None
        while comm(anchor.pid) != "sleep":
            if anchor.poll() is not None or time.monotonic() > deadline:
                log = tail(host.state_dir / "anchor.log")
                raise ClusterError(
                    f"could not set up the namespaces of {host.name} "
                    f"(exit status {anchor.poll()}):\n{log}"
                )
            time.sleep(0.01)

    # ----------------------------------------------------------------- sshd

    def _start_sshds(self, hosts: Sequence[TestHost]) -> None:
        for host in hosts:
            self._runtime[host.name].sshd = self._spawn_sshd(host)
        wait_for_banners({host: self._runtime[host.name].sshd for host in hosts}, READY_TIMEOUT)

    def _spawn_sshd(self, host: TestHost) -> subprocess.Popen[bytes]:
        anchor = self._runtime[host.name].anchor
        if anchor is None or anchor.poll() is not None:
            raise ClusterError(f"{host.name} is not running; start() the cluster first")
        return spawn_sshd(host, anchor.pid, marked_env(self.prefix))

    def kill_sshd(self, name: str) -> None:
        """SIGKILL the host's sshd listener and its session processes, as in a crash."""
        runtime = self._runtime[self.host(name).name]
        if runtime.sshd is not None:
            kill_tree(runtime.sshd.pid)
            reap(runtime.sshd)
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
            reap(sshd)
        self._runtime[host.name].sshd = None

    def rotate_host_key(self, name: str) -> None:
        """Give the host new host keys and restart its sshd ("host key changed")."""
        host = self.host(name)
        for path in host.state_dir.glob("ssh_host_*_key*"):
            path.unlink()
        run_parallel(host_keygens(host), f"generate new host keys for {name}")
        self.start_sshd(name)

    def host_key_line(self, name: str) -> str:
        """known_hosts lines for the host's current keys: "ADDRESS keytype base64"."""
        host = self.host(name)
        lines = []
        for kind in HOST_KEY_KINDS:
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

    def trust_each_other(self) -> None:
        """Let every host log in to the others (as root, with the client key, host keys known), as
        the nodes of a real cluster do; node-to-node copies need it."""
        known = "".join(self.host_key_line(h.name) + "\n" for h in self.hosts)
        for host in self.hosts:
            ssh = host.state_dir / "home" / ".ssh"
            ssh.mkdir(mode=0o700, exist_ok=True)
            shutil.copyfile(self.client_key, ssh / "id_ed25519")
            (ssh / "id_ed25519").chmod(0o600)
            (ssh / "known_hosts").write_text(known)

    def distrust_each_other(self) -> None:
        for host in self.hosts:
            shutil.rmtree(host.state_dir / "home" / ".ssh", ignore_errors=True)

    # ----------------------------------------------------------------- faults and state

    def cut(self, name: str) -> None:
        """Set the host's links down (the bastion's both): packets are dropped, connects time out."""
        for leg in self.network.legs[self.host(name).name]:
            ip("link", "set", leg.link, "down")

    def heal(self, name: str) -> None:
        for leg in self.network.legs[self.host(name).name]:
            ip("link", "set", leg.link, "up")

    def set_hardware(self, name: str, state: str) -> None:
        """Choose the recorded hardware state the host's npu-smi / hccn_tool report."""
        apply_hardware(self.host(name).state_dir / "bin", state)

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


def _interpreter_under_root(home: Path) -> tuple[str, str]:
    """(the installation of this Python if it lives under /root, where it goes in a host's home), or
    two empty strings: a pyenv Python would vanish behind the hosts' private /root otherwise."""
    installation = Path(os.path.realpath(sys.executable)).parent.parent
    try:
        relative = installation.relative_to("/root")
    except ValueError:
        return "", ""
    return str(installation), str(home / relative)


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path
