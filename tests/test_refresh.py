"""console/jobs/refresh.py without nodes: the job's state from its nodes', and what a change records."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from console.jobs.owner import this_process
from console.jobs.plan import process_marker
from console.jobs.refresh import (
    LAUNCH_LEASE,
    change_events,
    job_outcome,
    record_answers,
    refresh_jobs,
    refresh_on,
    updated_launch,
)
from console.records import JobRecord, JobState, LaunchRecord
from console.store import Store
from remote import launch as node_launch
from remote.inventory import load_cluster
from remote.jobstate import NodeJobState, NodeJobStates, NodeQueryFailure, NodeState
from remote.pool import NodePool


def launch(state: NodeState, code: int | None = None, *, last: NodeState | None = None,
           node: str = "n") -> LaunchRecord:
    return LaunchRecord("j", node, 0, "/w/jobs/j", pid=7, state=state, exit_code=code, last_known=last)


@pytest.mark.parametrize(("nodes", "current", "outcome"), [
    ([], "launching", ("launching", None)),
    ([launch("running"), launch("exited", 0)], "running", ("running", None)),
    ([launch("starting"), launch("starting")], "launching", ("starting", None)),
    ([launch("running"), launch("lost")], "stopping", ("stopping", None)),
    ([launch("exited", 0), launch("exited", 0)], "running", ("exited", 0)),
    # the worst code when all ended: 0 only if all 0
    ([launch("exited", 0), launch("exited", 1), launch("exited", 137)], "running", ("failed", 137)),
    # a failure of its own outranks a node lost or stopped afterwards
    ([launch("exited", 1), launch("lost")], "running", ("failed", 1)),
    ([launch("exited", 0), launch("lost")], "running", ("lost", None)),
    ([launch("exited", 0), launch("missing")], "running", ("lost", None)),
    ([launch("stopped", 143), launch("stopped", None)], "stopping", ("stopped", None)),
    ([launch("stopped", 143), launch("exited", 0)], "stopping", ("stopped", None)),
    # an unreachable node counts as what it last reported
    ([launch("unreachable", last="running"), launch("exited", 0)], "running", ("running", None)),
    ([launch("unreachable", 0, last="exited"), launch("exited", 0)], "running", ("exited", 0)),
])
def test_job_state_from_node_states(nodes: list[LaunchRecord], current: JobState,
                                    outcome: tuple[JobState, int | None]):
    assert job_outcome(nodes, current) == outcome


def test_a_node_that_cannot_be_asked_keeps_its_last_known_state():
    failure = NodeQueryFailure("n", "sh -c ...", "n: connection timed out")
    gone = updated_launch(launch("running"), failure, at=5.0)
    assert (gone.state, gone.last_known, gone.reason, gone.pid) == (
        "unreachable", "running", "n: connection timed out", 7)
    # asked again while still out of reach: the last known state stays the one read from the node
    still = updated_launch(gone, failure, at=6.0)
    assert (still.state, still.last_known) == ("unreachable", "running")
    [event] = change_events(launch("running"), gone, at=5.0)
    assert event.kind == "unreachable" and "last known: running" in event.message
    assert change_events(gone, still, at=6.0) == []


def test_a_node_that_answers_again_is_read_afresh():
    gone = launch("unreachable", last="running")
    answer = NodeJobStates("n", (NodeJobState("/w/jobs/j", "exited", pid=7, exit_code=3),))
    back = updated_launch(gone, answer, at=9.0)
    assert (back.state, back.exit_code, back.last_known, back.reason) == ("exited", 3, None, "")
    [event] = change_events(gone, back, at=9.0)
    assert event.message == "running -> exited (exit code 3) (reachable again)"


def test_no_event_when_nothing_changed():
    answer = NodeJobStates("n", (NodeJobState("/w/jobs/j", "running", pid=7),))
    same = updated_launch(launch("running"), answer, at=2.0)
    assert change_events(launch("running"), same, at=2.0) == []


def test_an_answer_without_this_directory_is_not_taken_for_a_state():
    answer = NodeJobStates("n", (NodeJobState("/w/jobs/other", "exited", exit_code=0),))
    assert updated_launch(launch("running"), answer, at=2.0).state == "unreachable"


def test_a_job_whose_cluster_file_is_gone_is_reported_not_skipped(tmp_path: Path):
    with Store(tmp_path / "db") as store:
        store.create_job(JobRecord("j", "j", "gone", str(tmp_path / "gone.yaml"), "cfg", state="running"),
                         [launch("running")])
        [refreshed] = refresh_jobs(store, now=lambda: 50.0)
        [failure] = refreshed.failures
        assert "gone.yaml cannot be read" in failure.reason
        [after] = store.launches("j")
        assert (after.state, after.last_known, after.updated_at) == ("unreachable", "running", 50.0)
        assert store.job("j").state == "running"
        # the launcher's own jobs are left alone while their launcher lives...
        store.set_job_state("j", "launching", at=60.0, owner=this_process("launch").dump())
        assert refresh_jobs(store, now=lambda: 61.0 + 10 * LAUNCH_LEASE) == []
        # ...on another host, where it cannot be looked at, until the lease is over...
        elsewhere = replace(this_process("launch"), host="not-" + socket.gethostname()).dump()
        store.set_job_state("j", "launching", at=60.0, owner=elsewhere)
        assert refresh_jobs(store, now=lambda: 61.0) == []
        [adopted] = refresh_jobs(store, now=lambda: 61.0 + LAUNCH_LEASE)
        assert adopted.job.id == "j"
        # ...and here, as soon as its process is gone
        gone = replace(this_process("launch"), pid=dead_pid()).dump()
        store.set_job_state("j", "launching", at=60.0, owner=gone)
        [adopted] = refresh_jobs(store, now=lambda: 61.0)
        assert adopted.job.id == "j"


def dead_pid() -> int:
    """The pid of a process that has ended and been reaped."""
    done = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_a_refresh_during_a_live_stop_leaves_the_ending_to_the_stop(tmp_path: Path):
    """The stop has written `stopping` and its ranks have exited, but it has not verified (its grace, the
    npu-smi check): a refresh from another console (the TUI's timer) must not write `stopped` for it."""
    answer = NodeJobStates("n", (NodeJobState("/w/jobs/j", "stopped", pid=7, exit_code=143),))
    with Store(tmp_path / "db") as store:
        store.create_job(JobRecord("j", "j", "c", str(tmp_path / "c.yaml"), "cfg", state="running"),
                         [launch("running")])
        store.set_job_state("j", "stopping", at=10.0, owner=this_process("stop").dump())
        refreshed = record_answers(store, store.job("j"), {"n": answer}, None, at=11.0)
        assert (refreshed.job.state, [lr.state for lr in refreshed.launches]) == ("stopping", ["stopped"])
        # the same refresh once that stop's process is gone: the nodes say how it ended
        gone = replace(this_process("stop"), pid=dead_pid()).dump()
        store.set_job_state("j", "stopping", at=12.0, owner=gone)
        assert record_answers(store, store.job("j"), {"n": answer}, None, at=13.0).job.state == "stopped"


# --- a launch adopted with no node started, on local nodes -----------------------------------------

STAGED = "20261207-000000-stgd"


@pytest.fixture
def staged_launch(tmp_path: Path) -> Iterator[tuple[Store, NodePool, dict[str, Path]]]:
    """A launch recorded `launching` by a console on another host whose lease is over (so: thought gone),
    its job staged on both local nodes, no start begun."""
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(yaml.safe_dump({
        "name": "here", "defaults": {"transport": "local", "python": sys.executable},
        "nodes": [{"name": n, "cluster_ip": "127.0.0.1", "workdir": str(tmp_path / n)} for n in ("n0", "n1")],
    }))
    dirs = {n: tmp_path / n / "jobs" / STAGED for n in ("n0", "n1")}
    elsewhere = replace(this_process("launch"), host="not-" + socket.gethostname()).dump()
    archive = node_launch.job_archive({"launch.sh": b"exit 0\n"}, ["launch.sh"], mtime=time.time())
    with Store(tmp_path / "db") as store, NodePool(load_cluster(cluster)) as pool:
        for node, job_dir in dirs.items():
            assert node_launch.stage(pool.transport(node), str(job_dir), archive, timeout=30).ok
        store.create_job(JobRecord(STAGED, "staged", "here", str(cluster), "cfg", state="launching",
                                   created_at=100.0, updated_at=100.0, owner=elsewhere),
                         [LaunchRecord(STAGED, node, rank, str(dirs[node]), updated_at=100.0)
                          for rank, node in enumerate(dirs)])
        yield store, pool, dirs


def after_the_lease() -> float:
    return 101.0 + LAUNCH_LEASE


def test_an_adopted_launch_that_started_nothing_is_failed_then_its_staged_directories_removed(
        staged_launch: tuple[Store, NodePool, dict[str, Path]]):
    store, pool, dirs = staged_launch
    [refreshed] = refresh_on(store, pool, [store.job(STAGED)], timeout=30, now=after_the_lease)
    assert store.job(STAGED).state == "failed"
    assert [d for d in dirs.values() if d.exists()] == []
    unstaged = sorted((e.node, e.message) for e in store.events(STAGED) if e.kind == "unstaged")
    assert unstaged == [(node, f"removed {dirs[node]} (the launch was interrupted before any node started)")
                        for node in ("n0", "n1")]
    assert refreshed.written
    assert sorted((e.node, e.kind) for e in refreshed.events if e.kind == "unstaged") == [
        ("n0", "unstaged"), ("n1", "unstaged")]


def test_a_node_whose_start_had_begun_keeps_its_directory_and_its_run_is_stopped(
        staged_launch: tuple[Store, NodePool, dict[str, Path]]):
    """The launcher died in the moment between a node's start beginning and its pid written: the run
    may be going. That directory is not removed (the unstage refuses it), and the node is stopped, so
    nothing runs under the failed job."""
    store, pool, dirs = staged_launch
    (dirs["n1"] / "start_begun").touch()
    run = subprocess.Popen(["sleep", "300"], env={"ASCEND_CONSOLE_JOB": process_marker(STAGED, "n1")},
                           start_new_session=True)
    try:
        refresh_on(store, pool, [store.job(STAGED)], timeout=30, now=after_the_lease)
        ended = run.wait(timeout=60)
    finally:
        run.kill()
        run.wait()
    assert ended == -15  # the stop's SIGTERM
    assert store.job(STAGED).state == "failed"
    assert not dirs["n0"].exists() and (dirs["n1"] / "launch.sh").exists()
    said = {(e.node, e.kind): e.message for e in store.events(STAGED) if e.kind in ("unstaged", "stopped")}
    assert set(said) == {("n0", "unstaged"), ("n1", "unstaged"), ("n1", "stopped")}, said
    assert "start" in said[("n1", "unstaged")], said
    assert "1 stopped" in said[("n1", "stopped")], said


def test_an_adopted_launch_whose_launcher_wrote_meanwhile_keeps_its_staged_directories(
        staged_launch: tuple[Store, NodePool, dict[str, Path]]):
    """The launcher was only thought gone (its lease ran out on another host): after the refresh read the
    job, it wrote it (as it does before starting its nodes). The refresh's compare-and-set fails, and it
    must not have removed the directories that launcher is about to start runs in (review)."""
    store, pool, dirs = staged_launch
    read = store.job(STAGED)
    store.set_job_state(STAGED, "launching", at=200.0, expected=read.version, owner=read.owner)
    [refreshed] = refresh_on(store, pool, [read], timeout=30, now=after_the_lease)
    assert all((d / "launch.sh").exists() for d in dirs.values())
    assert not refreshed.written and refreshed.job.state == "launching"
    assert [e for e in store.events(STAGED) if e.kind in ("unstaged", "launch-failed")] == []
