"""A stop of ranks that do not end on SIGTERM (issue 16, item 1): one that traps it, one that is stopped
(SIGSTOP, so the SIGTERM stays pending). `stop` waits its `--timeout` out, SIGKILLs them, verifies that
no process of the job is left (checked here by pid, in the hosts' own namespaces), and says it had to.

A rank that exits politely on SIGTERM is covered by the other stop tests; this one needs the kill."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from console.store import Store
from tests.cluster_jobs import cli
from tests.faults.faultkit import (
    end_job,
    left_running,
    quick_cluster_file,
    record_hand_job,
    remove_job_dirs,
    start_hand_run,
)
from tests.faults.nodes import marked_pids
from tests.testcluster import TestCluster

pytestmark = [pytest.mark.faults, pytest.mark.cluster]

GRACE = 2
"""The stop's --timeout: seconds of SIGTERM before SIGKILL."""


def test_ranks_that_ignore_sigterm_or_are_stopped_are_killed_verified_and_reported(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys, state: Path):
    hosts, job_id = ["h2", "h3"], "20261207-040000-stubborn"
    cluster = quick_cluster_file(test_cluster, tmp_path, known_hosts, hosts)
    state.mkdir(parents=True, exist_ok=True)
    try:
        runs = [start_hand_run(test_cluster, "h2", job_id, (0,), steps=600, every=1.0, stubborn=True),
                start_hand_run(test_cluster, "h3", job_id, (1,), steps=600, every=1.0)]
        record_hand_job(state, cluster, job_id, runs)
        time.sleep(1)  # the stubborn rank's trap is set before the stop
        frozen = marked_pids(test_cluster, "h3", job_id)
        assert frozen, "h3's run did not start"
        test_cluster.exec("h3", ["kill", "-s", "STOP", *map(str, frozen)])
        started = time.monotonic()
        code, stopped = cli(capsys, "-c", str(cluster), "stop", job_id, "--timeout", str(GRACE), "--json")
        took = time.monotonic() - started
        assert left_running(test_cluster, job_id, hosts) == {}
    finally:
        end_job(test_cluster, job_id, hosts)
        remove_job_dirs(test_cluster, job_id, hosts)
    assert code == 0 and stopped["stopped"], stopped
    assert took >= GRACE, f"the stop did not wait its {GRACE} s grace out: {took:.1f} s"
    nodes = {n["node"]: n for n in stopped["nodes"]}
    for host in hosts:
        node = nodes[host]
        assert node["ok"] and node["found"] and node["remaining"] == [], node
        assert node["killed"], node  # a rank's loop forks a fresh `sleep`: a rescan finds and kills it
    assert set(frozen) & set(nodes["h3"]["killed"]), (frozen, nodes["h3"])
    with Store(state / "console.db") as store:
        assert store.job(job_id).state == "stopped"
        said = [(e.node, e.message) for e in store.events(job_id) if e.node in hosts]
    for host in hosts:
        assert any(node == host and "needed SIGKILL" in message for node, message in said), said
