"""Each host's OpenSSH server: its keys, its config, starting it, and waiting for its banner."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from tests.testcluster.commands import ClusterError, tail
from tests.testcluster.host import TestHost
from tests.testcluster.network import enter_netns

SSHD = "/usr/sbin/sshd"
HOST_KEY_KINDS = ("ed25519", "ecdsa")


def keygen_argv(kind: str, path: Path, comment: str) -> list[str]:
    return ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(path)]


def host_keygens(host: TestHost) -> list[list[str]]:
    return [
        keygen_argv(kind, host.state_dir / f"ssh_host_{kind}_key", host.hostname)
        for kind in HOST_KEY_KINDS
    ]


def sshd_config(host: TestHost, listen: Iterable[str]) -> str:
    """The host's sshd_config; listen: the addresses it accepts connections on."""
    state = host.state_dir
    return "\n".join([
        "Port 22",
        *(f"ListenAddress {address}" for address in listen),
        *(f"HostKey {state}/ssh_host_{kind}_key" for kind in HOST_KEY_KINDS),
        f"PidFile {state}/sshd.pid",
        f"AuthorizedKeysFile {state}/authorized_keys",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",  # authorized_keys may sit under /tmp, whose mode StrictModes rejects
        "Subsystem sftp internal-sftp",  # SFTP without an extra binary
        "AllowTcpForwarding yes",  # the bastion forwards for ProxyJump
        "MaxStartups 100:30:200",  # fan-out benchmarks open many connections at once
        "LogLevel VERBOSE",
        "UseDNS no",  # no DNS here: a reverse lookup would only add a timeout
        "PrintMotd no",
        "PrintLastLog no",
        "",
    ])


def spawn_sshd(
    host: TestHost, anchor_pid: int, env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """Start sshd inside the namespaces the anchor process holds."""
    log = host.state_dir / "sshd.log"
    # nsenter and sshd -D exec without forking, so the Popen pid is the listener's pid.
    argv = [
        "nsenter", "-t", str(anchor_pid), "-n", "-m", "-u", "--",
        SSHD, "-D", "-e", "-E", str(log), "-f", str(host.state_dir / "sshd_config"),
    ]
    with log.open("ab") as out:  # errors before sshd opens its log still land there
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            start_new_session=True, env=env,
        )


def wait_for_banners(
    sshds: Mapping[TestHost, subprocess.Popen[bytes] | None], timeout: float
) -> None:
    """Probe every host at once until its sshd greets; raise, saying why, if any did not."""
    deadline = time.monotonic() + timeout
    results: dict[str, str | None] = {host.name: "the probe did not run" for host in sshds}
    threads = [
        threading.Thread(target=_probe, args=(host, sshd, deadline, timeout, results))
        for host, sshd in sshds.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failures = [_failure(host, reason)
                for host in sshds if (reason := results[host.name]) is not None]
    if failures:
        raise ClusterError("\n\n".join(failures))


def _probe(
    host: TestHost,
    sshd: subprocess.Popen[bytes] | None,
    deadline: float,
    timeout: float,
    results: dict[str, str | None],
) -> None:
    """Thread body: connect to port 22 from inside the host's netns until sshd greets.

    From inside, because the root namespace cannot reach isolated hosts.
    """
    try:
        enter_netns(host.netns)  # this thread only; it ends with the probe
        while True:
            if sshd is not None and sshd.poll() is not None:
                results[host.name] = f"sshd exited with status {sshd.returncode}"
                return
            if _greets(host.address, 22):
                results[host.name] = None
                return
            if time.monotonic() > deadline:
                results[host.name] = f"no SSH banner on port 22 within {timeout:.0f}s"
                return
            time.sleep(0.02)
    except OSError as error:
        results[host.name] = f"probe failed: {error}"


def _failure(host: TestHost, reason: str) -> str:
    log = tail(host.state_dir / "sshd.log")
    return f"sshd on {host.name} ({host.address}): {reason}; sshd.log ends:\n{log}"


def _greets(address: str, port: int) -> bool:
    """Whether an SSH server there accepts a connection and sends its banner."""
    try:
        with socket.create_connection((address, port), timeout=1) as connection:
            return connection.recv(4) == b"SSH-"
    except OSError:
        return False
