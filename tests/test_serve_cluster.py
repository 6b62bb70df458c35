"""A serve job over SSH on the test cluster, on a host reachable only through a bastion (as from an
operator's laptop): the small model served with fresh weights, ready once launched; through the
console's port forward (127.0.0.1 here, a direct-tcpip channel of the pooled SSH connection on the
node's side) /v1/models, a chat completion and a streamed one; `forward JOB` held in the foreground,
its URL answering, Ctrl-C ending it cleanly; the server killed on its node is a
failed job in `status`, and the forward then refuses the job."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from console.jobs.endpoint import NotServing, endpoint_for
from console.serving.client import ServingClient
from console.store import Store
from remote.inventory import load_cluster
from remote.pool import NodePool
from tests.cluster_jobs import cli, cluster_file, marked_processes
from tests.rank_jobs import REPO, write_job
from tests.serving import serve_files
from tests.testcluster import TestCluster

pytestmark = pytest.mark.cluster
LINE_WAIT = 60.0
"""Seconds the forward command may take to print its URL (a limit on the wait, not a speed threshold)."""
QUESTION = [{"role": "user", "content": "The quick brown fox"}]


@pytest.fixture(autouse=True)
def private_store(monkeypatch, tmp_path):
    monkeypatch.setenv("ASCEND_CONSOLE_STATE", str(tmp_path / "state"))


def test_a_served_model_answers_through_the_forward_and_its_death_is_reported(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys):
    inner, bastion = test_cluster.isolated_hosts[0], test_cluster.host("h0")
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, [inner.name],
                           proxy_jump=f"root@{bastion.address}")
    _, tokenizer = serve_files(tmp_path)
    job = write_job(tmp_path, f"processor.tokenizer.tokenizer_file={tokenizer}")
    code, launched = cli(capsys, "-c", str(cluster), "launch", str(job), "--kind", "serve", "--json")
    assert code == 0 and launched["launched"], launched
    job_id = launched["job_id"]
    code, status = cli(capsys, "-c", str(cluster), "status", job_id, "--json")
    assert (status["state"], status["endpoint"], status["ready"]) == ("running", launched["endpoint"], True)

    with Store.open_default() as store, NodePool(load_cluster(cluster)) as pool:
        record = store.job(job_id)
        with endpoint_for(record, pool) as url:
            assert url.startswith("http://127.0.0.1:") and url != launched["endpoint"]
            models = httpx.get(f"{url}/v1/models", timeout=60).json()
            assert models["data"][0]["id"] == "job"
            whole = httpx.post(f"{url}/v1/chat/completions", timeout=120, json={
                "messages": QUESTION, "max_tokens": 4, "temperature": 0}).json()
            assert whole["choices"][0]["message"]["role"] == "assistant"
            assert whole["usage"]["completion_tokens"] > 0
            with ServingClient(url) as client:
                chunks = list(client.stream("/v1/chat/completions", {"messages": QUESTION, "max_tokens": 4,
                                                                     "temperature": 0}))
            assert chunks[-1].completion_tokens == whole["usage"]["completion_tokens"]
            assert "".join(c.text for c in chunks) == whole["choices"][0]["message"]["content"]

        forward = subprocess.Popen(
            [sys.executable, "-m", "console.cli", "-c", str(cluster), "forward", job_id], cwd=REPO,
            env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            url = first_line(forward)
            assert httpx.get(f"{url}/v1/models", timeout=60).json()["data"][0]["id"] == "job"
        finally:
            forward.send_signal(signal.SIGINT)
            _, said = forward.communicate(timeout=60)
        assert forward.returncode == 0 and "forward closed" in said, said

        [server] = [p for p in marked_processes(test_cluster, inner.name, job_id)
                    if b"model.serve" in Path(p, "cmdline").read_bytes()]
        test_cluster.exec(inner.name, ["kill", "-9", Path(server).name])
        deadline = time.monotonic() + 120  # a limit on the wait: the wrapper notices within seconds
        while status["state"] == "running":
            assert time.monotonic() < deadline, status
            time.sleep(2)
            code, status = cli(capsys, "-c", str(cluster), "status", job_id, "--json")
        assert (status["state"], status["exit_code"], status["ready"]) == ("failed", 137, False), status
        with pytest.raises(NotServing, match="has failed"), endpoint_for(store.job(job_id), pool):
            pass


def first_line(process: subprocess.Popen[str]) -> str:
    """The process's first line on stdout, waited for at most LINE_WAIT seconds."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        assert selector.select(LINE_WAIT), f"no URL printed within {LINE_WAIT:g} s"
    return process.stdout.readline().strip()
