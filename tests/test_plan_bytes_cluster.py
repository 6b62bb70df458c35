"""`plan` shows launch.sh byte for byte as `launch` writes it (issue 16, item 4): the same job planned
with `plan --json`, then launched on two test hosts; each node's launch.sh, read back from the host's own
storage, is the plan's script for that node, byte for byte.

The job id is the launch time; both commands are given the same one, so nothing differs by the clock."""

import base64
from datetime import datetime
from pathlib import Path

import pytest

import console.jobs.request
from console.jobs.plan import job_id_for
from tests.cluster_jobs import STORAGE, cli, cluster_file, job, marked_processes
from tests.testcluster import TestCluster

pytestmark = pytest.mark.cluster

HOSTS = ["h0", "h1"]
WHEN = datetime(2026, 12, 7, 4, 50, 0)


@pytest.fixture(autouse=True)
def private_store(monkeypatch, tmp_path):
    monkeypatch.setenv("ASCEND_CONSOLE_STATE", str(tmp_path / "state"))


def node_bytes(test_cluster: TestCluster, host: str, path: str) -> bytes:
    """A file's bytes as the host holds them (base64 over the exec, so no decoding can alter them)."""
    read = test_cluster.exec(host, ["base64", "-w", "0", path])
    assert read.returncode == 0, read.stderr
    return base64.b64decode(read.stdout)


def test_each_nodes_launch_sh_is_the_plans_script_byte_for_byte(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys, monkeypatch):
    monkeypatch.setattr(console.jobs.request, "job_id_for", lambda name, _now: job_id_for(name, WHEN))
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, HOSTS)
    template = str(job(tmp_path, 80000))
    code, planned = cli(capsys, "-c", str(cluster), "plan", template, "--port", "29611", "--json")
    assert code == 0, planned
    code, launched = cli(capsys, "-c", str(cluster), "launch", template, "--port", "29611", "--json")
    job_id = launched.get("job_id") or ""
    try:
        assert code == 0 and launched["launched"], launched
        assert job_id == planned["job_id"]
        scripts = {n["node"]: n for n in planned["nodes"]}
        assert sorted(scripts) == HOSTS
        for host in HOSTS:
            plan = scripts[host]
            assert plan["job_dir"] == f"{STORAGE}/jobs/{job_id}"
            written = node_bytes(test_cluster, host, f"{plan['job_dir']}/launch.sh")
            assert written == plan["script"].encode(), (host, written, plan["script"])
            assert plan["container_script"] is None
    finally:
        if job_id:
            code, stopped = cli(capsys, "-c", str(cluster), "stop", job_id, "--timeout", "10", "--json")
            assert code == 0 and stopped["stopped"], stopped
            assert all(marked_processes(test_cluster, host, job_id) == [] for host in HOSTS)
            for host in HOSTS:  # the fixed id is free for the next run
                test_cluster.exec(host, ["rm", "-rf", "--", f"{STORAGE}/jobs/{job_id}"])
