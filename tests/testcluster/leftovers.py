"""Finding and removing what a cluster with a given prefix left behind.

Everything in the kernel is named with the prefix, and every process carries it in its
environment, so a crashed run's leftovers are found by the next one.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from tests.testcluster.commands import COMMAND_TIMEOUT
from tests.testcluster.network import ip
from tests.testcluster.processes import all_pids, comm, kill_and_wait

# Set in the environment of anchors and sshd's so that a crashed run's processes are found even
# when their network namespace has lost its name.
MARKER_ENV = "ACTEST_CLUSTER"


def marked_env(prefix: str) -> dict[str, str]:
    """This process's environment, marked as belonging to the cluster with this prefix."""
    return {**os.environ, MARKER_ENV: prefix}


def remove_leftovers(prefix: str, extra_pids: Iterable[int] = ()) -> None:
    """Remove every process, namespace, link and mount a cluster with this prefix may have left.

    Never raises for things already gone: it runs on partial state (a crashed run, a failed start).
    """
    namespaces = _prefixed_netns(prefix)
    kill_and_wait({*_cluster_pids(prefix, namespaces), *extra_pids})
    for netns in namespaces:
        ip("netns", "delete", netns, check=False)
    # Deleting a namespace frees its veths only later (asynchronously): delete them now, or the
    # next start() finds the names taken.
    for link in _prefixed_links(prefix):
        ip("link", "delete", link, check=False)
    for mount_point in _prefixed_mounts(prefix):
        subprocess.run(["umount", "-l", mount_point], capture_output=True, check=False,
                       timeout=COMMAND_TIMEOUT)


def leftovers(prefix: str) -> list[str]:
    """What a cluster with this prefix has left behind, for assertions and diagnostics."""
    namespaces = _prefixed_netns(prefix)
    found = [f"netns {ns}" for ns in namespaces]
    found += [f"link {link}" for link in _prefixed_links(prefix)]
    found += [f"process {pid} ({comm(pid)})" for pid in sorted(_cluster_pids(prefix, namespaces))]
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
    for pid in all_pids():
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
