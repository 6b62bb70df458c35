"""`distribute`'s options and its human output, from the command line on the real test cluster (issue 16,
item 7): --no-relay feeds every node from the console although the nodes could relay, --from-node sends
from a node with nothing over the console's link, --bwlimit reaches every rsync that sends (seen in the
process table, and in how long the bytes take), and what a person sees at 80 columns: a bar per node
moving while it sends, then the table and the summary. And the source keyed apart from the nodes: a node
named as the console is, and a node whose DEST is the source node's own directory.

Every test writes under a directory of its own on the hosts (`scratch`, the nodes' workdir), removed
from every host afterwards, whatever the test made there."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import secrets
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from console import exitcodes
from remote.manifest import STAGING_DIR
from remote.relayplan import SOURCE
from tests.test_transfer_cluster import MIB, bridge_tx, local_digests, on_host, write_weights
from tests.testcluster import TestCluster

pytestmark = pytest.mark.cluster
HOSTS = ["h0", "h1", "h2"]
CLI = [sys.executable, "-m", "console.cli", "distribute"]


@pytest.fixture
def relay_keys(test_cluster: TestCluster) -> Iterator[None]:
    """The nodes log in to each other, as a real cluster's do: relaying is possible."""
    test_cluster.trust_each_other()
    yield
    test_cluster.distrust_each_other()


@pytest.fixture
def scratch(test_cluster: TestCluster) -> Iterator[str]:
    """A directory of this test's own on every host, gone from all of them afterwards (with whatever
    the test or the distribution left in it), so that a rerun in the same session starts clean."""
    path = f"{test_cluster.node_storage_path}/flags-{secrets.token_hex(4)}"
    try:
        yield path
    finally:
        for host in test_cluster.hosts:
            shutil.rmtree(on_host(test_cluster, host.name, path), ignore_errors=True)


@pytest.fixture
def cluster_yaml(test_cluster: TestCluster, known_hosts: Path, tmp_path: Path, scratch: str) -> Path:
    """The hosts, with `scratch` as their workdir (where a relative path lands)."""
    return test_cluster.cluster_yaml(tmp_path / "c.yaml", HOSTS, known_hosts=known_hosts,
                                     extra_defaults={"workdir": scratch})


