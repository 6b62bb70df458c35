"""Following real jobs on the test cluster: msrun on two hosts over SSH, `logs --follow --json` through a
console killed and restarted, and who failed first when a rank is killed or prints a traceback."""

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from console.store import Store
from tests.cluster_jobs import STORAGE, cli, cluster_file, job, wait_for_loss_lines
from tests.rank_jobs import REPO
from tests.testcluster import TestCluster

pytestmark = pytest.mark.cluster

TRACEBACK = """Traceback (most recent call last):
  File "/srv/job/code/model/train.py", line 88, in <module>
    sys.exit(main())
RuntimeError: injected failure on rank 0
"""


@pytest.fixture
def state(monkeypatch, tmp_path: Path) -> Path:
    directory = tmp_path / "state"
    monkeypatch.setenv("ASCEND_CONSOLE_STATE", str(directory))
    return directory


def console(*argv: str) -> subprocess.Popen[str]:
    """The console as its own process (so it can be killed like a real one)."""
    return subprocess.Popen([sys.executable, "-m", "console.cli", *argv], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))


def loss_steps(events: list[dict[str, Any]]) -> dict[int, list[int]]:
    steps: dict[int, list[int]] = {}
    for event in events:
        if event["kind"] == "loss":
            steps.setdefault(event["rank"], []).append(event["step"])
    return steps


def test_logs_follow_json_gets_every_step_once_and_the_store_too_across_a_killed_console(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys, state: Path):
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h0", "h1"])
    code, launched = cli(capsys, "-c", str(cluster), "launch", str(job(tmp_path, 240)), "--json")
    assert code == 0 and launched["launched"], launched
    job_id = launched["job_id"]
    total = 240 // 8

    first = console("-c", str(cluster), "logs", job_id, "--follow", "--json")
    assert first.stdout is not None
    seen_loss = 0
    for line in first.stdout:  # the first console records a few steps, then dies without warning
        seen_loss += json.loads(line)["kind"] == "loss"
        if seen_loss >= 4:
            break
    first.kill()
    first.wait()

    second = console("-c", str(cluster), "logs", job_id, "--follow", "--json")
    out, err = second.communicate(timeout=900)
    assert second.returncode == 0, err[-3000:]
    events = [json.loads(line) for line in out.splitlines()]
    assert loss_steps(events) == {0: list(range(1, total + 1)), 1: list(range(1, total + 1))}
    assert {e["node"] for e in events if e["kind"] == "run-ended"} == {"h0", "h1"}
    assert all(e["node"] in ("h0", "h1") and {"rank", "kind", "severity", "time"} <= e.keys() for e in events)

    with Store(state / "console.db") as store:  # both consoles recorded: every step exactly once
        recorded = Counter((m.rank, m.step) for m in store.metrics(job_id))
    assert recorded == Counter({(rank, step): 1 for rank in (0, 1) for step in range(1, total + 1)})

    code, status = cli(capsys, "-c", str(cluster), "status", job_id.split("-")[-1], "--json")
    assert status["id"] == job_id and status["state"] == "exited" and status["first_failure"] is None
    assert {(p["rank"], p["step"]) for p in status["progress"]} == {(0, total), (1, total)}


def wait_finished(cluster: Path, job_id: str, capsys, *, within: float = 400) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        _, status = cli(capsys, "-c", str(cluster), "status", job_id, "--json")
        if status["state"] in ("failed", "exited", "stopped", "lost"):
            return dict(status)
        time.sleep(3)
    pytest.fail(f"job {job_id} still {status['state']} after {within:g} s")


RANK_PROCESSES = (
    'for e in /proc/[0-9]*/environ; do env=$(tr "\\0" "\\n" < "$e" 2>/dev/null) || continue; '
    'p=${e%/environ}; printf "%s\\n" "$env" | grep -qxF "ASCEND_CONSOLE_JOB=$1" && printf "%s\\n" '
    '"$env" | grep -qxF "RANK_ID=$2" && tr "\\0" " " < "$p/cmdline" | grep -q "train[.]py" '
    '&& echo "${p#/proc/}"; done; true')
