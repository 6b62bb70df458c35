"""A serve job for real on a local cluster: `launch --kind serve` starts model.serve (fresh weights, a
tokenizer trained here) on one node and returns once it serves; `status --json` gives its endpoint and
`ready`; the endpoint answers /v1/models; the server killed on its node is a failed job; a server that
cannot start fails the launch with its log's error, one never ready at its endpoint when its deadline
passes."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.rank_jobs import free_port, write_job
from tests.serving import serve_files
from tests.test_logs_local import Console, local_console


@pytest.fixture
def console(tmp_path: Path) -> Console:
    return local_console(tmp_path)


def server_pids(job_id: str, node: str) -> list[int]:
    """This machine's processes of the job on `node` that run model.serve."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"ASCEND_CONSOLE_JOB={job_id}@{node}".encode() in environ and b"model.serve" in command:
            found.append(int(entry.name))
    return found


def test_a_served_model_is_ready_answers_and_a_killed_server_fails_the_job(tmp_path: Path, console: Console):
    _, tokenizer = serve_files(tmp_path)
    job = write_job(tmp_path, f"processor.tokenizer.tokenizer_file={tokenizer}")
    done = console("launch", str(job), "--kind", "serve", "--nodes", "n0", "--json")
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    launched = json.loads(done.stdout)
    job_id, endpoint = launched["job_id"], launched["endpoint"]
    assert endpoint.startswith("http://127.0.0.1:"), launched
    status = json.loads(console("status", job_id, "--json", timeout=120).stdout)
    assert (status["state"], status["endpoint"], status["ready"]) == ("running", endpoint, True), status
    try:
        models = httpx.get(f"{endpoint}/v1/models", timeout=30).json()
        assert models["data"][0]["id"] == "job"
        [pid] = server_pids(job_id, "n0")
        asked = console("chat", job_id, "--prompt", "Hello", "--max-tokens", "4", "--json", timeout=300)
        assert asked.returncode == 0, asked.stderr[-3000:]
        assert json.loads(asked.stdout)["model"] == "job"
        loaded = console("bench-serve", job_id, "--concurrency", "2", "--requests", "2", "--max-tokens", "4",
                         "--json", timeout=300)
        assert loaded.returncode == 0, loaded.stderr[-3000:]
        assert json.loads(loaded.stdout)["completed"] == 2
        neither = console("chat", "--prompt", "Hello")
        assert neither.returncode == 64 and "a serve job or --url URL" in neither.stderr
    except BaseException:
        console("stop", job_id, timeout=120)
        raise
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 120  # a limit on the wait: the wrapper notices within seconds
    while (status := json.loads(console("status", job_id, "--json", timeout=120).stdout))["state"] \
            == "running":
        assert time.monotonic() < deadline, status
        time.sleep(2)
    assert (status["state"], status["exit_code"], status["ready"]) == ("failed", 137, False), status
    gone = console("chat", job_id, "--prompt", "Hello")
    assert gone.returncode == 64 and "its server is gone" in " ".join(gone.stderr.split())


def test_a_server_that_cannot_start_fails_the_launch_with_its_log(tmp_path: Path, console: Console):
    job = write_job(tmp_path, "processor.tokenizer.tokenizer_file=nowhere/tokenizer.json")
    done = console("launch", str(job), "--kind", "serve", "--nodes", "n0", "--json")
    assert done.returncode == 1, done.stdout + done.stderr[-3000:]
    failure = json.loads(done.stdout)["failure"]
    assert failure["node"] == "n0" and failure["stage"] in ("settle", "ready"), failure
    assert "its run exited with code" in failure["reason"] and "nowhere/tokenizer.json" in failure["reason"]


def test_a_model_server_runs_on_one_node(tmp_path: Path, console: Console):
    done = console("plan", str(write_job(tmp_path)), "--kind", "serve", timeout=120)
    assert done.returncode != 0 and "model.serve runs on one node" in " ".join(done.stderr.split())


def test_a_server_never_ready_at_its_endpoint_fails_the_launch_at_its_deadline(tmp_path: Path,
                                                                              console: Console):
    _, tokenizer = serve_files(tmp_path)
    job = write_job(tmp_path, f"processor.tokenizer.tokenizer_file={tokenizer}")
    elsewhere = free_port()  # the server listens there, never where its endpoint says
    with job.open("a", encoding="utf-8") as text:
        text.write(f"console:\n  serve:\n    ready_timeout: 20\n    args: --port {elsewhere}\n")
    done = console("launch", str(job), "--kind", "serve", "--nodes", "n0", "--json")
    assert done.returncode == 1, done.stdout + done.stderr[-3000:]
    outcome = json.loads(done.stdout)
    failure = outcome["failure"]
    assert (failure["node"], failure["stage"], outcome["stopped"]) == ("n0", "ready", ["n0"])
    assert failure["reason"].startswith("not ready after 20 s (waiting for /health: GET /health: ")
    assert server_pids(outcome["job_id"], "n0") == []
