"""Distribution on the real test cluster: rsync over real sshd, relayed node to node, links cut."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from remote.inventory import Cluster, load_cluster
from remote.pool import NodePool
from remote.relayplan import SOURCE, NodeProgress
from remote.transfer import DistributionResult, TransferOptions, distribute
from tests.testcluster import TestCluster

pytestmark = pytest.mark.cluster

MIB = 1024 * 1024
HOSTS = ["h0", "h1", "h2"]
TOKENIZER_BYTES = 300_000


def write_weights(root: Path, *, big_mib: int = 6) -> Path:
    """A small weight set: config, tokenizer and shards of a few MiB, one larger than the rest."""
    root.mkdir(parents=True)
    (root / "config.json").write_text('{"model_type": "deepseek_v3"}\n')
    (root / "tokenizer").mkdir()
    (root / "tokenizer" / "tokenizer.json").write_bytes(os.urandom(TOKENIZER_BYTES))
    for i, size in enumerate((2 * MIB, 3 * MIB, big_mib * MIB), start=1):
        (root / f"model-{i:05d}-of-00003.safetensors").write_bytes(os.urandom(size))
    return root


def local_digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def on_host(cluster: TestCluster, host: str, dest: str) -> Path:
    """Where a node's `dest` (under /srv/actest) lies, seen from this test (the root namespace)."""
    relative = Path(dest).relative_to(cluster.node_storage_path)
    return cluster.host(host).storage / relative


@pytest.fixture
def cluster_file(test_cluster: TestCluster, known_hosts: Path, tmp_path: Path) -> Cluster:
    return load_cluster(test_cluster.cluster_yaml(tmp_path / "cluster.yaml", HOSTS, known_hosts=known_hosts))


@pytest.fixture
def relay_keys(test_cluster: TestCluster) -> Iterator[None]:
    """Every host logs in to the others with a key and known host keys, as a real cluster's nodes do."""
    test_cluster.trust_each_other()
    yield
    test_cluster.distrust_each_other()


