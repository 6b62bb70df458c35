"""The launch sequence (console.jobs.launcher.run_launch) without the namespace cluster: the progress events
it reports, in order, and all or nothing: a no-go preflight leaves no record and no job directory; a node
that cannot start fails the launch and the node already started is stopped. Nodes are local (this
machine, no SSH); the pure parts need no nodes at all."""

import itertools
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from console.jobs.launcher import LaunchHold, LaunchProgress, preflight_events, record_plan, run_launch
from console.jobs.preflight import Preflight, Verdict
from console.jobs.request import JobRequest, plan_job
from console.jobs.service import stop_job
from console.store import Store
from remote.inventory import load_cluster
from remote.pool import NodePool
from tests.handjobs import marked
from tests.rank_jobs import write_job


def test_preflight_events_give_each_node_its_checks_in_node_order_then_the_job():
    verdict = Preflight((
        Verdict("reachable", "n1", True, "answered"),
        Verdict("reachable", "n0", True, "answered"),
        Verdict("npus-free", "n1", False, "NPUs busy with process(es) 7"),
        Verdict("disk", "n0", False, "0.1 GiB free", forced=True),
        Verdict("versions", None, True, "MindSpore 2.10.0 everywhere"),
    ))
    events = preflight_events(verdict, ["n0", "n1"])
    assert [(e.node, e.ok) for e in events] == [("n0", True), ("n1", False), (None, False)]
    assert [v.check for v in events[0].verdicts] == ["reachable", "disk"]
    assert events[0].message == "ready"  # a forced check does not block
    assert events[1].message == "NPUs busy with process(es) 7"
    assert [v.check for v in events[2].verdicts] == ["versions"]
    assert events[2].message == "no-go: 1 check(s) failed, first npus-free: NPUs busy with process(es) 7"
    assert all(e.stage == "preflight" for e in events)


def test_a_go_preflight_ends_in_one_job_wide_go():
    verdict = Preflight((Verdict("reachable", "n0", True, "answered"),))
    [node, job] = preflight_events(verdict, ["n0"])
    assert (node.node, node.ok, job.node, job.ok, job.message) == ("n0", True, None, True, "go")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "state" / "console.db") as opened:
        yield opened


def local_pool(tmp_path: Path, *nodes: dict[str, str]) -> NodePool:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({
        "name": "here", "health": {"disk_free_gb": 1},
        "defaults": {"transport": "local", "devices": 1, "command_timeout": 600, "python": sys.executable},
        "nodes": [{"workdir": str(tmp_path / node["name"]), **node} for node in nodes],
    }))
    return NodePool(load_cluster(path))


def stages(events: list[LaunchProgress]) -> list[str]:
    """The steps in the order they were reported, each once."""
    return [stage for stage, _ in itertools.groupby(e.stage for e in events)]


def test_a_no_go_preflight_reports_only_preflight_and_leaves_no_record_and_no_job_directory(
        tmp_path: Path, store: Store):
    with socket.socket() as taken, local_pool(tmp_path, {"name": "n0", "cluster_ip": "127.0.0.1"},
                                              {"name": "n1", "cluster_ip": "127.0.0.1"}) as pool:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        planned = plan_job(JobRequest(write_job(tmp_path), port=port), pool)
        events: list[LaunchProgress] = []
        result = run_launch(planned, pool, store, progress=events.append)
    assert not result.ok and not result.recorded
    assert result.failure is not None and (result.failure.stage, result.failure.node) == ("preflight", None)
    assert f"master port {port} is in use" in result.failure.reason
    assert stages(events) == ["preflight"]
    # the port is the master's check
    assert [(e.node, e.ok) for e in events] == [(None, True), ("n0", False), ("n1", True), (None, False)]
    assert f"master port {port} is in use" in events[1].message
    assert [v.check for v in events[-1].verdicts] == ["versions"]
    assert store.jobs() == []
    assert not (tmp_path / "n0" / "jobs").exists() and not (tmp_path / "n1" / "jobs").exists()


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASCEND_CONSOLE_CORPUS", str(tmp_path / "corpus"))


