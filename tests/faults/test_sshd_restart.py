"""Fault matrix, `sshd` killed and restarted on a node (issue 15): during the health refresh the
dashboard runs (its checker polling, and the app itself), the `jobs` refresh, and `logs --follow`.
The console reconnects and resumes, never crashes, and records nothing twice: a node's state changes
once each way, every line arrives once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from textual.pilot import Pilot

from console.app import make_app
from console.feeds.health import ClusterHealth
from console.jobs.refresh import refresh_on
from console.screens.dashboard import DashboardScreen
from console.store import Store
from console.widgets.node_table import NodeTable
from remote.checker import ClusterChecker
from remote.health import NodeHealth, Status
from remote.inventory import load_cluster
from remote.pool import NodePool
from tests.faults.faultkit import (
    QUICK,
    FollowRun,
    agents_left,
    end_job,
    follow_notices,
    left_running,
    loss_steps,
    quick_cluster_file,
    record_hand_job,
    recorded_steps,
    remove_job_dirs,
    sshd_down,
    start_hand_run,
)
from tests.testcluster import TestCluster

pytestmark = [pytest.mark.faults, pytest.mark.cluster]


def test_the_health_refresh_goes_on_through_an_sshd_restart(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path):
    names = ["h0", "h1", "h2"]
    cluster = load_cluster(test_cluster.cluster_yaml(tmp_path / "c.yaml", names, known_hosts=known_hosts,
                                                     extra_defaults=QUICK))
    rounds: list[dict[str, NodeHealth]] = []
    failed: list[BaseException] = []
    running = threading.Event()
    running.set()
    with NodePool(cluster) as pool:
        checker = ClusterChecker(pool, cluster.nodes, timeout=6)

        def poll() -> None:  # as the dashboard's poller: one refresh after another, never overlapping
            try:
                while running.is_set():
                    rounds.append({h.node: h for h in checker.refresh()})
                    time.sleep(0.1)
            except BaseException as exc:  # noqa: BLE001 - handed to the test, which fails with it
                failed.append(exc)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            _wait(lambda: len(rounds) >= 2)
            opened = pool.connections_opened()
            with sshd_down(test_cluster, "h1"):  # the sshd, and the pooled session with it, killed mid-poll
                _wait(lambda: rounds[-1]["h1"].status is Status.UNREACHABLE)
            seen = len(rounds)
            _wait(lambda: len(rounds) > seen + 1 and rounds[-1]["h1"].status is not Status.UNREACHABLE)
        finally:
            running.clear()
            poller.join(30)
        assert not failed, failed
        assert all(r["h0"].status is not Status.UNREACHABLE and r["h2"].status is not Status.UNREACHABLE
                   for r in rounds), "the other nodes were not affected"
        assert pool.connections_opened() == opened + 1  # one reconnect, to h1, nothing left dangling


def test_the_dashboard_shows_a_node_whose_sshd_restarted_unreachable_then_back(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path):
    names = ["h0", "h1", "h2"]
    cluster = load_cluster(test_cluster.cluster_yaml(tmp_path / "c.yaml", names, known_hosts=known_hosts,
                                                     extra_defaults=QUICK))
    pool = NodePool(cluster)
    opened: list[int] = []

    async def script(pilot: Pilot[None]) -> None:
        table = pilot.app.screen.query_one(NodeTable)
        await _rounds(pilot, 1)
        opened.append(pool.connections_opened())
        with sshd_down(test_cluster, "h1"):
            await pilot.press("r")
            await _rounds(pilot, 2)
            assert _status(table, "h1").startswith("UNREACHABLE"), _status(table, "h1")
        await pilot.press("r")
        await _rounds(pilot, 3)
        assert not _status(table, "h1").startswith("UNREACHABLE"), _status(table, "h1")
        assert not any(_status(table, n).startswith("UNREACHABLE") for n in ("h0", "h2"))

    async def main() -> None:
        app = make_app(cluster, ClusterHealth(pool, cluster.nodes, timeout=6), refresh=3600)
        async with app.run_test(size=(160, 40)) as pilot:
            await script(pilot)

    try:
        asyncio.run(main())
        assert pool.connections_opened() == opened[0] + 1  # one reconnect, to h1
    finally:
        pool.close()


async def _rounds(pilot: Pilot[None], count: int, within_s: float = 30) -> None:
    board = pilot.app.screen_stack[0]
    assert isinstance(board, DashboardScreen)
    deadline = time.monotonic() + within_s
    while board.snapshot is None or board.snapshot.round < count:
        assert time.monotonic() < deadline, f"health round {count} never came"
        await pilot.pause(0.05)
    await pilot.pause()


def _status(table: NodeTable, node: str) -> str:
    return table.get_cell(node, "status").plain


def test_the_jobs_refresh_through_an_sshd_restart_changes_a_node_once_each_way(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path):
    hosts, job_id = ["h2", "h3"], "20261207-010000-sshd-jobs"
    cluster = load_cluster(quick_cluster_file(test_cluster, tmp_path, known_hosts, hosts))
    state = tmp_path / "state"
    state.mkdir()
    runs = [start_hand_run(test_cluster, host, job_id, (rank,), steps=600, every=1.0)
            for rank, host in enumerate(hosts)]
    try:
        record_hand_job(state, Path(cluster.source), job_id, runs)
        with NodePool(cluster) as pool, Store(state / "console.db") as store:
            def refresh() -> dict[str, str]:
                [done] = refresh_on(store, pool, [store.job(job_id)], timeout=6)
                assert done.job.state == "running", done  # a node out of reach never ends the job
                return {launch.node: launch.state for launch in done.launches}

            assert refresh() == {"h2": "running", "h3": "running"}
            events_before = len(store.events(job_id))
            with sshd_down(test_cluster, "h3"):
                assert refresh() == {"h2": "running", "h3": "unreachable"}
                assert refresh() == {"h2": "running", "h3": "unreachable"}
            assert refresh() == {"h2": "running", "h3": "running"}
            assert refresh() == {"h2": "running", "h3": "running"}
            changes = [(e.node, e.kind) for e in store.events(job_id)[events_before:]]
            assert len(changes) == 2 and {node for node, _ in changes} == {"h3"}, changes
            assert store.launches(job_id)[1].pid == runs[1].pid
    finally:
        end_job(test_cluster, job_id, hosts)
        remove_job_dirs(test_cluster, job_id, hosts)
    assert left_running(test_cluster, job_id, hosts) == {}


def test_logs_follow_across_an_sshd_restart_gets_every_line_once(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path):
    hosts, job_id, steps = ["h0", "h1"], "20261207-010000-follow-sshd", 40
    cluster = quick_cluster_file(test_cluster, tmp_path, known_hosts, hosts)
    state = tmp_path / "state"
    state.mkdir()
    runs = [start_hand_run(test_cluster, host, job_id, (rank,), steps=steps, every=0.3)
            for rank, host in enumerate(hosts)]
    try:
        record_hand_job(state, cluster, job_id, runs)
        follow = FollowRun(cluster, state, job_id)
        try:
            follow.wait_for_losses(6)
            with sshd_down(test_cluster, "h0"):
                time.sleep(3)
            assert follow.finish(90) == 0, follow.stderr()
        finally:
            follow.close()
        events = follow.events
        assert loss_steps(events) == {0: list(range(1, steps + 1)), 1: list(range(1, steps + 1))}
        notices = follow_notices(events)
        assert notices == [("h0", "follow-disconnected"), ("h0", "follow-reconnected")], notices
        assert recorded_steps(state, job_id) == Counter(
            {(rank, step): 1 for rank in (0, 1) for step in range(1, steps + 1)})
        assert left_running(test_cluster, job_id, hosts) == {}
        assert agents_left(test_cluster, hosts, job_id, within_s=60) == {}  # none outlived its console
    finally:
        end_job(test_cluster, job_id, hosts)
        remove_job_dirs(test_cluster, job_id, hosts)


def _wait(condition: object, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.1)
