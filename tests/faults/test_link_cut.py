"""Fault matrix, link cut (issue 15): a node's link set down during `check`, each stage of `launch`
and `stop`. Each is reported within its timeout, the other nodes go on unaffected, a launch is undone
on every node it can reach and the rest is finished by a stop once the link is back, and nothing of the
job is left running on any host (checked by pid, in the hosts' own namespaces)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from console.jobs.launcher import LaunchProgress, LaunchResult, run_launch
from console.jobs.request import JobRequest, plan_job
from console.store import Store
from remote.checker import ClusterChecker
from remote.health import Status
from remote.inventory import load_cluster
from remote.pool import NodePool
from tests.cluster_jobs import cli, job
from tests.faults.faultkit import (
    CONNECT_TIMEOUT,
    QUICK,
    FollowRun,
    agents_left,
    end_job,
    follow_notices,
    left_running,
    link_cut,
    loss_steps,
    quick_cluster_file,
    record_hand_job,
    recorded_steps,
    remove_job_dirs,
    start_hand_run,
    within,
)
from tests.testcluster import TestCluster

pytestmark = [pytest.mark.faults, pytest.mark.cluster]

LAUNCH_TIMEOUT = 8.0
"""The launch's limit on each command at a node: what a cut node's step may take to be reported."""


@pytest.fixture(autouse=True)
def private_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("ASCEND_CONSOLE_STATE", str(tmp_path / "state"))
    return tmp_path / "state"


def test_check_with_a_link_cut_reports_that_node_within_its_timeout(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path):
    names = ["h0", "h1", "h2", "h3"]
    cluster = load_cluster(test_cluster.cluster_yaml(tmp_path / "c.yaml", names, known_hosts=known_hosts,
                                                     extra_defaults=QUICK))
    with NodePool(cluster) as pool:
        checker = ClusterChecker(pool, cluster.nodes, timeout=6)
        assert all(h.status is not Status.UNREACHABLE for h in checker.refresh())  # every link up, pooled
        opened = pool.connections_opened()
        with link_cut(test_cluster, "h2"):
            reports, _ = within(6 + 2 * CONNECT_TIMEOUT + 3, checker.refresh)
        by_node = {h.node: h for h in reports}
        assert by_node["h2"].status is Status.UNREACHABLE, by_node["h2"]
        assert any("no answer within 2s" in r for r in by_node["h2"].reasons), by_node["h2"].reasons
        assert by_node["h2"].stale and by_node["h2"].npus, "its last good readings are kept, marked stale"
        assert all(by_node[n].status is not Status.UNREACHABLE for n in ("h0", "h1", "h3"))
        back = {h.node: h for h in checker.refresh()}  # the link is back: one new connection, to h2
        assert back["h2"].status is not Status.UNREACHABLE, back["h2"]
        assert pool.connections_opened() == opened + 1


@pytest.mark.parametrize("stage", ["stage", "start", "settle"])
def test_a_link_cut_at_each_launch_stage_fails_the_launch_and_undoes_it_everywhere(
        stage: str, test_cluster: TestCluster, tmp_path: Path, known_hosts: Path,
        capsys: pytest.CaptureFixture[str]):
    hosts = ["h0", "h1"]
    cluster = load_cluster(quick_cluster_file(test_cluster, tmp_path, known_hosts, hosts))
    request = JobRequest(template=job(tmp_path, 80000), name=f"cut-at-{stage}")
    cut: list[str] = []

    def cut_h1_as(event: LaunchProgress) -> None:  # the step begins: h1's link goes down
        if event.stage == stage and event.node is None and not cut:
            test_cluster.cut("h1")
            cut.append(stage)

    state = tmp_path / "state"
    state.mkdir(parents=True, exist_ok=True)
    job_id = ""
    try:
        with NodePool(cluster) as pool, Store(state / "console.db") as store:
            planned = plan_job(request, pool)
            job_id = planned.plan.job_id
            # each stage: its step on h1 times out; then the stop of h1 (its connect, twice) and of h0
            outcome, _ = within(3 * LAUNCH_TIMEOUT + 30, lambda: run_launch(
                planned, pool, store, progress=cut_h1_as, timeout=LAUNCH_TIMEOUT))
            result: LaunchResult = outcome
            assert cut == [stage] and not result.ok
            failure = result.failure
            assert failure is not None and (failure.node, failure.stage) == ("h1", stage), failure
            assert store.job(job_id).state == "failed"
            stopped = {r.node: r for r in result.stopped}
            if stage != "stage":  # something may have started: every node is stopped, h1 cannot be
                assert stopped["h0"].ok, stopped["h0"]
                assert not stopped["h1"].ok and stopped["h1"].failure is not None
            assert left_running(test_cluster, job_id, ["h0"]) == {}  # the other node at once
        test_cluster.heal("h1")
        # the link back, a stop finishes what the launch could not reach
        code, stopped = cli(capsys, "-c", str(cluster.source), "stop", job_id, "--timeout", "5", "--json")
        assert code == 0 and stopped["stopped"], stopped
        assert left_running(test_cluster, job_id, hosts) == {}
    finally:
        test_cluster.heal("h1")
        end_job(test_cluster, job_id, hosts)


@pytest.mark.parametrize("when", ["before", "during", "blink"])
def test_stop_with_a_link_cut_retries_says_what_it_could_not_verify_and_a_second_stop_finishes(
        when: str, test_cluster: TestCluster, tmp_path: Path, known_hosts: Path,
        capsys: pytest.CaptureFixture[str]):
    """before: h3 cannot be reached at all, its rank runs on. during: h3's stop script has begun (its rank
    ignores SIGTERM, so the script waits out the grace) when the link goes, and the answer is lost: the
    console cannot say the node is clean. blink: the link is back while the stop still runs, and its
    retry stops and verifies h3 in the same `stop`."""
    hosts, job_id, state = ["h2", "h3"], f"20261207-010000-stop-cut-{when}", tmp_path / "state"
    cluster = quick_cluster_file(test_cluster, tmp_path, known_hosts, hosts)
    state.mkdir(parents=True, exist_ok=True)
    runs = [start_hand_run(test_cluster, host, job_id, (rank,), steps=600, every=1.0, stubborn=host == "h3")
            for rank, host in enumerate(hosts)]
    cutting = threading.Timer(0.0 if when != "during" else 2.0, test_cluster.cut, ["h3"])
    healing = threading.Timer(2.5, test_cluster.heal, ["h3"])  # blink: after the first attempt failed
    try:
        record_hand_job(state, cluster, job_id, runs)
        cutting.start()
        if when != "during":
            cutting.join()
        if when == "blink":
            healing.start()
        # before: h3's connect given up (2 s), twice; during: its pooled connection declared dead (3 s of
        # keepalives unanswered) well before the command's own limit (5 + 5 + 10 s), then a connect
        outcome, _ = within(30, lambda: cli(capsys, "-c", str(cluster), "stop", job_id, "--timeout", "5",
                                            "--json"))
        code, stopped = outcome
        nodes = {n["node"]: n for n in stopped["nodes"]}
        assert nodes["h2"]["ok"] and nodes["h2"]["found"] and not nodes["h2"]["remaining"], nodes["h2"]
        assert left_running(test_cluster, job_id, ["h2"]) == {}
        if when == "blink":
            assert code == 0 and stopped["stopped"] and nodes["h3"]["ok"], stopped
            assert left_running(test_cluster, job_id, hosts) == {}
            return
        assert code == 2 and not stopped["stopped"], stopped
        assert not nodes["h3"]["ok"] and "h3" in nodes["h3"]["error"], nodes["h3"]
        _, status = cli(capsys, "-c", str(cluster), "status", job_id, "--no-refresh", "--json")
        assert status["state"] != "stopped", status
        if when == "before":
            assert left_running(test_cluster, job_id, ["h3"]), "h3 was out of reach: its rank still runs"
        test_cluster.heal("h3")
        code, again = cli(capsys, "-c", str(cluster), "stop", job_id, "--timeout", "5", "--json")
        assert code == 0 and again["stopped"], again
        assert left_running(test_cluster, job_id, hosts) == {}
        _, status = cli(capsys, "-c", str(cluster), "status", job_id, "--no-refresh", "--json")
        assert status["state"] == "stopped", status
    finally:
        cutting.cancel()
        healing.cancel()
        test_cluster.heal("h3")
        end_job(test_cluster, job_id, hosts)
        remove_job_dirs(test_cluster, job_id, hosts)


def test_logs_follow_across_a_cut_link_gets_every_line_once(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, private_store: Path):
    hosts, job_id, steps = ["h0", "h1"], "20261207-010000-follow-cut", 40
    cluster = quick_cluster_file(test_cluster, tmp_path, known_hosts, hosts)
    private_store.mkdir(parents=True, exist_ok=True)
    runs = [start_hand_run(test_cluster, host, job_id, (rank,), steps=steps, every=0.3)
            for rank, host in enumerate(hosts)]
    try:
        record_hand_job(private_store, cluster, job_id, runs)
        follow = FollowRun(cluster, private_store, job_id)
        try:
            follow.wait_for_losses(6)
            assert set(agents_left(test_cluster, hosts, job_id, within_s=0)) == set(hosts)  # seen while there
            with link_cut(test_cluster, "h1"):
                time.sleep(6)  # longer than a keepalive's notice and a connect timeout: reconnects fail
            assert follow.finish(90) == 0, follow.stderr()
        finally:
            follow.close()
        events = follow.events
        assert loss_steps(events) == {0: list(range(1, steps + 1)), 1: list(range(1, steps + 1))}
        notices = follow_notices(events)
        assert notices == [("h1", "follow-disconnected"), ("h1", "follow-reconnected")], notices
        assert {e["node"] for e in events if e["kind"] == "run-ended"} == set(hosts)
        assert recorded_steps(private_store, job_id) == Counter(
            {(rank, step): 1 for rank in (0, 1) for step in range(1, steps + 1)})
        assert left_running(test_cluster, job_id, hosts) == {}
        # the agent cut off from its console ends once the link is back (its sshd session is reset)
        assert agents_left(test_cluster, hosts, job_id, within_s=60) == {}
    finally:
        end_job(test_cluster, job_id, hosts)
        remove_job_dirs(test_cluster, job_id, hosts)
