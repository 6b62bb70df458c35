"""NodeFollower against real sshd's on the namespace test cluster: cut links, sshd restarts, junk."""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from remote.follow import CUT_MARKER, FileCursor, NodeFollower
from remote.inventory import Cluster, load_cluster
from remote.pool import NodePool
from tests.followcheck import Collector, assert_exactly, wait_until
from tests.testcluster import TestCluster

pytestmark = pytest.mark.cluster
NODE_DIR = TestCluster.node_storage_path


@pytest.fixture
def cluster(test_cluster: TestCluster, tmp_path: Path, known_hosts: Path) -> Cluster:
    # quick to notice a dead link: keepalives every second, connects given up after 2 s
    file = test_cluster.cluster_yaml(tmp_path / "cluster.yaml", known_hosts=known_hosts,
                                     extra_defaults={"connect_timeout": 2, "keepalive": 1})
    return load_cluster(file)


@pytest.fixture
def pool(cluster: Cluster) -> Iterator[NodePool]:
    with NodePool(cluster) as pool:
        yield pool


class Place:
    """A directory on one test host: its path on the node and where the test writes it directly."""

    def __init__(self, test_cluster: TestCluster, host: str, name: str) -> None:
        self.relative = f"follow-{name}-{time.monotonic_ns()}"
        self.node_dir = f"{NODE_DIR}/{self.relative}"
        self.local = test_cluster.host(host).storage / self.relative
        self.local.mkdir(parents=True)

    def node(self, name: str) -> str:
        return f"{self.node_dir}/{name}"

    def file(self, name: str) -> Path:
        return self.local / name


def start(pool: NodePool, host: str, cursors: list[FileCursor], seen: Collector,
          **options: object) -> NodeFollower:
    follower = NodeFollower(pool.transport(host), cursors, seen, silence_timeout=3,
                            **options)  # type: ignore[arg-type]
    follower.start()
    return follower


def stop(follower: NodeFollower) -> None:
    follower.stop()
    assert follower.join(15), "the follower did not stop"


def writer(path: Path, first: int, count: int) -> threading.Thread:
    """Appends `count` log-like lines over a few seconds, in small bursts, as a rank does."""
    def write() -> None:
        for i in range(first, first + count):
            with path.open("ab") as file:
                file.write(b"2025-01-01 00:00:00 step %d loss 1.234 a line like training output\n" % i)
            if i % 25 == 0:
                time.sleep(0.05)
    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def agents_running(marker: str) -> int:
    """Follow agents (python processes) on this machine whose arguments name `marker`."""
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]).startswith(b"python") and any(marker.encode() in a for a in argv):
            count += 1
    return count


def test_appends_while_the_link_is_cut_arrive_exactly_once(
        pool: NodePool, test_cluster: TestCluster):
    place = Place(test_cluster, "h1", "cut")
    log = place.file("worker_0.log")
    log.write_bytes(b"started\n")
    seen = Collector()
    follower = start(pool, "h1", [FileCursor(place.node("worker_0.log"))], seen)
    try:
        assert wait_until(lambda: seen.consumed(place.node("worker_0.log")) == 8)
        appending = writer(log, 1, 3000)
        time.sleep(1)
        test_cluster.cut("h1")
        try:
            time.sleep(6)  # longer than the silence timeout and a connect timeout
        finally:
            test_cluster.heal("h1")
        appending.join(60)
        assert wait_until(lambda: seen.consumed(place.node("worker_0.log")) == log.stat().st_size, 60)
    finally:
        stop(follower)
    assert_exactly(seen.of(place.node("worker_0.log")), log.read_bytes())
    assert seen.kinds(None) == ["disconnected", "reconnected"]
    assert "h1" in seen.notices[0].message


