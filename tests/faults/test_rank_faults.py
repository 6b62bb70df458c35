"""Fault matrix: a node's processes all killed mid-run (a reboot, as far as a namespace can show it),
a rank that hangs (SIGSTOP), and a rank killed with SIGKILL under msrun.

The job is `failed`, the node whose run vanished is named first, and every other node's ranks are
stopped and verified gone (checked by pid on the hosts), by the next `jobs` or `status` that looks."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from console.cli import main
from model.logsummary import STALLED_MIN
from tests.cluster_jobs import STORAGE, cli, cluster_file, wait_for_loss_lines
from tests.faults.nodes import marked_pids, must, reboot, record_job, start_hand_run
from tests.rank_jobs import write_job
from tests.test_logs_cluster import wait_finished
from tests.testcluster import TestCluster

pytestmark = [pytest.mark.faults, pytest.mark.cluster]
HOSTS = ("h0", "h1")


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
        _, listed = cli(capsys, "-c", str(cluster), "jobs", "--json")  # the next look at the job acts
        _, after = cli(capsys, "-c", str(cluster), "status", job_id, "--json")
        left = {host: marked_pids(test_cluster, host, job_id) for host in HOSTS}
    finally:
        for run in runs:
            test_cluster.exec(run.host, ["kill", "-s", "KILL", "--", f"-{run.pid}"])
    assert left == {"h0": [], "h1": []}
    [seen] = listed["jobs"]
    assert seen["state"] == "failed", seen
    assert {n["node"]: n["state"] for n in seen["nodes"]} == {"h0": "stopped", "h1": "lost"}, seen
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


FAKE_RANK = r'''
import datetime, os, time
now = datetime.datetime.now()
stamp = now.strftime("%Y-%m-%d-%H:%M:%S.") + f"{now.microsecond // 1000:03d}.{now.microsecond % 1000:03d}"
# a MindSpore line carries the process id: how msrun's "Worker process <pid> exit" finds its rank
print(f"[WARNING] ME({os.getpid()}:1,MainProcess):{stamp} [mindspore/run.py:1] started", flush=True)
step = 0
while True:
    step += 1
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    print(f"{stamp} - mindformers[train.py:86] - INFO - {{ Epoch:[  1/  1], step:[{step:5d}/ 9999], "
          "loss: 9.5, per_step_time: 500ms, lr: 0.0001, overflow cond: False, loss_scale: 1.0, "
          "global_norm: [0.9], train_throughput_per_npu: 0.015T", flush=True)
    time.sleep(0.5)
'''
"""A rank msrun starts that prints loss lines and never ends (the model is not the point here)."""
RANK_COMMAND = ('tr "\\0" "\\n" < "/proc/$1/cmdline" | head -n 2 '
                '| sed "1s#.*/##; 1s#python3.*#python#"')
"""A process's interpreter (its base name, `python`) and first argument: msrun's rank is `python SCRIPT`."""


def test_a_rank_killed_with_sigkill_fails_the_job_and_is_named_first(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys, state: Path):
    """Real msrun on two hosts; its rank on h1 gets SIGKILL. msrun there reports the worker's exit and
    ends non-zero; h0's msrun would wait for its lost peer (here for ever: these ranks never register).
    The next look (`status`) fails the job, names h1's rank 1, killed, first, and stops h0, verified."""
    script = f"{STORAGE}/fakerank.py"
    for host in HOSTS:
        must(test_cluster, host, 'printf "%s" "$2" > "$1"', script, FAKE_RANK)
    job_file = write_job(tmp_path)
    job_file.write_text(job_file.read_text() + f"console:\n  launch: msrun\n  script: {script}\n")
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, list(HOSTS))
    code, launched = cli(capsys, "-c", str(cluster), "launch", str(job_file), "--json")
    assert code == 0 and launched["launched"], launched
    job_id = launched["job_id"]
    try:
        wait_for_loss_lines(test_cluster, {host: f"{STORAGE}/jobs/{job_id}/logs/worker_{rank}.log"
                                           for rank, host in enumerate(HOSTS)}, within=60)
        [rank1] = [pid for pid in marked_pids(test_cluster, "h1", job_id)
                   if must(test_cluster, "h1", RANK_COMMAND, str(pid)).split()[:2] == ["python", script]]
        test_cluster.exec("h1", ["kill", "-s", "KILL", str(rank1)])
        status = wait_finished(cluster, job_id, capsys, within=60)
        left = {host: marked_pids(test_cluster, host, job_id) for host in HOSTS}
    finally:
        cli(capsys, "-c", str(cluster), "stop", job_id, "--timeout", "2", "--json")
        for host in HOSTS:
            test_cluster.exec(host, ["rm", "-f", script])
    assert left == {"h0": [], "h1": []}  # h0's msrun and rank stopped by the status that failed the job
    assert status["state"] == "failed" and status["exit_code"], status
    assert {n["node"]: n["state"] for n in status["nodes"]} == {"h0": "stopped", "h1": "exited"}
    first = status["first_failure"]
    assert (first["node"], first["rank"], first["kind"]) == ("h1", 1, "worker_exit"), first
    assert "SIGKILL" in first["message"] and first["file"].endswith("/console.log")
