"""What a test mounts on a host, undone and checked: a mount left behind (a read-only bind, a stand-in
over a tool, a tiny tmpfs) would stay for every later test of the session."""

from __future__ import annotations

from tests.testcluster.cluster import TestCluster
from tests.testcluster.commands import ClusterError


def mounts_at(cluster: TestCluster, host: str, path: str) -> int:
    """How many filesystems are mounted at `path` on the host, stacked ones counted."""
    found = cluster.exec(host, ["findmnt", "-l", "-n", "-o", "TARGET", "--mountpoint", path])
    if found.returncode not in (0, 1):  # 1: none there
        raise ClusterError(f"{host}: findmnt {path}: {found.stderr.strip()}")
    return len(found.stdout.split())


def unmount_to(cluster: TestCluster, host: str, path: str, before: int) -> None:
    """Unmount from `path` on the host what was stacked there over the `before` mounts found first;
    raises unless every unmount succeeded and exactly those are left."""
    for _ in range(mounts_at(cluster, host, path) - before):
        done = cluster.exec(host, ["umount", "-l", path])
        if done.returncode != 0:
            raise ClusterError(f"{host}: umount -l {path}: {done.stderr.strip()}")
    left = mounts_at(cluster, host, path)
    if left != before:
        raise ClusterError(f"{host}: {left} mounts at {path} after unmounting, {before} before the test")