def distribute(cluster_yaml: Path, *args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    # a hang detector below pytest's own 300 s, so that a hang is reported with what was said
    return subprocess.run([*CLI, "-c", str(cluster_yaml), *args], capture_output=True, text=True,
                          timeout=240, check=False, env={**os.environ, "COLUMNS": str(columns)})


def document(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def set_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def assert_arrived(test_cluster: TestCluster, source: Path, dest: str, hosts: list[str]) -> None:
    expected = local_digests(source)
    for host in hosts:
        assert local_digests(on_host(test_cluster, host, dest)) == expected, host


# --- --no-relay --------------------------------------------------------------------------------------

def test_no_relay_feeds_every_node_from_the_console_although_they_could_relay(
        test_cluster: TestCluster, cluster_yaml: Path, relay_keys: None, tmp_path: Path, scratch: str):
    weights = write_weights(tmp_path / "weights", big_mib=1)
    size = set_size(weights)
    before = bridge_tx(test_cluster)
    report = document(distribute(cluster_yaml, str(weights), f"{scratch}/no-relay", "--no-relay", "--json"))
    sent_by_console = bridge_tx(test_cluster) - before

    nodes = report["nodes"]
    assert [(n["node"], n["upstream"], n["method"], n["verified"]) for n in nodes] == [
        (host, SOURCE, "rsync", True) for host in HOSTS]
    # three copies left the console host, none went node to node
    assert report["console_bytes"] == sum(n["bytes_sent"] for n in nodes)
    assert report["console_bytes"] >= 3 * size
    assert sent_by_console >= 3 * size
    assert_arrived(test_cluster, weights, f"{scratch}/no-relay", HOSTS)

    # the same keys, without the option: the chain relays (so the option is what made the difference)
    relayed = document(distribute(cluster_yaml, str(weights), f"{scratch}/relayed", "--json"))
    assert [n["upstream"] for n in relayed["nodes"]] == [SOURCE, "h0", "h1"]


# --- --from-node -------------------------------------------------------------------------------------

def test_from_node_sends_from_that_node_and_the_console_link_carries_no_file(
        test_cluster: TestCluster, cluster_yaml: Path, relay_keys: None, scratch: str):
    """SRC relative: under the node's workdir; DEST elsewhere, so the source node receives a copy too."""
    weights = write_weights(on_host(test_cluster, "h1", f"{scratch}/downloaded"), big_mib=2)
    size = set_size(weights)
    before = bridge_tx(test_cluster)
    report = document(distribute(cluster_yaml, "downloaded", f"{scratch}/from-h1", "--from-node", "h1",
                                 "--json"))
    sent_by_console = bridge_tx(test_cluster) - before

    assert report["source"] == "h1:downloaded" and report["console_bytes"] == 0
    nodes = report["nodes"]
    assert [(n["node"], n["verified"], n["files_sent"]) for n in nodes] == [(h, True, 5) for h in HOSTS]
    assert nodes[0]["upstream"] == "h1"  # the chain starts at the source node, not at the console
    assert SOURCE not in {n["upstream"] for n in nodes}
    # orchestration and SSH only: far less than one copy of the set crossed the console's link
    assert sent_by_console < size / 4
    assert_arrived(test_cluster, weights, f"{scratch}/from-h1", HOSTS)
    assert not on_host(test_cluster, "h0", f"{scratch}/downloaded").exists()


def test_from_node_names_a_missing_node_or_source_and_sends_nothing(
        test_cluster: TestCluster, cluster_yaml: Path, scratch: str):
    unknown = distribute(cluster_yaml, "downloaded", f"{scratch}/x", "--from-node", "h9")
    assert unknown.returncode == exitcodes.USAGE
    assert "--from-node: no node 'h9'" in " ".join(unknown.stderr.split()), unknown.stderr
    missing = distribute(cluster_yaml, "not-there", f"{scratch}/x", "--from-node", "h1")
    assert missing.returncode == exitcodes.NODE_FAILED, missing.stdout + missing.stderr
    assert "not-there" in missing.stderr and missing.stdout == ""
    assert not any(on_host(test_cluster, h, f"{scratch}/x").exists() for h in HOSTS)


# --- the source keyed apart from the nodes ------------------------------------------------------------

def with_nodes(cluster_yaml: Path, nodes: list[dict[str, str]]) -> Path:
    """The cluster file with these nodes instead."""
    file = yaml.safe_load(cluster_yaml.read_text())
    file["nodes"] = nodes
    cluster_yaml.write_text(yaml.safe_dump(file, sort_keys=False))
    return cluster_yaml


def test_a_node_named_console_is_sent_to_and_relays_as_any_other(
        test_cluster: TestCluster, cluster_yaml: Path, relay_keys: None, tmp_path: Path, scratch: str):
    """The console as a source is shown as "console", a name the cluster file may give a node. The
    node is not the source: it waits for its waves like the others (when the name keyed both, it
    waited for waves from itself, and the run never ended)."""
    names = {"console": "h0", "h1": "h1", "h2": "h2"}
    with_nodes(cluster_yaml, [{"name": n, "host": test_cluster.host(h).address} for n, h in names.items()])
    weights = write_weights(tmp_path / "weights", big_mib=1)
    report = document(distribute(cluster_yaml, str(weights), f"{scratch}/named", "--json"))
    nodes = report["nodes"]
    # the first upstream is the console host ("console" as the source is named), then the node console
    assert [(n["node"], n["upstream"], n["method"], n["verified"], n["files_sent"]) for n in nodes] == [
        ("console", SOURCE, "rsync", True, 5), ("h1", "console", "rsync", True, 5),
        ("h2", "h1", "rsync", True, 5)]
    assert report["console_bytes"] == nodes[0]["bytes_sent"]  # one copy left the console host
    assert_arrived(test_cluster, weights, f"{scratch}/named", HOSTS)


def test_a_node_whose_dest_is_the_source_directory_has_it_whole_whatever_the_source_nodes_copy(
        test_cluster: TestCluster, cluster_yaml: Path, relay_keys: None, scratch: str):
    """--from-node h1 with SRC absolute and DEST relative: h1's DEST is under its workdir, elsewhere than
    SRC. h1b, a second node on h1's machine (same cluster_ip) with another workdir, has its DEST at the
    very SRC directory: it shares the source's files, whole where they are, and not h1's copy, which
    fails here (a file where h1's workdir should be)."""
    source = f"{scratch}/src/set"
    weights = write_weights(on_host(test_cluster, "h1", source), big_mib=1)
    original = local_digests(weights)
    on_host(test_cluster, "h1", f"{scratch}/dest").write_text("a file where the directory should be\n")
    address = {h: test_cluster.host(h).address for h in ("h0", "h1")}
    with_nodes(cluster_yaml, [{"name": "h0", "host": address["h0"], "workdir": f"{scratch}/dest"},
                              {"name": "h1", "host": address["h1"], "workdir": f"{scratch}/dest"},
                              {"name": "h1b", "host": address["h1"], "workdir": f"{scratch}/src"}])
    done = distribute(cluster_yaml, source, "set", "--from-node", "h1", "--json")
    assert done.returncode == exitcodes.NODE_FAILED, done.stdout + done.stderr
    nodes = {n["node"]: n for n in json.loads(done.stdout)["nodes"]}
    assert list(nodes) == ["h0", "h1", "h1b"]
    assert not nodes["h1"]["verified"] and "Not a directory" in nodes["h1"]["error"], nodes["h1"]
    shared = nodes["h1b"]
    assert (shared["method"], shared["shares"], shared["upstream"], shared["destination"]) == (
        "shared", "h1", "h1", source)
    assert (shared["verified"], shared["error"], shared["files_skipped"]) == (True, None, 5), shared
    assert (nodes["h0"]["upstream"], nodes["h0"]["verified"]) == ("h1", True)
    assert_arrived(test_cluster, weights, f"{scratch}/dest/set", ["h0"])
    assert local_digests(weights) == original  # the source's directory as it was


# --- --bwlimit ---------------------------------------------------------------------------------------

class SendingRsyncs:
    """Every rsync started with --rsh (a sender) while watched, with the network namespace it ran in:
    the hosts are namespaces of this machine, so one process table holds the console's and the nodes'."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.seen: dict[int, tuple[list[str], bool]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._console_netns = os.readlink("/proc/self/ns/net")

    def __enter__(self) -> SendingRsyncs:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        # every 0.1 s: each sender lives for seconds at the limit, and a pass reads little (the short
        # comm of each process, the command line of rsyncs only): the machine is busy enough
        while not self._stop.wait(0.1):
            for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
                if pid not in self.seen:
                    self._look(pid)

    def _look(self, pid: int) -> None:
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "rsync":
                return
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
            netns = os.readlink(f"/proc/{pid}/ns/net")
        except OSError:  # gone meanwhile
            return
        if "--rsh" in argv and any(self.marker in a for a in argv):
            self.seen[pid] = (argv, netns == self._console_netns)


def test_bwlimit_reaches_every_sending_rsync_and_holds_the_bytes_to_it(
        test_cluster: TestCluster, cluster_yaml: Path, relay_keys: None, tmp_path: Path, scratch: str):
    limit_kib = 512
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "shard.safetensors").write_bytes(os.urandom(2 * MIB))
    dest = f"{scratch}/limited"
    with SendingRsyncs(f"{dest}/{STAGING_DIR}") as rsyncs:
        started = time.monotonic()
        report = document(distribute(cluster_yaml, str(weights), dest, "--nodes", "h[1-2]",
                                     "--bwlimit", str(limit_kib), "--json"))
        elapsed = time.monotonic() - started
    assert [n["upstream"] for n in report["nodes"]] == [SOURCE, "h1"]
    # one sender on the console host, one on h1 relaying to h2: each capped
    assert sorted(on_console for _argv, on_console in rsyncs.seen.values()) == [False, True], rsyncs.seen
    for argv, _on_console in rsyncs.seen.values():
        assert f"--bwlimit={limit_kib}" in argv, argv
    # a lower bound only, from physics: h2 gets its wave once h1 has it whole, so the 2 MiB cross two
    # capped links one after the other (4 s each at 512 KiB/s; unlimited, the veths take milliseconds)
    at_the_limit = 2 * (2 * MIB) / (limit_kib * 1024)
    assert elapsed > 0.75 * at_the_limit, elapsed
    assert_arrived(test_cluster, weights, dest, ["h1", "h2"])


# --- what a person sees ------------------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def distribute_on_a_terminal(cluster_yaml: Path, *args: str, limit: float = 120) -> tuple[int, str, str]:
    """Run with stderr on an 80x24 terminal (where the progress is drawn) and stdout piped, as in
    `distribute ... > report.txt`; what the terminal showed (escape codes removed), and stdout.
    Not done within `limit` seconds (a hang detector: it takes seconds), it fails; killed either way."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**os.environ, "COLUMNS": "80", "LINES": "24", "TERM": "xterm-256color"}
    try:
        # a session of its own: whatever it started (rsync, ssh) is killed with it
        process = subprocess.Popen([*CLI, "-c", str(cluster_yaml), *args], stdout=subprocess.PIPE,
                                   stderr=follower, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    finally:
        os.close(follower)
    assert process.stdout is not None
    try:
        shown, stdout = until_closed(leader, process.stdout.fileno(), limit)
        code = process.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        process.stdout.close()
        os.close(leader)
    return code, ANSI.sub("", shown.decode(errors="replace")), stdout.decode()


def until_closed(terminal: int, pipe: int, limit: float) -> tuple[bytes, bytes]:
    """All that is written to the terminal and the pipe until both are closed, read side by side (a
    full pipe cannot stall the writer); an AssertionError after `limit` seconds."""
    read: dict[int, bytearray] = {terminal: bytearray(), pipe: bytearray()}
    open_ends = set(read)
    deadline = time.monotonic() + limit
    while open_ends:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"distribute not done within {limit:g}s; the terminal showed:\n"
                                 f"{ANSI.sub('', read[terminal].decode(errors='replace'))}")
        ready, _, _ = select.select(list(open_ends), [], [], min(left, 1.0))
        for end in ready:
            try:
                chunk = os.read(end, 65536)
            except OSError:  # EIO: the terminal's last writer has gone
                chunk = b""
            if chunk:
                read[end] += chunk
            else:
                open_ends.discard(end)
    return bytes(read[terminal]), bytes(read[pipe])


def small_set(root: Path) -> Path:
    """About 1 MB in three files."""
    root.mkdir(parents=True)
    (root / "config.json").write_text('{"model_type": "deepseek_v3"}\n')
    for i in (1, 2):
        (root / f"model-{i:05d}-of-00002.safetensors").write_bytes(os.urandom(MIB // 2))
    return root


MB_OF = re.compile(r"(\d+(?:\.\d+)?)/(\d+(?:\.\d+)?) MB")


def test_human_output_at_80_columns_a_bar_per_node_then_the_table_and_summary(
        test_cluster: TestCluster, cluster_yaml: Path, relay_keys: None, tmp_path: Path, scratch: str):
    weights = small_set(tmp_path / "weights")
    total_mb = f"{set_size(weights) / 1e6:.1f}"
    dest = f"{scratch}/human"
    # slow enough for the bars to be drawn while bytes move, however loaded the machine: the limit makes
    # a hop last 4 s at least, and rsync says its progress once a second (about three part-way frames)
    code, terminal, stdout = distribute_on_a_terminal(cluster_yaml, str(weights), dest, "--bwlimit", "256")
    assert code == 0, terminal + stdout

    frames = [line.strip() for line in re.split(r"[\r\n]+", terminal) if line.strip()]
    assert all(len(line) <= 80 for line in frames), [line for line in frames if len(line) > 80]
    for host, upstream in zip(HOSTS, [SOURCE, "h0", "h1"], strict=True):
        lines = [line for line in frames if line.startswith(f"{host} ")]
        moving = [m for line in lines if f"sending from {upstream}" in line
                  for m in [MB_OF.search(line)] if m and 0 < float(m.group(1)) < float(m.group(2))]
        assert moving, (host, lines)  # part-way: the bar moved while it sent
        assert all(m.group(2) == total_mb for m in moving), (host, moving)
        last = lines[-1]  # the final frame stays on the terminal
        assert f"done from {upstream}" in last and f"{total_mb}/{total_mb} MB" in last, last

    report = stdout.splitlines()
    # the first line is whole however long its paths are (README: a path is never cut); the rest fits
    assert report[0] == f"console:{weights} → {dest}: 3 files, {total_mb} MB"
    assert all(len(line) <= 80 for line in report[1:]), stdout
    rows = {line.split("│")[1].strip(): line for line in report if line.startswith("│ h")}
    assert list(rows) == HOSTS, stdout
    for host, upstream in zip(HOSTS, [SOURCE, "h0", "h1"], strict=True):
        cells = [cell.strip() for cell in rows[host].split("│")[1:-1]]
        assert cells[:3] == [host, upstream, "rsync"] and "yes" in cells, (host, cells)
    assert re.fullmatch(r"3 of 3 nodes verified in \d+\.\ds; the console host sent \d+\.\d MB",
                        report[-1]), report[-1]
    assert_arrived(test_cluster, weights, dest, HOSTS)


def test_human_output_names_the_failed_node_and_exits_1(test_cluster: TestCluster, cluster_yaml: Path,
                                                        tmp_path: Path, scratch: str):
    """A node that cannot receive (its destination is a file) is a row with the reason, not a traceback."""
    weights = write_weights(tmp_path / "weights", big_mib=1)
    dest = f"{scratch}/blocked"
    blocker = on_host(test_cluster, "h2", dest)
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the directory should be\n")
    done = distribute(cluster_yaml, str(weights), dest, columns=80)
    assert done.returncode == exitcodes.NODE_FAILED, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    report = done.stdout.splitlines()
    assert all(len(line) <= 80 for line in report[1:] if not line.startswith("h2 error: ")), done.stdout
    rows = {line.split("│")[1].strip(): line for line in report if line.startswith("│ h")}
    assert "yes" in rows["h0"] and "yes" in rows["h1"] and "no" in rows["h2"], done.stdout
    assert any(line.startswith("2 of 3 nodes verified in ") for line in report), done.stdout
    # the reason, whole on its line under the table (no room for it in a row at 80 columns)
    assert f"h2 error: h2: preparing {dest} failed: mkdir: cannot create directory '{dest}': " \
           "Not a directory" in report, done.stdout
    assert_arrived(test_cluster, weights, dest, ["h0", "h1"])