def test_appends_across_an_sshd_restart_and_a_console_restart_arrive_exactly_once(
        pool: NodePool, test_cluster: TestCluster):
    place = Place(test_cluster, "h2", "sshd")
    log, path = place.file("worker_1.log"), place.node("worker_1.log")
    log.write_bytes(b"")
    seen = Collector()
    follower = start(pool, "h2", [FileCursor(path)], seen)
    try:
        appending = writer(log, 1, 3000)
        assert wait_until(lambda: seen.consumed(path) > 0)
        test_cluster.kill_sshd("h2")
        try:
            time.sleep(4)
        finally:
            test_cluster.start_sshd("h2")
        appending.join(60)
        assert wait_until(lambda: seen.consumed(path) == log.stat().st_size, 60)
    finally:
        stop(follower)
    assert seen.kinds(None) == ["disconnected", "reconnected"]
    # a new console, from the cursors the last one persisted, with lines written in between
    writer(log, 3001, 500).join(60)
    again = Collector()
    follower = start(pool, "h2", list(seen.cursors.values()), again)
    try:
        assert wait_until(lambda: again.consumed(path) == log.stat().st_size, 60)
    finally:
        stop(follower)
    assert_exactly(seen.of(path) + again.of(path), log.read_bytes())


def test_one_session_follows_many_files_through_truncation_and_replacement(
        pool: NodePool, test_cluster: TestCluster):
    place = Place(test_cluster, "h0", "many")
    names = ["worker_0.log", "it's a $(touch pwned) `log`; name", "scheduler.log", "not-yet.log"]
    for name in names[:3]:
        place.file(name).write_bytes(b"first run\n")
    seen = Collector()
    follower = start(pool, "h0", [FileCursor(place.node(n)) for n in names], seen)
    try:
        assert wait_until(lambda: len(seen.lines) == 3
                          and seen.kinds(place.node("not-yet.log")) == ["waiting"])
        assert agents_running(place.relative) == 1
        os.truncate(place.file("worker_0.log"), 0)
        assert wait_until(lambda: seen.kinds(place.node("worker_0.log")) == ["truncated"])
        place.file("new").write_bytes(b"second run\n")
        place.file("new").rename(place.file("scheduler.log"))
        place.file("not-yet.log").write_bytes(b"rank 3 started\n")
        assert wait_until(lambda: len(seen.lines) == 5)
    finally:
        stop(follower)
    assert wait_until(lambda: agents_running(place.relative) == 0, 15), "the agent outlived its follower"
    assert seen.kinds(place.node("scheduler.log")) == ["replaced"]
    assert seen.kinds(place.node("not-yet.log")) == ["waiting", "appeared"]
    assert [x.text for x in seen.of(place.node(names[1]))] == ["first run"]
    assert [(x.number, x.text) for x in seen.of(place.node("scheduler.log"))] == [
        (1, "first run"), (1, "second run")]
    assert not (place.local / "pwned").exists()


def test_a_huge_line_and_binary_junk_over_ssh_keep_the_console_bounded(
        pool: NodePool, test_cluster: TestCluster):
    place = Place(test_cluster, "h3", "junk")
    log, path = place.file("worker_3.log"), place.node("worker_3.log")
    with log.open("wb") as file:
        file.write(b"before\n" + b"x" * (10 << 20) + b"\n")
        for _ in range(50):
            file.write(os.urandom(1 << 20))
        file.write(b"\n")
    seen = Collector(keep_lines=False)
    tracemalloc.start()
    try:
        follower = start(pool, "h3", [FileCursor(path)], seen)
        assert wait_until(lambda: seen.consumed(path) == log.stat().st_size, 180)
        _, peak = tracemalloc.get_traced_memory()
        with log.open("ab") as file:
            file.write(b"still following\n")
        assert wait_until(lambda: seen.lines[-1].text == "still following")
    finally:
        tracemalloc.stop()
        stop(follower)
    assert peak < 32 << 20, f"following 60 MB peaked at {peak >> 20} MiB"
    assert max(len(line.text) for line in seen.lines) <= (64 << 10) + len(CUT_MARKER)
