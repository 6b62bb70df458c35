"""`ascend-console check` on real SSH hosts whose hardware stand-ins are put into each state."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from remote.checker import ClusterChecker
from remote.health import Status
from remote.inventory import load_cluster
from remote.pool import NodePool
from tests.recorded_health import BUSY_PIDS
from tests.testcluster import TestCluster

pytestmark = pytest.mark.cluster
HOSTS = ["h0", "h1", "h2", "h3"]


@pytest.fixture
def cluster_file(test_cluster: TestCluster, tmp_path: Path, known_hosts: Path) -> Iterator[Path]:
    file = test_cluster.cluster_yaml(tmp_path / "c.yaml", HOSTS, known_hosts=known_hosts,
                                     extra_defaults={"connect_timeout": 3})
    document = yaml.safe_load(file.read_text())
    document["health"] = {"disk_free_gb": 0.01}  # the hosts' storage shares this machine's disk
    file.write_text(yaml.safe_dump(document))
    try:
        yield file
    finally:
        for host in HOSTS:
            test_cluster.set_hardware(host, "healthy")


def check(file: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "console.cli", "check", "-c", str(file), "--json"],
                          capture_output=True, text=True, timeout=120, env={**os.environ})
    report = json.loads(done.stdout)
    return done.returncode, {node["name"]: node for node in report["nodes"]} | {"": report}


def test_each_hardware_state_gets_its_status_and_reason(test_cluster: TestCluster, cluster_file: Path):
    for host, state in zip(HOSTS, ["healthy", "alarm", "no-driver", "busy"], strict=True):
        test_cluster.set_hardware(host, state)
    code, nodes = check(cluster_file)
    assert code == 2
    healthy, alarm, no_driver, busy = (nodes[h] for h in HOSTS)

    assert healthy["status"] == "OK", healthy["reasons"]
    assert len(healthy["npus"]) == 8 and {n["health"] for n in healthy["npus"]} == {"OK"}
    assert [link["link"] for link in healthy["links"]] == ["UP"] * 8
    assert healthy["system"]["driver_version"] == "23.0.3"
    assert healthy["system"]["hostname"] == test_cluster.host("h0").hostname

    assert alarm["status"] == "FAIL"
    assert "NPU 2: health Alarm" in alarm["reasons"] and "NPU 5: health Warning" in alarm["reasons"]
    assert [n["status"] for n in alarm["npus"]].count("OK") == 6

    assert no_driver["status"] == "FAIL" and no_driver["npus"] == []
    assert any(r.startswith("npu-smi:") for r in no_driver["reasons"]), no_driver["reasons"]
    assert "hccn_tool not found: links cannot be checked" in no_driver["reasons"]

    assert busy["status"] == "WARN"
    assert all("foreign process" in " ".join(n["reasons"]) for n in busy["npus"])
    assert any(r.startswith("drift: driver 24.1.rc2") for r in busy["reasons"]), busy["reasons"]
    assert nodes[""]["summary"]["text"].startswith("1/4 nodes OK · 14/32 NPUs")


def test_link_down_and_unreachable(test_cluster: TestCluster, cluster_file: Path):
    test_cluster.set_hardware("h1", "link-down")
    test_cluster.cut("h3")
    try:
        code, nodes = check(cluster_file)
    finally:
        test_cluster.heal("h3")
    assert code == 2
    assert nodes["h0"]["status"] == "OK" and nodes["h2"]["status"] == "OK"
    assert nodes["h1"]["status"] == "FAIL"
    assert "links 0-7 DOWN" in nodes["h1"]["reasons"]
    assert [link["link"] for link in nodes["h1"]["links"]] == ["DOWN"] * 8
    assert nodes["h3"]["status"] == "UNREACHABLE"
    assert "no answer within 3s" in nodes["h3"]["reasons"][0]
    assert nodes[""]["summary"]["links_down"] == 8 and nodes[""]["summary"]["unreachable"] == 1


def test_check_text_table_and_exit_codes(test_cluster: TestCluster, cluster_file: Path):
    done = subprocess.run([sys.executable, "-m", "console.cli", "check", "-c", str(cluster_file), "-v"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{test_cluster.prefix}: 4/4 nodes OK · 32/32 NPUs" in done.stdout
    assert "h3: NPUs" in done.stdout and "910B2" in done.stdout


def test_refreshes_are_quick_and_keep_what_rarely_changes(test_cluster: TestCluster, cluster_file: Path):
    cluster = load_cluster(cluster_file)
    with NodePool(cluster) as pool:
        checker = ClusterChecker(pool, cluster.nodes[:2])
        first = checker.refresh()
        again = checker.refresh()
        assert pool.connections_opened() == 2
    assert "uname" in first[0].raw and "uname" not in again[0].raw and "npu-smi" in again[0].raw
    assert again[0].system is not None and first[0].system is not None
    assert again[0].system.hostname == first[0].system.hostname == test_cluster.host("h0").hostname
    assert [link.ip for link in again[0].links] == [link.ip for link in first[0].links]
    assert all(link.ip for link in again[0].links)
    assert [r.status for r in again] == [Status.OK, Status.OK]


def test_a_console_jobs_processes_on_npus_are_that_job_not_a_busy_node(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path):
    # Eight processes carrying a job's marker and RANK_ID 0-7 (the hosts share this process table),
    # and an npu-smi that lists them on NPUs 0-7: the busy recording with its pids replaced.
    job = "20261206-120000-held"
    ranks = [subprocess.Popen(["sleep", "300"], env={**os.environ, "ASCEND_CONSOLE_JOB": f"{job}@h0",
                                                       "RANK_ID": str(rank)}) for rank in range(8)]
    recordings = test_cluster.host("h0").state_dir / "bin" / "recordings"
    table = (recordings / "busy" / "npu-smi-info.txt").read_text()
    for listed, rank in zip(BUSY_PIDS, ranks, strict=True):
        table = table.replace(str(listed), str(rank.pid))
    (recordings / "own-job").mkdir()
    (recordings / "own-job" / "npu-smi-info.txt").write_text(table)
    file = test_cluster.cluster_yaml(tmp_path / "one.yaml", ["h0"], known_hosts=known_hosts)
    document = yaml.safe_load(file.read_text())
    document["health"] = {"disk_free_gb": 0.01}
    file.write_text(yaml.safe_dump(document))
    test_cluster.set_hardware("h0", "own-job")
    try:
        code, nodes = check(file)
    finally:
        test_cluster.set_hardware("h0", "healthy")
        shutil.rmtree(recordings / "own-job")
        for rank in ranks:
            rank.kill()
            rank.wait()
    node = nodes["h0"]
    assert (code, node["status"], node["reasons"]) == (0, "OK", [])
    assert node["jobs"] == [{"id": job, "ranks": list(range(8)), "npus": list(range(8))}]
    assert [n["processes"][0]["job"] for n in node["npus"]] == [job] * 8
    assert [(n["processes"][0]["pid"], n["processes"][0]["rank"]) for n in node["npus"]] == [
        (rank.pid, index) for index, rank in enumerate(ranks)]
