"""Fault matrix: a stop that cannot see everything says so. A node whose login cannot read the ranks'
`/proc/*/environ` (they run as another user) or whose `npu-smi` cannot be read is not reported stopped;
the stop names the node and what it could not verify."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from console.cli import main
from console.store import Store
from tests.cluster_jobs import cli, cluster_file
from tests.faults.nodes import hidden_processes, marked_pids, must, record_job, second_user, start_hand_run
from tests.testcluster import TestCluster

pytestmark = [pytest.mark.faults, pytest.mark.cluster]


def end_run(test_cluster: TestCluster, host: str, job_id: str, pid: int) -> None:
    """As root: the run's process group killed, and nothing of the job left (checked by pid)."""
    test_cluster.exec(host, ["kill", "-s", "KILL", "--", f"-{pid}"])
    deadline = time.monotonic() + 15
    while marked_pids(test_cluster, host, job_id) and time.monotonic() < deadline:
        for left in marked_pids(test_cluster, host, job_id):
            test_cluster.exec(host, ["kill", "-s", "KILL", str(left)])
        time.sleep(0.2)
    assert marked_pids(test_cluster, host, job_id) == []


def test_a_login_that_cannot_read_the_ranks_environment_does_not_report_a_stop(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys, state: Path):
    job_id = "20261207-030001-unreadable"
    with second_user(test_cluster, "h2") as user:
        run = start_hand_run(test_cluster, "h2", job_id, (0,))
        try:
            assert marked_pids(test_cluster, "h2", job_id), "the hand run did not start"
            as_user = cluster_file(test_cluster, tmp_path, known_hosts, ["h2"], user=user)
            record_job(state, as_user, job_id, [run])
            code, stopped = cli(capsys, "-c", str(as_user), "stop", job_id, "--timeout", "1", "--json")
            text_code = _text_stop(capsys, as_user, job_id)
            # the ranks were never seen, so never signalled: they still run, and the stop says so
            assert marked_pids(test_cluster, "h2", job_id)
            must(test_cluster, "h2", 'kill -s 0 "$1"', str(run.pid))
        finally:
            end_run(test_cluster, "h2", job_id, run.pid)
    assert code == 1 and stopped["stopped"] is False, stopped
    [h2] = stopped["nodes"]
    assert (h2["node"], h2["ok"], h2["found"], h2["remaining"]) == ("h2", False, [], [])
    [why] = h2["unverified"]
    assert "cannot read the environment" in why and str(run.pid) in why
    assert text_code[0] == 1, text_code
    assert "h2: could not verify: cannot read the environment" in text_code[1]
    with Store(state / "console.db") as store:
        assert store.job(job_id).state != "stopped"
        events = [e for e in store.events(job_id) if e.kind == "stop-failed"]  # one per stop
        assert len(events) == 2 and all(e.node == "h2" and "could not verify the stop" in e.message
                                        for e in events)


def test_a_login_from_which_proc_hides_the_ranks_does_not_report_a_stop(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys, state: Path):
    """/proc mounted with hidepid: the second user does not even see the run's processes; its launcher,
    named by the job's pid file, answers kill -0 with "not permitted", and the stop says so."""
    job_id = "20261207-030006-hidepid"
    with second_user(test_cluster, "h2") as user, hidden_processes(test_cluster, "h2"):
        run = start_hand_run(test_cluster, "h2", job_id, (0,))
        try:
            as_user = cluster_file(test_cluster, tmp_path, known_hosts, ["h2"], user=user)
            record_job(state, as_user, job_id, [run])
            code, stopped = cli(capsys, "-c", str(as_user), "stop", job_id, "--timeout", "1", "--json")
            must(test_cluster, "h2", 'kill -s 0 "$1"', str(run.pid))  # it still runs: never seen
        finally:
            end_run(test_cluster, "h2", job_id, run.pid)
    assert code == 1 and stopped["stopped"] is False, stopped
    [h2] = stopped["nodes"]
    assert (h2["found"], h2["remaining"]) == ([], [])
    [why] = h2["unverified"]
    assert f"the job's launcher (process {run.pid}) is hidden from this login" in why


def test_a_node_whose_npu_smi_cannot_be_read_is_not_reported_stopped(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys, state: Path):
    job_id = "20261207-030002-nonpusmi"
    run = start_hand_run(test_cluster, "h3", job_id, (0,))
    npu_cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h3"], backend="npu", devices=8)
    record_job(state, npu_cluster, job_id, [run])
    test_cluster.set_hardware("h3", "no-driver")
    try:
        code, stopped = cli(capsys, "-c", str(npu_cluster), "stop", job_id, "--timeout", "2", "--json")
        left = marked_pids(test_cluster, "h3", job_id)
    finally:
        test_cluster.set_hardware("h3", "healthy")
        end_run(test_cluster, "h3", job_id, run.pid)
    assert left == []  # the ranks did stop: what is missing is npu-smi's word on the devices
    assert code == 1 and stopped["stopped"] is False, stopped
    [h3] = stopped["nodes"]
    assert h3["found"] and h3["remaining"] == [] and not h3["ok"]
    [why] = h3["unverified"]
    assert why.startswith("npu-smi could not be read: ") and "not" in why.removeprefix("npu-smi could not")


def _text_stop(capsys, cluster: Path, job_id: str) -> tuple[int, str]:
    code = main(["-c", str(cluster), "stop", job_id, "--timeout", "1"])
    return code, capsys.readouterr().out


def test_nothing_is_left_on_the_hosts(test_cluster: TestCluster):
    for host in ("h2", "h3"):
        assert must(test_cluster, host, "mount | grep -c ' /etc ' || true").strip() == "0"
