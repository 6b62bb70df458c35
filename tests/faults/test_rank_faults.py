"""Fault matrix: a node's processes all killed mid-run (a reboot, as far as a namespace can show it),
and a rank that hangs (SIGSTOP).

The job is `failed`, the node whose run vanished is named first, and every other node's ranks are
stopped and verified gone (checked by pid on the hosts), by the next `status` that looks (`jobs`, which
only reads, shows the node `lost` until then)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from console.cli import main
from model.logsummary import STALLED_MIN
from tests.cluster_jobs import cli, cluster_file
from tests.faults.nodes import marked_pids, reboot, record_job, start_hand_run
from tests.testcluster import TestCluster

pytestmark = [pytest.mark.faults, pytest.mark.cluster]
HOSTS = ("h0", "h1")


@pytest.fixture
def state(monkeypatch, tmp_path: Path) -> Path:
    directory = tmp_path / "state"
    monkeypatch.setenv("ASCEND_CONSOLE_STATE", str(directory))
    return directory


def test_a_rebooted_node_fails_the_job_is_named_first_and_the_others_are_stopped(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys, state: Path):
    job_id = "20261207-030004-reboot"
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, list(HOSTS))
    runs = [start_hand_run(test_cluster, host, job_id, (rank,)) for rank, host in enumerate(HOSTS)]
    record_job(state, cluster, job_id, runs)
    try:
        time.sleep(2)
        _, before = cli(capsys, "-c", str(cluster), "status", job_id, "--json")
        assert before["state"] == "running" and before["progress"], before
        reboot(test_cluster, "h1")
        _, listed = cli(capsys, "-c", str(cluster), "jobs", "--json")  # a look that only reads
        _, after = cli(capsys, "-c", str(cluster), "status", job_id, "--json")
        left = {host: marked_pids(test_cluster, host, job_id) for host in HOSTS}
    finally:
        for run in runs:
            test_cluster.exec(run.host, ["kill", "-s", "KILL", "--", f"-{run.pid}"])
    assert left == {"h0": [], "h1": []}
    [seen] = listed["jobs"]
    assert {n["node"]: n["state"] for n in seen["nodes"]} == {"h0": "running", "h1": "lost"}, seen
    assert after["state"] == "failed", after
    first = after["first_failure"]
    assert (first["node"], first["rank"], first["kind"]) == ("h1", None, "run_lost"), first
    assert "gone without an exit code" in first["message"] and first["time"] is not None
    assert {n["node"]: n["state"] for n in after["nodes"]} == {"h0": "stopped", "h1": "lost"}
    said = {(e["node"], e["kind"]) for e in after["events"]}
    assert {("h1", "lost"), ("h0", "stopped"), ("h1", "stopped")} <= said, after["events"]
    _, again = cli(capsys, "-c", str(cluster), "status", job_id, "--json")
    assert (again["state"], again["first_failure"]) == ("failed", first)  # recorded once, and final


def test_a_hung_rank_is_marked_stalled_after_many_of_its_step_times(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys, state: Path):
    """SIGSTOP: the rank's processes still run as far as the node can tell, so only its silence says
    it hangs: `status` marks it stalled once silent for STALLED_FACTOR of its 1 s steps, and at least
    STALLED_MIN seconds; the other rank is not, and the mark goes once the rank goes on."""
    job_id = "20261207-030005-hung"
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h2", "h3"])
    runs = [start_hand_run(test_cluster, host, job_id, (rank,)) for rank, host in enumerate(("h2", "h3"))]
    record_job(state, cluster, job_id, runs)
    paused = [str(pid) for pid in marked_pids(test_cluster, "h3", job_id)]
    try:
        time.sleep(2)
        _, before = cli(capsys, "-c", str(cluster), "status", job_id, "--json")
        test_cluster.exec("h3", ["kill", "-s", "STOP", *paused])
        time.sleep(STALLED_MIN + 3)
        _, hung = cli(capsys, "-c", str(cluster), "status", job_id, "--json")
        assert main(["-c", str(cluster), "status", job_id]) == 0
        text = capsys.readouterr().out
        test_cluster.exec("h3", ["kill", "-s", "CONT", *paused])
        time.sleep(3)
        _, going = cli(capsys, "-c", str(cluster), "status", job_id, "--json")
    finally:
        test_cluster.exec("h3", ["kill", "-s", "CONT", *paused])
        code, stopped = cli(capsys, "-c", str(cluster), "stop", job_id, "--timeout", "2", "--json")
    assert code == 0 and stopped["stopped"], stopped
    assert [marked_pids(test_cluster, host, job_id) for host in ("h2", "h3")] == [[], []]
    assert (before["state"], before["stalled"]) == ("running", []), before
    assert (hung["state"], hung["stalled"]) == ("running", [{"node": "h3", "rank": 1}]), hung
    assert {p["rank"]: p["stalled"] for p in hung["progress"]} == {0: False, 1: True}
    assert "STALLED h3 rank 1: no loss line for" in text
    assert going["stalled"] == [], going
