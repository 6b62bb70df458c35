"""console/jobs/refresh.py without nodes: the job's state from its nodes', and what a change records."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from console.jobs.owner import this_process
from console.jobs.refresh import (
    LAUNCH_LEASE,
    change_events,
    job_outcome,
    record_answers,
    refresh_jobs,
    updated_launch,
)
from console.records import JobRecord, JobState, LaunchRecord
from console.store import Store
from remote.jobstate import NodeJobState, NodeJobStates, NodeQueryFailure, NodeState


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
