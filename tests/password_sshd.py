"""A second sshd on a test host that offers password authentication only (no public keys): what a
console that authenticates with keys or an agent alone must refuse, saying why. It shares the host's
keys, listens on its own port, and is ended by its own pid file."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.testcluster import TestCluster
from tests.testcluster.sshd import SSHD, sshd_config

PORT = 2222


def password_only_config(test_cluster: TestCluster, name: str, port: int) -> str:
    """The host's own sshd_config, changed to offer passwords alone on `port`."""
    host = test_cluster.host(name)
    changed = {"Port 22": f"Port {port}",
               f"PidFile {host.state_dir}/sshd.pid": f"PidFile {host.state_dir}/sshd-password.pid",
               "PermitRootLogin prohibit-password": "PermitRootLogin yes",
               "PasswordAuthentication no": "PasswordAuthentication yes"}
    lines = [changed.get(line, line) for line in sshd_config(host, [host.address]).splitlines()]
    return "\n".join([*lines, "PubkeyAuthentication no", "AuthenticationMethods password", ""])


def known_hosts_for_port(known_hosts: Path, address: str, port: int) -> None:
    """Trust the host's keys on `port` as well (known_hosts names a non-22 port `[address]:port`)."""
    entries = [line.split(" ", 1) for line in known_hosts.read_text().splitlines() if line.strip()]
    extra = [f"[{address}]:{port} {rest}" for names, rest in entries if address in names.split(",")]
    assert extra, f"no key for {address} in {known_hosts}"
    known_hosts.write_text(known_hosts.read_text() + "\n".join(extra) + "\n")


@contextmanager
def password_only_sshd(test_cluster: TestCluster, name: str, port: int = PORT) -> Iterator[None]:
    """For the block, an sshd on the host's `port` that offers password authentication only."""
    state = test_cluster.host(name).state_dir
    config = state / "sshd_password_config"
    config.write_text(password_only_config(test_cluster, name, port))
    started = test_cluster.exec(name, [SSHD, "-f", str(config), "-E", str(state / "sshd-password.log")])
    assert started.returncode == 0, started.stderr
    pid_file = state / "sshd-password.pid"
    try:
        deadline = time.monotonic() + 10
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pid_file.exists(), (state / "sshd-password.log").read_text()
        yield
    finally:
        if pid_file.exists():
            test_cluster.exec(name, ["kill", pid_file.read_text().strip()])
