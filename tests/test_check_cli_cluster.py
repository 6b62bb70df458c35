"""The headless `check`, `run --fanout` and `nodes` as a user runs them, on the real test cluster
(issue 16, item 7): check's documented exit codes each forced with the stand-ins' hardware states,
`check --watch` seeing a node change between two refreshes and stopping on Ctrl-C, the fan-out bound
measured on the hosts themselves, and `nodes` listing the cluster file as the console resolved it."""

from __future__ import annotations

import json
import os
import queue
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
import yaml

from console import exitcodes
from tests.testcluster import TestCluster

pytestmark = pytest.mark.cluster
HOSTS = ["h0", "h1", "h2", "h3"]
CLI = [sys.executable, "-m", "console.cli"]
# hccn_tool printing something no hccn_tool prints: the link's state cannot be read, so UNKNOWN
UNREADABLE_LINK = "unreadable-link"


def write_cluster(test_cluster: TestCluster, path: Path, known_hosts: Path, names: list[str],
                  **top: object) -> Path:
    file = test_cluster.cluster_yaml(path, names, known_hosts=known_hosts,
                                     extra_defaults={"connect_timeout": 3})
    document = yaml.safe_load(file.read_text())
    document["health"] = {"disk_free_gb": 0.01}  # the hosts' storage shares this machine's disk
    document.update(top)
    file.write_text(yaml.safe_dump(document, sort_keys=False))
    return file


@pytest.fixture
def cluster_file(test_cluster: TestCluster, tmp_path: Path, known_hosts: Path) -> Iterator[Path]:
    recordings = [test_cluster.host(h).state_dir / "bin" / "recordings" / UNREADABLE_LINK for h in HOSTS]
    try:
        for folder in recordings:
            folder.mkdir(exist_ok=True)
            (folder / "hccn-link.txt").write_text("link status: SIDEWAYS\n")
        yield write_cluster(test_cluster, tmp_path / "c.yaml", known_hosts, HOSTS)
    finally:
        for host in HOSTS:
            test_cluster.set_hardware(host, "healthy")
        for folder in recordings:
            shutil.rmtree(folder, ignore_errors=True)


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, "COLUMNS": "200"})


