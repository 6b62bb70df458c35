"""Fault matrix: a node's disk is full when the job is staged. The launch fails at staging with an error
that names the node and the job directory, nothing half-written is left on that node to be used, the
other node's staged directory is removed, and no node runs anything of the job.

The full disk is real: a small tmpfs over the node's `<workdir>/jobs`, filled, so every write below it
gets ENOSPC from the kernel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from console.store import Store
from tests.cluster_jobs import cli, cluster_file, job
from tests.faults.nodes import JOBS, STORAGE, full_disk, marked_pids, must
from tests.testcluster import TestCluster

pytestmark = [pytest.mark.faults, pytest.mark.cluster]


def test_a_full_disk_at_staging_fails_the_launch_naming_node_and_path(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys, state: Path):
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h1", "h2"])
    with full_disk(test_cluster, "h2", JOBS):
        code, outcome = cli(capsys, "-c", str(cluster), "launch", str(job(tmp_path, 80)), "--json")
        on_h2 = must(test_cluster, "h2", 'ls -A "$1"', JOBS).split()
    job_id = outcome["job_id"]
    try:
        check_refused(test_cluster, cluster, capsys, code=code, outcome=outcome, on_h2=on_h2)
        # h1 staged the job before h2's refusal was known: its directory is removed, and the store says so
        assert job_id not in must(test_cluster, "h1", 'mkdir -p "$1" && ls -A "$1"', JOBS).split()
        with Store(state / "console.db") as store:
            events = [(e.kind, e.node, e.message) for e in store.events(job_id)]
        assert ("unstaged", "h1", f"removed {JOBS}/{job_id} (the launch failed at staging)") in events, events
    finally:
        for host in ("h1", "h2"):
            test_cluster.exec(host, ["rm", "-rf", f"{JOBS}/{job_id}"])


def check_refused(test_cluster: TestCluster, cluster: Path, capsys, *, code: int, outcome: dict[str, Any],
                  on_h2: list[str]) -> None:
    job_id = outcome["job_id"]
    assert code == 1 and not outcome["launched"], outcome
    failure = outcome["failure"]
    assert (failure["node"], failure["stage"]) == ("h2", "stage"), failure
    assert f"could not write the job directory {JOBS}/{job_id}" in failure["reason"]
    assert "No space left on device" in failure["reason"] and "KiB free there" in failure["reason"]
    assert on_h2 == [".filler"]  # no job directory, whole or half, and no staging leftovers
    assert [marked_pids(test_cluster, host, job_id) for host in ("h1", "h2")] == [[], []]
    _, listed = cli(capsys, "-c", str(cluster), "jobs", "--all", "--json")
    assert [(j["id"], j["state"]) for j in listed["jobs"]] == [(job_id, "failed")]


def test_a_full_disk_during_distribute_names_node_and_path_and_keeps_nothing_half_written(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys, state: Path):
    source = tmp_path / "weights"
    source.mkdir()
    (source / "model.safetensors").write_bytes(bytes(range(256)) * 4096)  # 1 MiB, over the tmpfs' room
    (source / "config.json").write_text('{"hidden_size": 64}\n')
    destination = f"{STORAGE}/weights"
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h1", "h2"])
    try:
        with full_disk(test_cluster, "h2", destination):
            code, result = cli(capsys, "-c", str(cluster), "distribute", str(source), destination, "--json",
                               "--no-relay")
            on_h2 = must(test_cluster, "h2", 'find "$1" -type f ! -name .filler | sort', destination).split()
        nodes = {n["node"]: n for n in result["nodes"]}
        assert code == 1 and not result["ok"], result
        assert nodes["h1"]["verified"] and not nodes["h2"]["verified"], nodes
        error = nodes["h2"]["error"]
        # the path, and the cause when rsync's receiver got to say it before the sender saw the pipe break
        assert f"receiving {destination} from console: rsync exit 11 (error in file I/O)" in error, error
        assert "No space left on device" in error or ": " not in error.split("(error in file I/O)")[1]
        # nothing on h2 passes for a verified file under its final name
        assert f"{destination}/model.safetensors" not in on_h2, on_h2
    finally:
        for host in ("h1", "h2"):
            test_cluster.exec(host, ["rm", "-rf", destination])