def wait_for(condition: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {limit:g}s")
        time.sleep(0.2)


def bridge_tx(cluster: TestCluster) -> int:
    """Bytes the console host (the root namespace) has sent onto the cluster's bridge."""
    return int(Path(f"/sys/class/net/{cluster.network.bridge}/statistics/tx_bytes").read_text())


def run(cluster: Cluster, source: Path | str, dest: str, **kwargs: object) -> DistributionResult:
    with NodePool(cluster) as pool:
        return distribute(pool, cluster.nodes, source, dest, **kwargs)  # type: ignore[arg-type]


def by_node(result: DistributionResult) -> dict[str, object]:
    return {n.node: n for n in result.nodes}


def assert_arrived(test_cluster: TestCluster, source: Path, dest: str, hosts: list[str]) -> None:
    expected = local_digests(source)
    for host in hosts:
        assert local_digests(on_host(test_cluster, host, dest)) == expected, host


def test_weight_set_reaches_three_hosts_relayed_with_one_copy_from_the_console(
        test_cluster: TestCluster, cluster_file: Cluster, relay_keys: None, tmp_path: Path) -> None:
    weights = write_weights(tmp_path / "weights")
    size = sum(p.stat().st_size for p in weights.rglob("*") if p.is_file())
    dest = "/srv/actest/relay weights"
    before = bridge_tx(test_cluster)
    result = run(cluster_file, weights, dest, options=TransferOptions(wave_bytes=2 * MIB))
    sent_by_console = bridge_tx(test_cluster) - before

    assert result.ok, [n.error for n in result.failed]
    assert [(h.node, h.upstream) for h in result.hops] == [("h0", SOURCE), ("h1", "h0"), ("h2", "h1")]
    assert all(n.method == "rsync" and n.verified and n.files_sent == 5 for n in result.nodes)
    assert_arrived(test_cluster, weights, dest, HOSTS)
    # one copy crossed the console's link (plus SSH and the orchestration commands), not three
    assert size <= sent_by_console < 1.5 * size
    assert size <= result.console_bytes < 1.1 * size
    assert not on_host(test_cluster, "h2", dest).joinpath(".ascend-incoming").exists()


def test_without_node_to_node_logins_every_node_is_fed_by_the_console(
        test_cluster: TestCluster, cluster_file: Cluster, tmp_path: Path) -> None:
    weights = write_weights(tmp_path / "weights", big_mib=1)
    result = run(cluster_file, weights, "/srv/actest/direct")
    assert result.ok, [n.error for n in result.failed]
    assert {h.upstream for h in result.hops} == {SOURCE}
    assert_arrived(test_cluster, weights, "/srv/actest/direct", HOSTS)


def test_a_corrupted_file_on_a_node_is_found_and_sent_again(
        test_cluster: TestCluster, cluster_file: Cluster, relay_keys: None, tmp_path: Path) -> None:
    weights = write_weights(tmp_path / "weights", big_mib=1)
    dest = "/srv/actest/corrupt"
    assert run(cluster_file, weights, dest).ok
    shard = on_host(test_cluster, "h1", dest) / "model-00002-of-00003.safetensors"
    with shard.open("r+b") as handle:  # same size, one byte flipped: only a checksum sees it
        handle.seek(12345)
        byte = handle.read(1)
        handle.seek(12345)
        handle.write(bytes([byte[0] ^ 0xFF]))

    again = by_node(run(cluster_file, weights, dest))
    assert again["h1"].ok and again["h1"].files_sent == 1 and again["h1"].files_skipped == 4  # type: ignore[attr-defined]
    assert again["h0"].files_sent == 0 and again["h2"].files_sent == 0  # type: ignore[attr-defined]
    assert_arrived(test_cluster, weights, dest, HOSTS)


def test_hostile_names_survive(test_cluster: TestCluster, cluster_file: Cluster, relay_keys: None,
                               tmp_path: Path) -> None:
    source = tmp_path / "hostile"
    names = ["-rf", "--help", "a b 'c' \"d\"", "$(touch pwned)", "semi;colon", "new\nline", "back\\slash",
             "dir with space/-x", "ünïcødé", "*glob?"]
    for name in names:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(f"content of {name!r}\n")
    dest = "/srv/actest/-hostile dest; 'x'"
    result = run(cluster_file, source, dest)
    assert result.ok, [n.error for n in result.failed]
    assert_arrived(test_cluster, source, dest, HOSTS)
    for host in test_cluster.hosts:  # no name was ever run as a command, wherever it would have run
        assert not [*host.storage.rglob("pwned"), *(host.state_dir / "home").rglob("pwned")]


def test_a_link_cut_mid_file_resumes_without_resending_what_arrived(
        test_cluster: TestCluster, cluster_file: Cluster, relay_keys: None, tmp_path: Path) -> None:
    weights = write_weights(tmp_path / "weights", big_mib=12)
    big = 12 * MIB
    dest = "/srv/actest/resume"
    cut = threading.Event()

    def watch(progress: NodeProgress) -> None:
        # the big shard is a wave of its own, second to last: cut h1 a quarter of the way into it
        # (what rsync reports sent runs ahead of what has arrived by the buffers in between)
        into_big = progress.bytes_done - (progress.bytes_total - big - TOKENIZER_BYTES)
        if progress.node == "h1" and into_big > big // 4 and not cut.is_set():
            cut.set()
            test_cluster.cut("h1")

    options = TransferOptions(wave_bytes=4 * MIB, io_timeout=4, bwlimit_kib=3 * 1024)
    try:
        first = by_node(run(cluster_file, weights, dest, options=options, on_progress=watch))
    finally:
        test_cluster.heal("h1")
    assert cut.is_set()
    assert first["h1"].error and not first["h1"].ok  # type: ignore[attr-defined]
    assert first["h0"].ok and first["h2"].ok  # type: ignore[attr-defined]  # h2 re-routed around h1
    assert not (on_host(test_cluster, "h1", dest) / "model-00003-of-00003.safetensors").exists()

    second = by_node(run(cluster_file, weights, dest, options=TransferOptions(io_timeout=10)))
    h1 = second["h1"]
    # the three shards before the cut are not sent again; the big one resumes from what arrived
    assert h1.ok and h1.files_skipped == 3 and h1.files_sent == 2  # type: ignore[attr-defined]
    assert h1.bytes_sent < TOKENIZER_BYTES + 0.8 * big  # type: ignore[attr-defined]
    assert second["h0"].bytes_sent == 0 and second["h2"].bytes_sent == 0  # type: ignore[attr-defined]
    assert_arrived(test_cluster, weights, dest, HOSTS)


def test_a_relative_dest_lands_under_each_nodes_workdir(test_cluster: TestCluster, cluster_file: Cluster,
                                                       relay_keys: None, tmp_path: Path) -> None:
    """Relayed node to node too: each sender reads its own copy under its workdir, not its login's home."""
    weights = write_weights(tmp_path / "weights", big_mib=1)
    result = run(cluster_file, weights, "relative/weights")
    assert result.ok, [n.error for n in result.failed]
    assert [(h.node, h.upstream) for h in result.hops] == [("h0", SOURCE), ("h1", "h0"), ("h2", "h1")]
    dest = f"{test_cluster.node_storage_path}/relative/weights"  # the cluster file's workdir
    assert {n.destination for n in result.nodes} == {dest}
    assert_arrived(test_cluster, weights, dest, HOSTS)
    for host in test_cluster.hosts:
        assert not (host.state_dir / "home" / "relative").exists()


def test_sftp_when_rsync_is_not_to_be_used(test_cluster: TestCluster, cluster_file: Cluster,
                                           tmp_path: Path) -> None:
    weights = write_weights(tmp_path / "weights", big_mib=1)
    result = run(cluster_file, weights, "/srv/actest/sftp", options=TransferOptions(sftp_only=True))
    assert result.ok and {n.method for n in result.nodes} == {"sftp"}
    assert_arrived(test_cluster, weights, "/srv/actest/sftp", HOSTS)


def test_from_one_node_to_the_others(test_cluster: TestCluster, cluster_file: Cluster, relay_keys: None,
                                     tmp_path: Path) -> None:
    weights = write_weights(on_host(test_cluster, "h0", "/srv/actest/hub-download"), big_mib=1)
    with NodePool(cluster_file) as pool:
        result = distribute(pool, cluster_file.nodes, "/srv/actest/hub-download", "/srv/actest/hub-download",
                            from_node=cluster_file.node("h0"))
    assert result.ok, [n.error for n in result.failed]
    assert [n.node for n in result.nodes] == ["h1", "h2"] and result.console_bytes == 0
    assert [(h.node, h.upstream) for h in result.hops] == [("h1", "h0"), ("h2", "h1")]
    assert_arrived(test_cluster, weights, "/srv/actest/hub-download", ["h1", "h2"])


def test_cli_distribute_prints_every_node_as_json(test_cluster: TestCluster, known_hosts: Path,
                                                  tmp_path: Path) -> None:
    weights = write_weights(tmp_path / "weights", big_mib=1)
    cluster_yaml = test_cluster.cluster_yaml(tmp_path / "c.yaml", HOSTS, known_hosts=known_hosts)
    done = subprocess.run([sys.executable, "-m", "console.cli", "distribute", str(weights), "/srv/actest/cli",
                           "-c", str(cluster_yaml), "--nodes", "h[1-2]", "--json"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["files"] == 5 and document["ok"]
    assert [(n["node"], n["verified"], n["files_sent"]) for n in document["nodes"]] == [
        ("h1", True, 5), ("h2", True, 5)]


def test_cli_fetch_weights_names_the_node_that_cannot_download(test_cluster: TestCluster, known_hosts: Path,
                                                               tmp_path: Path) -> None:
    cluster_yaml = test_cluster.cluster_yaml(tmp_path / "c.yaml", HOSTS, known_hosts=known_hosts,
                                             extra_defaults={"python": "python3"})
    done = subprocess.run([sys.executable, "-m", "console.cli", "fetch-weights", "owner/model",
                           "/srv/actest/w", "-c", str(cluster_yaml), "--json"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert "h0: openmind_hub is not installed" in " ".join(done.stderr.split())
