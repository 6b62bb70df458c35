"""Fault matrix: one node's clock reads five minutes ahead. Who failed first is still the node that did
(its log stamps are put on the console's clock by the offset the follow measures), and the health check
warns about that node's clock.

The skew is real at every seam the console reads a node's clock through: libfaketime is preloaded for
every command run on the node (`date` in the health probe and in the ranks' log stamps, the follow
agent's Python), so the node says the wrong time exactly as a node with a wrong clock does."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from console.cli import main
from tests.cluster_jobs import cli, cluster_file
from tests.faults.nodes import faketime_library, marked_pids, must, record_job, skewed_clock, start_hand_run
from tests.testcluster import TestCluster

pytestmark = [pytest.mark.faults, pytest.mark.cluster]
SKEW = 300
"""Seconds the skewed node's clock reads ahead."""
ERROR_LINE = ("printf '%s - mindformers[train.py:86] - ERROR - %s\\n' \"$(date '+%Y-%m-%d %H:%M:%S,%3N')\" "
              '"$2" >> "$1"')
"""An error line stamped by the node's clock, as a rank's logger writes it."""


@pytest.fixture(autouse=True)
def libfaketime() -> None:
    if faketime_library() is None:
        pytest.fail("libfaketime is missing: scripts/setup.sh --test installs it (Debian package faketime)")


def test_a_node_minutes_ahead_still_loses_who_failed_first_and_is_warned_about(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys, state: Path):
    job_id = "20261207-030003-skew"
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h0", "h1"], connect_timeout=5)
    with skewed_clock(test_cluster, "h1", SKEW) as skewed:
        ahead = float(must(test_cluster, "h1", "date +%s", env=skewed)) - time.time()
        assert SKEW - 5 < ahead < SKEW + 5, f"h1's clock is {ahead:+.0f} s off, not {SKEW:+d} s"
        runs = [start_hand_run(test_cluster, "h0", job_id, (0,)),
                start_hand_run(test_cluster, "h1", job_id, (1,), env=skewed)]
        record_job(state, cluster, job_id, runs)
        try:
            time.sleep(2)  # a few loss lines on each
            # h1 fails first, h0 two seconds later: by the stamps alone h0 is five minutes earlier
            must(test_cluster, "h1", ERROR_LINE, f"{runs[1].job_dir}/logs/worker_1.log",
                 "HCCL link down on h1", env=skewed)
            failed_at = time.time()
            time.sleep(2)
            must(test_cluster, "h0", ERROR_LINE, f"{runs[0].job_dir}/logs/worker_0.log", "peer h1 is gone")
            _, status = cli(capsys, "-c", str(cluster), "status", job_id, "--json")
            health_code = main(["-c", str(cluster), "check", "--json"])
            health = json.loads(capsys.readouterr().out)
        finally:
            code, stopped = cli(capsys, "-c", str(cluster), "stop", job_id, "--timeout", "2", "--json")
    assert code == 0 and stopped["stopped"], stopped
    assert [marked_pids(test_cluster, host, job_id) for host in ("h0", "h1")] == [[], []]

    first = status["first_failure"]
    assert first is not None and (first["node"], first["rank"]) == ("h1", 1), status
    assert first["message"] == "HCCL link down on h1"
    assert abs(first["time"] - failed_at) < 5  # on the console's clock, not five minutes ahead

    reasons = {node["name"]: node["reasons"] for node in health["nodes"]}
    [clock] = [r for r in reasons["h1"] if r.startswith("clock: ")]
    assert clock.startswith("clock: +3") and "s from the console's" in clock, reasons
    assert not [r for r in reasons["h0"] if r.startswith("clock: ")]
    assert health_code != 0