@pytest.mark.usefixtures("corpus")
def test_a_node_that_cannot_start_fails_the_launch_and_the_started_node_is_stopped(
        tmp_path: Path, store: Store):
    with local_pool(tmp_path, {"name": "n0", "cluster_ip": "127.0.0.1"},
                    {"name": "n1", "cluster_ip": "127.0.0.2", "python": "/nowhere/bin/python"}) as pool:
        # preflight's launcher check would refuse n1 (no msrun, no MindSpore): forced, to reach the start
        planned = plan_job(JobRequest(write_job(tmp_path), settle=30.0, force=frozenset({"launcher"})), pool)
        events: list[LaunchProgress] = []
        result = run_launch(planned, pool, store, progress=events.append)
    job_id = planned.plan.job_id
    assert [v.node for v in result.preflight.verdicts if v.forced] == ["n1", "n1"]
    assert result.failure is not None, events
    assert (result.failure.node, result.failure.stage) == ("n1", "settle")
    assert "not found" in result.failure.reason
    assert result.recorded and sorted(r.node for r in result.stopped) == ["n0", "n1"]
    assert stages(events) == ["preflight", "record", "stage", "start", "settle", "stop"]
    for step in ("stage", "start", "stop"):
        mine = [e for e in events if e.stage == step]
        assert mine[0].node is None and sorted(str(e.node) for e in mine[1:]) == ["n0", "n1"], mine
    [failed] = [e for e in events if not e.ok]
    assert (failed.stage, failed.node) == ("settle", "n1")
    assert store.job(job_id).state == "failed"
    assert {lr.node: lr.state for lr in store.launches(job_id)} == {"n0": "stopped", "n1": "stopped"}
    assert marked(job_id, "n0") == [] and marked(job_id, "n1") == []


@pytest.mark.usefixtures("corpus")
def test_a_launch_that_settles_reports_every_step_in_order_and_leaves_the_job_running(
        tmp_path: Path, store: Store):
    job = write_job(tmp_path, "train_dataset.data_loader.sizes=[80000, 0, 0]")
    with local_pool(tmp_path, {"name": "n0", "cluster_ip": "127.0.0.1"},
                    {"name": "n1", "cluster_ip": "127.0.0.1"}) as pool:
        planned = plan_job(replace(JobRequest(job), settle=2.0, name="settles"), pool)
        events: list[LaunchProgress] = []
        try:
            result = run_launch(planned, pool, store, progress=events.append)
            state = store.job(planned.plan.job_id).state
        finally:
            stopped = stop_job(store, planned.plan.job_id, pool, grace=10)
    assert result.ok and result.recorded and result.stopped == (), result.failure
    assert state == "running"
    assert stages(events) == ["preflight", "record", "stage", "start", "settle"]
    assert all(e.ok for e in events)
    # n0's msrun serves both nodes (one address): one job directory, one start
    assert [(e.stage, e.node) for e in events if e.node is not None and e.stage != "preflight"] == [
        ("stage", "n0"), ("start", "n0"), ("settle", "n0")]
    assert [e.message for e in events if e.stage == "record"] == [f"recorded as {planned.plan.job_id}"]
    assert stopped.ok and marked(planned.plan.job_id, "n0") == []
    assert os.path.isdir(tmp_path / "n0" / "jobs" / planned.plan.job_id / "logs")


def test_a_launch_whose_every_start_failed_records_no_launch_rather_than_crash(tmp_path: Path, store: Store):
    """With no node started the launcher writes an empty list of launches: that is nothing to write, not a
    compare-and-set of 'the launches of one job' the store would refuse with a traceback (review)."""
    with local_pool(tmp_path, {"name": "n0", "cluster_ip": "127.0.0.1"}) as pool:
        planned = plan_job(JobRequest(write_job(tmp_path)), pool)
    hold = LaunchHold(store, planned.plan.job_id)
    record_plan(store, planned.plan, pool.cluster, template="job.yaml", at=0.0, owner=hold.owner)
    version = store.job(planned.plan.job_id).version
    hold.launches([])
    assert store.job(planned.plan.job_id).version == version and hold.version == version
