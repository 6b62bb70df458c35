"""`jobs` and `status` against job directories made by hand on real test hosts, over SSH.

Each directory is put into one state as the launcher and its wrapper would leave it: a real
`setsid` process group for a running node, a pid that no longer exists for a lost one, exit_code
and stop_requested files for ended ones. The console then reads them back through its own store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from console.records import JobRecord, LaunchRecord
from console.store import Store
from tests.testcluster import TestCluster

pytestmark = pytest.mark.cluster
JOBS = f"{TestCluster.node_storage_path}/jobs"
HOSTILE_ID = "20250101-000000-x'; touch /tmp/pwned #\"$(touch /tmp/pwned2)`touch /tmp/pwned3`\nz"


@dataclass
class Hosts:
    """Job directories made on the test hosts; running process groups are killed at the end."""

    cluster: TestCluster
    groups: list[tuple[str, int]] = field(default_factory=list)

    def sh(self, host: str, script: str, *args: str) -> str:
        done = self.cluster.exec(host, ["sh", "-c", script, "sh", *args])
        assert done.returncode == 0, done.stderr
        return done.stdout

    def job_dir(self, host: str, job_id: str, **files: str) -> str:
        path = f"{JOBS}/{job_id}"
        self.sh(host, 'mkdir -p "$1"', path)
        for name, text in files.items():
            self.sh(host, 'printf "%s\\n" "$2" > "$1"', f"{path}/{name}", text)
        return path

    def running(self, host: str, job_id: str) -> tuple[str, int]:
        """A process group led by its own session, as `setsid` leaves the launcher's wrapper."""
        path = self.job_dir(host, job_id)
        self.sh(host, 'setsid -f sh -c \'echo $$ > "$1/pid.tmp" && mv "$1/pid.tmp" "$1/pid"; '
                      'exec sleep 1000\' sh "$1" </dev/null >/dev/null 2>&1; '
                      'i=0; while [ ! -s "$1/pid" ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i+1)); done',
                path)
        pid = int(self.sh(host, 'cat "$1/pid"', path))
        self.groups.append((host, pid))
        return path, pid

    def dead_pid(self, host: str) -> str:
        return self.sh(host, "true & wait; echo $!").strip()

    def end(self, host: str, pid: int) -> None:
        self.sh(host, 'kill -s KILL -- "-$1"', str(pid))
        self.groups.remove((host, pid))


@pytest.fixture
def hosts(test_cluster: TestCluster) -> Iterator[Hosts]:
    made = Hosts(test_cluster)
    try:
        yield made
    finally:
        for host, pid in made.groups:
            test_cluster.exec(host, ["kill", "-s", "KILL", "--", f"-{pid}"])
        for host in ("h0", "h1", "h2", "h3"):
            test_cluster.exec(host, ["rm", "-rf", JOBS])


@pytest.fixture
def cluster_file(test_cluster: TestCluster, tmp_path: Path, known_hosts: Path) -> Path:
    return test_cluster.cluster_yaml(tmp_path / "cluster.yaml", ["h0", "h1", "h2", "h3"],
                                     known_hosts=known_hosts,
                                     extra_defaults={"connect_timeout": 3, "command_timeout": 30})


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def record(state: Path, cluster_file: Path, job_id: str, nodes: list[tuple[str, str]]) -> None:
    """What the launcher records once every node has started: the job and one launch per node."""
    with Store(state / "console.db") as store:
        store.create_job(
            JobRecord(job_id, job_id[16:], "achy", str(cluster_file), "config", state="running",
                      created_at=1.0, updated_at=1.0),
            [LaunchRecord(job_id, node, rank, job_dir, state="starting", updated_at=1.0)
             for rank, (node, job_dir) in enumerate(nodes)])


def console(state: Path, cluster_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "ASCEND_CONSOLE_STATE": str(state)}
    return subprocess.run([sys.executable, "-m", "console.cli", "-c", str(cluster_file), *args],
                          capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)


def jobs_json(state: Path, cluster_file: Path, *args: str) -> dict[str, Any]:
    done = console(state, cluster_file, "jobs", "--json", *args)
    document: dict[str, Any] = json.loads(done.stdout)
    document["exit"] = done.returncode
    return document


def by_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["id"]: job for job in document["jobs"]}


