"""Jobs on the real test cluster: msrun over SSH on two hosts, all-or-nothing starts, stop that
really stops, preflight refusals, and a console that comes back to a job it launched earlier."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.cluster_jobs import (
    STORAGE,
    cli,
    cluster_file,
    job,
    marked_processes,
    node_text,
    wait_for_loss_lines,
)
from tests.rank_jobs import REPO
from tests.testcluster import TestCluster

pytestmark = pytest.mark.cluster

@pytest.fixture(autouse=True)
def private_store(monkeypatch, tmp_path):
    monkeypatch.setenv("ASCEND_CONSOLE_STATE", str(tmp_path / "state"))


def test_two_hosts_train_under_msrun_over_ssh_and_stop_leaves_nothing(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys):
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h0", "h1"])
    code, launched = cli(capsys, "-c", str(cluster), "launch", str(job(tmp_path, 80000)), "--json")
    assert code == 0 and launched["launched"], [c for c in launched["preflight"]["checks"] if not c["ok"]]
    job_id = launched["job_id"]
    script = node_text(test_cluster, "h1", f"{STORAGE}/jobs/{job_id}/launch.sh")
    master = test_cluster.host("h0").address
    assert f"--master_addr={master}" in script and "--node_rank=1" in script and "--worker_num=2" in script
    wait_for_loss_lines(test_cluster, {"h0": f"{STORAGE}/jobs/{job_id}/logs/worker_0.log",
                                       "h1": f"{STORAGE}/jobs/{job_id}/logs/worker_1.log"})
    assert marked_processes(test_cluster, "h0", job_id) and marked_processes(test_cluster, "h1", job_id)
    code, stopped = cli(capsys, "-c", str(cluster), "stop", job_id, "--timeout", "60", "--json")
    assert code == 0 and stopped["stopped"], stopped
    assert all(node["found"] and not node["remaining"] for node in stopped["nodes"])
    for host in ("h0", "h1"):
        assert marked_processes(test_cluster, host, job_id) == []
        assert node_text(test_cluster, host, f"{STORAGE}/jobs/{job_id}/exit_code").strip()
    code, status = cli(capsys, "-c", str(cluster), "status", job_id, "--json")
    assert status["state"] == "stopped", status


def test_a_host_that_cannot_start_fails_the_launch_and_the_other_is_stopped(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys):
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h2", "h3"])
    document = yaml.safe_load(cluster.read_text())
    document["nodes"][1]["python"] = "/nowhere/bin/python"  # h3 has no msrun to start
    cluster.write_text(yaml.safe_dump(document))
    # preflight's launcher check sees that too: forced, to reach the start that fails
    code, outcome = cli(capsys, "-c", str(cluster), "launch", str(job(tmp_path, 80000)), "--json",
                        "--force", "launcher")
    assert code == 1 and not outcome["launched"], outcome
    assert outcome["failure"]["node"] == "h3"
    assert "msrun" in outcome["failure"]["reason"] and "not found" in outcome["failure"]["reason"]
    assert outcome["failure"]["stage"] == "settle" and sorted(outcome["stopped"]) == ["h2", "h3"]
    assert marked_processes(test_cluster, "h2", outcome["job_id"] or "") == []
    code, listed = cli(capsys, "-c", str(cluster), "jobs", "--all", "--json")
    [record] = [j for j in listed["jobs"]]
    assert record["state"] == "failed"


def test_preflight_refuses_busy_npus(test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys):
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h2", "h3"], backend="npu", devices=8)
    test_cluster.set_hardware("h2", "busy")
    try:
        code, verdict = cli(capsys, "-c", str(cluster), "preflight", str(job(tmp_path, 800)), "--json")
        _, forced = cli(capsys, "-c", str(cluster), "preflight", str(job(tmp_path, 800)),
                                  "--json", "--force", "npus-free")
    finally:
        test_cluster.set_hardware("h2", "healthy")
    assert code == 1 and not verdict["go"]
    [busy] = [c for c in verdict["checks"] if c["check"] == "npus-free" and not c["ok"]]
    assert busy["node"] == "h2" and "busy with process" in busy["message"]
    assert [c["node"] for c in forced["checks"] if c["check"] == "npus-free" and c["forced"]] == ["h2"], \
        forced


def test_a_restarted_console_finds_its_job_and_its_exit_code_with_hostile_names(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys):
    workdir = f"{STORAGE}/work dir/it's $(here)"
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h0", "h1"], workdir=workdir)
    name = "x'; touch /tmp/pwned; echo '$(id)"
    launched = subprocess.run(
        [sys.executable, "-m", "console.cli", "-c", str(cluster), "launch", str(job(tmp_path, 80)),
         "--name", name, "--json"], cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert launched.returncode == 0, launched.stderr[-3000:]
    job_id = json.loads(launched.stdout)["job_id"]
    assert "'" not in job_id and "$" not in job_id and ";" not in job_id
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # the launching process is gone: each look reattaches from the store
        _, listed = cli(capsys, "-c", str(cluster), "jobs", "--all", "--json")
        [record] = [j for j in listed["jobs"] if j["id"] == job_id]
        if record["state"] not in ("running", "starting", "launching"):
            break
        time.sleep(3)
    assert record["state"] == "exited" and record["exit_code"] == 0, record
    for host in ("h0", "h1"):
        assert test_cluster.exec(host, ["test", "-e", "/tmp/pwned"]).returncode != 0
        assert node_text(test_cluster, host, f"{workdir}/jobs/{job_id}/exit_code").strip() == "0"