def statuses(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return {node["name"]: node["status"] for node in json.loads(done.stdout)["nodes"]}


# --- check: exit codes -----------------------------------------------------------------------------

CUT = "cut"  # not a hardware state: the host's links set down


@pytest.mark.parametrize(("states", "code", "expected"), [
    ({}, exitcodes.OK, {}),
    ({"h1": "busy"}, exitcodes.NODE_FAILED, {"h1": "WARN"}),
    ({"h2": UNREADABLE_LINK}, exitcodes.NODE_FAILED, {"h2": "UNKNOWN"}),
    ({"h1": "busy", "h2": "alarm"}, exitcodes.UNREACHABLE, {"h1": "WARN", "h2": "FAIL"}),
    ({"h1": "busy", "h3": CUT}, exitcodes.UNREACHABLE, {"h1": "WARN", "h3": "UNREACHABLE"}),
], ids=["all-ok", "one-warn", "one-unknown", "warn-and-fail", "warn-and-unreachable"])
def test_check_exit_code_is_the_worst_nodes(test_cluster: TestCluster, cluster_file: Path,
                                            states: dict[str, str], code: int, expected: dict[str, str]):
    """README: 0 all OK, 1 any WARN (docs/check-json.md: or UNKNOWN), 2 any FAIL or UNREACHABLE; the
    same code with and without --json, and every node not named here is OK."""
    cut = [host for host, state in states.items() if state == CUT]
    for host, state in states.items():
        if state != CUT:
            test_cluster.set_hardware(host, state)
    try:
        for host in cut:
            test_cluster.cut(host)
        as_json = cli("check", "-c", str(cluster_file), "--json")
        as_text = cli("check", "-c", str(cluster_file))
    finally:
        for host in cut:
            test_cluster.heal(host)
    assert statuses(as_json) == {host: expected.get(host, "OK") for host in HOSTS}
    assert as_json.returncode == code, as_json.stderr
    assert as_text.returncode == code, as_text.stdout + as_text.stderr


def test_check_exit_code_counts_only_the_nodes_asked_for(test_cluster: TestCluster, cluster_file: Path):
    test_cluster.set_hardware("h1", "busy")
    others = cli("check", "-c", str(cluster_file), "--nodes", "h[0,2-3]", "--json")
    warned = cli("check", "-c", str(cluster_file), "--nodes", "h1", "--json")
    assert (others.returncode, statuses(others)) == (exitcodes.OK, {"h0": "OK", "h2": "OK", "h3": "OK"})
    assert (warned.returncode, statuses(warned)) == (exitcodes.NODE_FAILED, {"h1": "WARN"})


# --- check --watch ---------------------------------------------------------------------------------

class Lines:
    """A running command's output read on a thread, so that every wait for a line has a limit."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def until(self, wanted: Callable[[str], bool], what: str, limit: float = 60.0) -> str:
        deadline = time.monotonic() + limit
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                said = "".join(self.seen)
                raise AssertionError(f"no {what} within {limit:g}s; output so far:\n{said}") from None
            if line is None:
                raise AssertionError(f"the output ended before {what}:\n{''.join(self.seen)}")
            self.seen.append(line)
            if wanted(line):
                return line


@pytest.fixture
def watching(cluster_file: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start `check --watch` with the given arguments; whatever the test does, it is gone afterwards."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen([*CLI, "check", "-c", str(cluster_file), *args], text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env={**os.environ, "COLUMNS": "200"})
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def interrupt(process: subprocess.Popen[str]) -> tuple[int, str]:
    """Ctrl-C as a terminal sends it; the exit code and what was said on stderr."""
    process.send_signal(signal.SIGINT)
    try:
        code = process.wait(timeout=30)  # a hang detector only: it should take well under a second
    except subprocess.TimeoutExpired:
        raise AssertionError("check --watch did not end within 30 s of Ctrl-C") from None
    assert process.stderr is not None
    return code, process.stderr.read()


def test_check_watch_json_streams_each_refresh_sees_a_change_and_stops_on_ctrl_c(
        test_cluster: TestCluster, watching: Callable[..., subprocess.Popen[str]]):
    """--watch's help: "check again every SECONDS over the same connections (Ctrl-C stops)"."""
    logins = {host: test_cluster.accepted_logins(host) for host in HOSTS}
    process = watching("--watch", "0.5", "--json")
    assert process.stdout is not None
    lines = Lines(process.stdout)
    first = json.loads(lines.until(lambda _line: True, "the first refresh"))
    assert {n["name"]: n["status"] for n in first["nodes"]} == dict.fromkeys(HOSTS, "OK")

    test_cluster.set_hardware("h2", "busy")
    # one document a line, each a whole refresh: read on until one shows the change
    changed = json.loads(lines.until(
        lambda line: {n["name"]: n["status"] for n in json.loads(line)["nodes"]}["h2"] == "WARN",
        "a refresh with h2 WARN"))
    assert {n["name"]: n["status"] for n in changed["nodes"]} == {"h0": "OK", "h1": "OK", "h2": "WARN",
                                                                  "h3": "OK"}
    assert changed["summary"]["text"].startswith("3/4 nodes OK")
    # each refresh reads the nodes again: the next still sees h2 as it now is
    again = json.loads(lines.until(lambda _line: True, "one more refresh"))
    assert {n["name"]: n["status"] for n in again["nodes"]}["h2"] == "WARN"
    # every refresh over the one connection each host accepted when the watch began
    opened = {host: test_cluster.accepted_logins(host) - logins[host] for host in HOSTS}
    assert opened == dict.fromkeys(HOSTS, 1)

    code, stderr = interrupt(process)
    assert code == exitcodes.INTERRUPTED, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr, stderr


def test_check_watch_table_redraws_with_the_change_and_stops_on_ctrl_c(
        test_cluster: TestCluster, watching: Callable[..., subprocess.Popen[str]]):
    process = watching("--watch", "0.5")
    assert process.stdout is not None
    lines = Lines(process.stdout)
    title = f"{test_cluster.prefix}: "
    lines.until(lambda line: line.startswith(f"{title}4/4 nodes OK"), "the first table")
    lines.until(lambda line: line.startswith(f"{title}4/4 nodes OK"), "a second table, the same")

    test_cluster.set_hardware("h0", "alarm")
    lines.until(lambda line: line.startswith(f"{title}3/4 nodes OK"), "a table with h0 failing")
    row = lines.until(lambda line: line.startswith("│ h0 "), "h0's row under it")
    assert "FAIL" in row and "NPU 2: health Alarm" in row, row

    code, stderr = interrupt(process)
    assert code == exitcodes.INTERRUPTED, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr, stderr


# --- run --fanout ----------------------------------------------------------------------------------

FANNED = 8
DEFAULT_FANOUT = 64  # README: the cluster file's fanout, 64 when it has none


def fanout_cluster(test_cluster: TestCluster, path: Path, known_hosts: Path, **top: object) -> Path:
    """FANNED nodes on the four hosts (two node names a host, each its own SSH connection), with the
    default connect timeout: eight logins at once on a busy machine are not quick, and none is cut."""
    file = write_cluster(test_cluster, path, known_hosts, HOSTS, **top)
    document = yaml.safe_load(file.read_text())
    del document["defaults"]["connect_timeout"]
    document["nodes"] = [{"name": f"n{i}", "host": test_cluster.host(HOSTS[i % len(HOSTS)]).address}
                         for i in range(FANNED)]
    file.write_text(yaml.safe_dump(document, sort_keys=False))
    return file


def most_at_once(log: Path) -> int:
    """The most commands running at one moment, from the start and end each wrote (one clock: the
    hosts are namespaces of this machine), an end before a start at the same instant."""
    events = sorted((float(stamp), 1 if kind == "start" else -1)
                    for kind, stamp in (line.split() for line in log.read_text().splitlines()))
    assert len(events) == 2 * FANNED, log.read_text()
    running = peak = 0
    for _stamp, step in events:
        running += step
        peak = max(peak, running)
    return peak


# Each node's command is a barrier: it writes its start, waits (~30 s at most, then gives up) until the log
# holds `together` starts, and holds its slot half a second more before it writes its end. With `together`
# the most the bound lets run at once, that many are certain to overlap however far apart the logins
# finish (none ends before the last of them has started); the half second gives commands beyond the
# bound, were there any, time to show.
BARRIER = """log=$1 together=$2
echo start "$(date +%s.%N)" >> "$log"
waited=0
while [ "$(grep -c start "$log")" -lt "$together" ] && [ "$waited" -lt 300 ]; do
    sleep 0.1; waited=$((waited + 1))
done
sleep 0.5
echo end "$(date +%s.%N)" >> "$log"
"""


def run_timed(cluster: Path, log: Path, bound: int, *fanout: str) -> int:
    together = min(bound, FANNED)
    line = f"sh -c {shlex.quote(BARRIER)} barrier {shlex.quote(str(log))} {together}"
    done = cli("run", "-c", str(cluster), *fanout, "--json", "--sh", line)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["summary"]["ok"] == FANNED
    return most_at_once(log)


@pytest.mark.parametrize("fanout", [1, 3])
def test_run_never_has_more_than_fanout_nodes_at_once(test_cluster: TestCluster, known_hosts: Path,
                                                     tmp_path: Path, fanout: int):
    """Measured on the hosts: each node's command writes when it starts and ends (the log is on a path
    every host sees), and the peak of commands running at once is the bound, reached."""
    cluster = fanout_cluster(test_cluster, tmp_path / "c.yaml", known_hosts)
    assert run_timed(cluster, tmp_path / "log", fanout, "--fanout", str(fanout)) == fanout


def test_the_same_measure_sees_more_nodes_at_once_without_the_bound(test_cluster: TestCluster,
                                                                    known_hosts: Path, tmp_path: Path):
    """The measure can fail the test above: with the default fanout (64) the eight run at once."""
    cluster = fanout_cluster(test_cluster, tmp_path / "c.yaml", known_hosts)
    assert run_timed(cluster, tmp_path / "log", DEFAULT_FANOUT) == FANNED


def test_the_cluster_files_fanout_bounds_run_and_the_option_overrides_it(
        test_cluster: TestCluster, known_hosts: Path, tmp_path: Path):
    cluster = fanout_cluster(test_cluster, tmp_path / "c.yaml", known_hosts, fanout=2)
    assert run_timed(cluster, tmp_path / "default.log", 2) == 2
    assert run_timed(cluster, tmp_path / "option.log", 4, "--fanout", "4") == 4


# --- nodes -----------------------------------------------------------------------------------------

def nodes_cluster(test_cluster: TestCluster, path: Path, known_hosts: Path) -> Path:
    """The four hosts and the isolated one behind h0, one node with settings of its own."""
    file = write_cluster(test_cluster, path, known_hosts, HOSTS)
    document = yaml.safe_load(file.read_text())
    document["nodes"][2].update(port=2222, devices=4, workdir="/data/work", cluster_ip="192.168.7.12")
    document["nodes"].append({"name": "i0", "host": test_cluster.host("i0").address, "proxy_jump": "h0"})
    file.write_text(yaml.safe_dump(document, sort_keys=False))
    return file


def test_nodes_json_lists_every_node_with_defaults_and_its_own_settings(
        test_cluster: TestCluster, known_hosts: Path, tmp_path: Path):
    file = nodes_cluster(test_cluster, tmp_path / "c.yaml", known_hosts)
    done = cli("nodes", "-c", str(file), "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert (document["cluster"], document["source"]) == (test_cluster.prefix, str(file))
    nodes = {n["name"]: n for n in document["nodes"]}
    assert list(nodes) == [*HOSTS, "i0"]  # in the file's order: node rank order
    for name in ("h0", "h1", "h3", "i0"):
        address = test_cluster.host(name).address
        expected = {"host": address, "cluster_ip": address, "user": "root", "port": 22, "devices": 8,
                    "workdir": test_cluster.node_storage_path, "transport": "ssh", "connect_timeout": 3,
                    "identity_file": str(test_cluster.client_key), "known_hosts": str(known_hosts),
                    "proxy_jump": "h0" if name == "i0" else None}
        assert {key: nodes[name][key] for key in expected} == expected, name
    own = nodes["h2"]
    assert (own["port"], own["devices"], own["workdir"], own["cluster_ip"], own["user"]) == (
        2222, 4, "/data/work", "192.168.7.12", "root")

    picked = cli("nodes", "-c", str(file), "--nodes", "h[1-2]", "--json")
    assert [n["name"] for n in json.loads(picked.stdout)["nodes"]] == ["h1", "h2"]


def test_nodes_are_the_nodes_check_reaches(test_cluster: TestCluster, cluster_file: Path):
    listed = json.loads(cli("nodes", "-c", str(cluster_file), "--json").stdout)["nodes"]
    checked = json.loads(cli("check", "-c", str(cluster_file), "--json").stdout)["nodes"]
    assert [(n["name"], n["host"]) for n in listed] == [(n["name"], n["host"]) for n in checked]


def test_nodes_table_at_80_columns_shows_every_node_and_value_whole(
        test_cluster: TestCluster, known_hosts: Path, tmp_path: Path):
    file = nodes_cluster(test_cluster, tmp_path / "c.yaml", known_hosts)
    done = subprocess.run([*CLI, "-c", str(file), "nodes"], capture_output=True, text=True, timeout=60,
                          check=False, env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{test_cluster.prefix} ({file})"
    assert all(len(line) <= 80 for line in lines if "│" in line), done.stdout
    assert "…" not in done.stdout, done.stdout
    rows = {line.split("│")[1].strip(): line for line in lines if line.startswith("│ ")}
    for name in [*HOSTS, "i0"]:
        assert test_cluster.host(name).address in rows[name], (name, done.stdout)
    assert "192.168.7.12" in rows["h2"] and "2222" in rows["h2"]
    assert [p for p in rows["h2"].split("│")[1:-1] if p.strip()][-1].strip() == "4"  # its devices
    # the workdir is a path: never cut; said whole, in the row or under the table
    assert test_cluster.node_storage_path in done.stdout and "/data/work" in done.stdout


# npu-smi held on one host: it writes when it starts and when it ends, and waits while the file `hold`
# is beside it. The probe's own limit on a tool (remote.probe.TOOL_TIMEOUT) ends it otherwise, with
# SIGTERM to it and its sleep (the trap then writes its end at once).
HELD_NPU_SMI = """#!/bin/sh
here=$(dirname "$0")
echo "start $$" >> "$here/held.log"
trap 'echo "end $$" >> "$here/held.log"; exit 143' TERM
while [ -e "$here/hold" ]; do sleep 0.1 & wait $!; done
echo "end $$" >> "$here/held.log"
"""


def holding(log: Path) -> set[str]:
    """The held npu-smis running now: started, not said to have ended, and alive (the hosts share this
    machine's process table; one killed outright writes no end)."""
    said = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    started = {pid for kind, pid in said if kind == "start"} - {pid for kind, pid in said if kind == "end"}
    return {pid for pid in started if comm(pid) == "npu-smi"}


def comm(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:  # gone
        return ""


def wait_for(condition: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {limit:g}s")
        time.sleep(0.05)


def test_check_watch_stops_on_ctrl_c_in_the_middle_of_a_refresh(
        test_cluster: TestCluster, watching: Callable[..., subprocess.Popen[str]]):
    """Ctrl-C while a refresh waits on a node (h1's npu-smi held: seen running on h1 when the signal
    is sent): the same clean end as between refreshes."""
    bin_dir = test_cluster.host("h1").state_dir / "bin"
    hold, log = bin_dir / "hold", bin_dir / "held.log"
    process = watching("--watch", "0.5", "--json")
    assert process.stdout is not None
    lines = Lines(process.stdout)
    lines.until(lambda _line: True, "the first refresh")
    try:
        hold.touch()
        held = bin_dir / ".npu-smi.held"
        held.write_text(HELD_NPU_SMI)
        held.chmod(0o755)
        held.replace(bin_dir / "npu-smi")  # whole or not at all, for an npu-smi starting meanwhile
        # a later refresh's npu-smi on h1, holding; one the probe's limit ended first does not count
        wait_for(lambda: bool(holding(log)), "npu-smi holding on h1")
        code, stderr = interrupt(process)
    finally:
        hold.unlink(missing_ok=True)
        wait_for(lambda: not holding(log), "held npu-smi ending once released")
        log.unlink(missing_ok=True)
    assert code == exitcodes.INTERRUPTED, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr, stderr
