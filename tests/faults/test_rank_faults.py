"""Fault matrix: a node's processes all killed mid-run (a reboot, as far as a namespace can show it).

The job is `failed`, the node whose run vanished is named first, and every other node's ranks are
stopped and verified gone (checked by pid on the hosts), by the next `status` that looks (`jobs`, which
only reads, shows the node `lost` until then)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

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
