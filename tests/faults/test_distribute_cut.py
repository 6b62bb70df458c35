"""Fault matrix, link cut during `distribute` (issue 15): a node's link goes down while a weight shard is
on its way to it. That node is reported within the transfer's limits, the others get everything (the
node it would have relayed to is fed around it), no copy process is left behind on any host, and the
next distribute resumes: what had arrived whole is not sent again."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from remote.inventory import Cluster, load_cluster
from remote.pool import NodePool
from remote.relayplan import NodeProgress
from remote.transfer import DistributionResult, TransferOptions, distribute
from tests.faults.faultkit import host_processes
from tests.testcluster import TestCluster

pytestmark = [pytest.mark.faults, pytest.mark.cluster]

MIB = 1024 * 1024
HOSTS = ["h0", "h1", "h2"]
BIG = 8 * MIB
IO_TIMEOUT = 4.0


@pytest.fixture
def relaying(test_cluster: TestCluster) -> Iterator[None]:
    """The hosts log in to each other, as a real cluster's nodes do, so that they relay."""
    test_cluster.trust_each_other()
    try:
        yield
    finally:
        test_cluster.distrust_each_other()


def weights(root: Path) -> Path:
    root.mkdir()
    (root / "config.json").write_text('{"model_type": "deepseek_v3"}\n')
    (root / "model-00001-of-00002.safetensors").write_bytes(os.urandom(MIB))
    (root / "model-00002-of-00002.safetensors").write_bytes(os.urandom(BIG))
    return root


def digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".ascend" not in p.as_posix()}


def copiers_left(test_cluster: TestCluster, hosts: list[str]) -> dict[str, list[int]]:
    """rsync, ssh or scp processes still running on each host."""
    found = {host: [pid for pid, name, _ in procs if name in ("rsync", "ssh", "scp")]
             for host, procs in host_processes(test_cluster, hosts).items()}
    return {host: pids for host, pids in found.items() if pids}


def test_a_link_cut_mid_distribute_is_reported_and_the_next_distribute_resumes(
        test_cluster: TestCluster, known_hosts: Path, tmp_path: Path, relaying: None):
    cluster: Cluster = load_cluster(test_cluster.cluster_yaml(
        tmp_path / "c.yaml", HOSTS, known_hosts=known_hosts, extra_defaults={"connect_timeout": 2}))
    source = weights(tmp_path / "weights")
    dest = f"{test_cluster.node_storage_path}/faults-distribute"
    cut: list[float] = []

    def cut_h1_into_the_big_shard(progress: NodeProgress) -> None:
        into_big = progress.bytes_done - (progress.bytes_total - BIG)
        if progress.node == "h1" and into_big > BIG // 4 and not cut:
            test_cluster.cut("h1")
            cut.append(time.monotonic())

    options = TransferOptions(wave_bytes=MIB, io_timeout=IO_TIMEOUT, bwlimit_kib=2 * 1024)
    try:
        with NodePool(cluster) as pool:
            first: DistributionResult = distribute(pool, cluster.nodes, source, dest, options=options,
                                                   on_progress=cut_h1_into_the_big_shard)
        reported = time.monotonic()
    finally:
        test_cluster.heal("h1")
    assert cut, "the cut never came: the big shard went too fast"
    # each attempt gives up after the I/O limit; then the nodes behind h1 are fed around it
    assert reported - cut[0] < options.attempts * (IO_TIMEOUT + 2) + 20, reported - cut[0]
    nodes = {n.node: n for n in first.nodes}
    assert not nodes["h1"].ok and nodes["h1"].error, nodes["h1"]
    assert nodes["h0"].ok and nodes["h2"].ok, [nodes["h0"].error, nodes["h2"].error]
    deadline = time.monotonic() + IO_TIMEOUT + 10  # the receiving end's own --timeout ends it
    while (left := copiers_left(test_cluster, HOSTS)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == {}, left

    with NodePool(cluster) as pool:
        second = distribute(pool, cluster.nodes, source, dest, options=TransferOptions(io_timeout=10))
    again = {n.node: n for n in second.nodes}
    assert second.ok, [n.error for n in second.failed]
    assert again["h1"].files_skipped >= 2 and again["h1"].bytes_sent < 0.9 * BIG, again["h1"]
    assert again["h0"].bytes_sent == 0 and again["h2"].bytes_sent == 0
    for host in HOSTS:
        assert digests(test_cluster.host(host).storage / "faults-distribute") == digests(source), host
    assert copiers_left(test_cluster, HOSTS) == {}