"""Processes that carry the job's marker and a RANK_ID (msrun exports it to the rank and to the `tail`
that copies its log) and run train.py: the rank, and any process it forked."""


def rank_pids(test_cluster: TestCluster, host: str, job_id: str, rank: int) -> list[int]:
    found = test_cluster.exec(host, ["sh", "-c", RANK_PROCESSES, "sh", f"{job_id}@{host}", str(rank)])
    return [int(pid) for pid in found.stdout.split()]


def rank_pid(test_cluster: TestCluster, host: str, job_id: str, rank: int) -> int:
    """The rank's process (one: it has forked nothing)."""
    found = rank_pids(test_cluster, host, job_id, rank)
    assert len(found) == 1, found
    return found[0]


def launch_long(test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys) -> tuple[Path, str]:
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h0", "h1"])
    code, launched = cli(capsys, "-c", str(cluster), "launch", str(job(tmp_path, 80000)), "--json")
    assert code == 0 and launched["launched"], launched
    job_id = launched["job_id"]
    wait_for_loss_lines(test_cluster, {"h0": f"{STORAGE}/jobs/{job_id}/logs/worker_0.log",
                                       "h1": f"{STORAGE}/jobs/{job_id}/logs/worker_1.log"})
    return cluster, job_id


def test_a_rank_killed_with_sigkill_is_named_as_the_first_failure(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys, state: Path):
    cluster, job_id = launch_long(test_cluster, tmp_path, known_hosts, capsys)
    try:
        pid = rank_pid(test_cluster, "h1", job_id, 1)
        test_cluster.exec("h1", ["kill", "-s", "KILL", str(pid)])
        status = wait_finished(cluster, job_id, capsys)
    finally:
        cli(capsys, "-c", str(cluster), "stop", job_id, "--timeout", "10", "--json")
    assert status["state"] == "failed", status
    failure = status["first_failure"]
    assert failure is not None and (failure["node"], failure["rank"]) == ("h1", 1), status
    assert failure["kind"] == "worker_exit" and "SIGKILL" in failure["message"]
    assert failure["file"].endswith("/console.log") and failure["line"] > 0 and failure["time"]


def test_a_traceback_on_one_rank_is_named_as_the_first_failure(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys, state: Path):
    cluster, job_id = launch_long(test_cluster, tmp_path, known_hosts, capsys)
    # msrun opens the rank's log without O_APPEND: the rank's next write would land over the injected
    # lines (its own offset). Paused, it writes nothing while status and logs read them.
    pids = [str(pid) for pid in rank_pids(test_cluster, "h0", job_id, 0)]
    test_cluster.exec("h0", ["kill", "-s", "STOP", *pids])
    try:
        log = f"{STORAGE}/jobs/{job_id}/logs/worker_0.log"
        test_cluster.exec("h0", ["sh", "-c", 'printf "%s" "$2" >> "$1"', "sh", log, TRACEBACK])
        _, status = cli(capsys, "-c", str(cluster), "status", job_id, "--json")
        errors = subprocess.run([sys.executable, "-m", "console.cli", "-c", str(cluster), "logs", job_id,
                                 "--errors"], cwd=REPO, capture_output=True, text=True, timeout=120,
                                check=False)
    finally:
        test_cluster.exec("h0", ["kill", "-s", "CONT", *pids])
        cli(capsys, "-c", str(cluster), "stop", job_id, "--timeout", "10", "--json")
    failure = status["first_failure"]
    assert failure is not None
    assert (failure["node"], failure["rank"], failure["kind"]) == ("h0", 0, "traceback")
    assert failure["message"] == "RuntimeError: injected failure on rank 0" and failure["file"] == log
    assert errors.returncode == 0, errors.stderr
    assert "h0 r0: traceback" in errors.stdout
    assert "RuntimeError: injected failure on rank 0" in errors.stdout