def node_states(job: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {n["node"]: (n["state"], n["exit_code"]) for n in job["nodes"]}


def test_every_node_state_is_read_back_from_the_hosts(hosts: Hosts, state: Path, cluster_file: Path):
    run_dir, run_pid = hosts.running("h0", "20250101-000001-run")
    record(state, cluster_file, "20250101-000001-run",
           [("h0", run_dir), ("h1", hosts.job_dir("h1", "20250101-000001-run", pid="77777", exit_code="0"))])
    record(state, cluster_file, "20250101-000002-bad", [
        ("h0", hosts.job_dir("h0", "20250101-000002-bad", pid=hosts.dead_pid("h0"), exit_code="3")),
        ("h1", hosts.job_dir("h1", "20250101-000002-bad", pid=hosts.dead_pid("h1"), exit_code="0"))])
    record(state, cluster_file, "20250101-000003-lost", [
        ("h1", hosts.job_dir("h1", "20250101-000003-lost", pid=hosts.dead_pid("h1"))),
        ("h2", hosts.job_dir("h2", "20250101-000003-lost", pid=hosts.dead_pid("h2"), exit_code="0"))])
    record(state, cluster_file, "20250101-000004-stop", [
        ("h2", hosts.job_dir("h2", "20250101-000004-stop", pid=hosts.dead_pid("h2"), exit_code="143",
                             stop_requested="1735689600")),
        ("h0", hosts.job_dir("h0", "20250101-000004-stop", pid=hosts.dead_pid("h0"),
                             stop_requested="1735689600"))])
    record(state, cluster_file, "20250101-000005-new", [("h2", hosts.job_dir("h2", "20250101-000005-new"))])

    document = jobs_json(state, cluster_file)
    assert document["exit"] == 0 and document["failures"] == []
    jobs = by_id(document)
    assert {i: (j["state"], j["exit_code"]) for i, j in jobs.items()} == {
        "20250101-000001-run": ("running", None),
        "20250101-000002-bad": ("failed", 3),
        "20250101-000003-lost": ("failed", None),  # a vanished run fails its job (console/jobs/lostrun.py)
        "20250101-000004-stop": ("stopped", None),
        "20250101-000005-new": ("starting", None),
    }
    assert node_states(jobs["20250101-000001-run"]) == {"h0": ("running", None), "h1": ("exited", 0)}
    assert node_states(jobs["20250101-000004-stop"]) == {"h2": ("stopped", 143), "h0": ("stopped", None)}

    status = console(state, cluster_file, "status", "20250101-000001-run", "--json")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    h0 = shown["nodes"][0]
    assert (h0["rank"], h0["node"], h0["pid"], h0["log_path"]) == (0, "h0", run_pid, f"{run_dir}/logs")
    assert "starting -> running" in [e["message"] for e in shown["events"] if e["node"] == "h0"]

    # the run ends with its code: the next look says so, and the finished jobs leave the default list
    hosts.end("h0", run_pid)
    hosts.sh("h0", 'printf "0\\n" > "$1/exit_code"', run_dir)
    after = by_id(jobs_json(state, cluster_file))
    assert (after["20250101-000001-run"]["state"], after["20250101-000001-run"]["exit_code"]) == ("exited", 0)
    assert set(by_id(jobs_json(state, cluster_file))) == {"20250101-000005-new"}
    assert len(by_id(jobs_json(state, cluster_file, "--all", "--no-refresh"))) == 5


def test_the_table_and_the_status_page_read_as_text(hosts: Hosts, state: Path, cluster_file: Path):
    run_dir, run_pid = hosts.running("h1", "20250101-000006-text")
    record(state, cluster_file, "20250101-000006-text", [("h1", run_dir)])
    table = console(state, cluster_file, "jobs")
    assert table.returncode == 0, table.stderr
    assert "20250101-000006-text" in table.stdout and "1: 1 running" in table.stdout
    page = console(state, cluster_file, "status", "20250101-000006-text")
    assert str(run_pid) in page.stdout and f"{run_dir}/logs" in page.stdout
    missing = console(state, cluster_file, "status", "20250101-000006-txt")
    assert missing.returncode == 64
    assert "no job '20250101-000006-txt'" in missing.stderr and "20250101-000006-text" in missing.stderr


def test_a_cut_host_is_unreachable_with_its_last_known_state(
        hosts: Hosts, test_cluster: TestCluster, state: Path, cluster_file: Path):
    job = "20250101-000007-cut"
    record(state, cluster_file, job, [(host, hosts.running(host, job)[0]) for host in ("h2", "h3")])
    assert by_id(jobs_json(state, cluster_file))[job]["state"] == "running"
    test_cluster.cut("h3")
    try:
        done = console(state, cluster_file, "status", job, "--json", "--timeout", "5")
        shown = json.loads(done.stdout)
        assert done.returncode == 2
        [h3] = [n for n in shown["nodes"] if n["node"] == "h3"]
        assert (h3["state"], h3["last_known"]) == ("unreachable", "running")
        assert h3["reason"] and [f["node"] for f in shown["failures"]] == ["h3"]
        assert shown["state"] == "running"  # not finished while a node's last word was "running"
        assert "last known: running" in " ".join(e["message"] for e in shown["events"])
        text = console(state, cluster_file, "status", job, "--timeout", "5")
        assert "unreachable" in text.stderr and "h3" in text.stderr
    finally:
        test_cluster.heal("h3")
    back = by_id(jobs_json(state, cluster_file))[job]
    assert node_states(back) == {"h2": ("running", None), "h3": ("running", None)}


def test_a_hostile_job_id_cannot_inject(hosts: Hosts, test_cluster: TestCluster, state: Path,
                                        cluster_file: Path):
    job_dir = hosts.job_dir("h0", HOSTILE_ID, pid=hosts.dead_pid("h0"), exit_code="5")
    record(state, cluster_file, HOSTILE_ID, [("h0", job_dir)])
    job = by_id(jobs_json(state, cluster_file))[HOSTILE_ID]
    assert (job["state"], job["exit_code"], job["nodes"][0]["job_dir"]) == ("failed", 5, job_dir)
    assert hosts.sh("h0", "ls /tmp | grep pwned || true") == ""
    assert not list(Path("/tmp").glob("pwned*"))
