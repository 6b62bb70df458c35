"""JobFollow at its edges, on the local transport with jobs built by hand (tests/handjobs.py): a failure
while handling a batch, a run that ends without an exit code, a traceback at the end of a file, msrun's
copies of the scheduler's lines, and no round trip to the nodes before following starts.

Every wait is bounded (WAIT) and only ever ends early when what it waits for has happened.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from console.jobs import follow as follow_module
from console.jobs.follow import JobFollow, catch_up
from console.records import LogCursor, LogEventRecord, MetricRecord
from console.store import Store
from remote.local import LocalTransport
from tests.followcheck import wait_until
from tests.handjobs import (
    JOB_ID,
    WAIT,
    Batches,
    following,
    hand_job,
    losses,
    node_pool,
    open_store,
    traceback_lines,
    write,
)

SCHEDULER_TIMEOUT = ("[ERROR] DISTRIBUTED(3900,7f1d12dfab80,python):2026-12-06-21:07:20.000.000 "
                     "[mindspore/ccsrc/distributed/cluster/topology/meta_server_node.cc:511] "
                     "UpdateTopoState] "
                     "The node: 1 is timed out. It may exit with exception, please check this node's log.")


class LockedStore(Store):
    """A store another process holds locked for longer than its busy timeout."""

    def record_log(self, expected: LogCursor | None, cursor: LogCursor, events: Sequence[LogEventRecord],
                   metrics: Sequence[MetricRecord]) -> bool:
        raise sqlite3.OperationalError("database is locked")


def test_a_failure_handling_a_batch_ends_the_follow_with_the_error_as_a_value(tmp_path: Path):
    job = hand_job(tmp_path)
    write(job.log(0), losses(1, 3))
    store = LockedStore(tmp_path / "console.db")
    store.create_job(job.record)
    sink = Batches()
    with store, node_pool(tmp_path) as pool, following(job, pool, sink, store=store) as follow:
        assert follow.wait(WAIT)  # without the guard the node's thread died and this never ended
        failures = follow.failures
    assert set(failures) == {"node0", "node1"}
    assert failures["node0"] == "OperationalError: database is locked"
    assert {b.node: b.error for b in sink.batches() if b.error} == failures


def test_a_run_that_ends_without_an_exit_code_ends_the_follow_once_its_files_are_read(tmp_path: Path):
    job = hand_job(tmp_path)
    write(job.log(0), losses(1, 3))
    write(job.log(3), losses(1, 3))
    job.exited("node0", 0)
    sink = Batches()
    with node_pool(tmp_path) as pool, following(job, pool, sink) as follow:
        assert wait_until(lambda: follow.exit_codes == {"node0": 0} and sink.steps(3) == [1, 2, 3], WAIT)
        assert not follow.wait(0)
        write(job.log(3), losses(4, 4))  # its last words, then node1 reboots: no exit_code ever
        follow.runs_ended({"node1"})
        assert follow.wait(WAIT)
        assert follow.lost_nodes == {"node1"}
    assert sink.steps(3) == [1, 2, 3, 4]


def test_a_traceback_at_the_end_of_a_file_is_delivered_once_the_file_is_quiet(tmp_path: Path):
    job = hand_job(tmp_path)
    write(job.log(0), losses(1, 2))
    sink = Batches()
    with node_pool(tmp_path) as pool, following(job, pool, sink):
        assert wait_until(lambda: sink.steps(0) == [1, 2], WAIT)
        write(job.log(0), traceback_lines("rank 0 is out"))  # and nothing after it: the rank is dead
        assert wait_until(lambda: len(sink.events("traceback")) == 1, WAIT)
    (event,) = sink.events("traceback")
    assert event.event.lines == tuple(traceback_lines("rank 0 is out"))


def test_catch_up_of_a_running_node_keeps_a_half_written_traceback_for_the_next_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(follow_module, "QUIET_CLOSE", 3600.0)  # the rest is still being written
    job = hand_job(tmp_path)
    whole = traceback_lines("rank 0 is out")
    write(job.log(0), [*losses(1, 2), *whole[:2]])
    with node_pool(tmp_path) as pool, open_store(tmp_path, job) as store:
        catch_up(store, pool, job.record, timeout=2)
        assert store.log_events(JOB_ID, severity="error") == []
        [stored] = [c for c in store.log_cursors(JOB_ID) if c.rank == 0]
        assert stored.line == 2  # before the traceback: it is read again with its rest
        write(job.log(0), whole[2:])
        job.exited("node0", 1)
        job.exited("node1", 0)
        assert catch_up(store, pool, job.record, timeout=WAIT) == []
        errors = store.log_events(JOB_ID, severity="error")
    assert [(e.kind, e.line, e.lines) for e in errors] == [("traceback", 3, tuple(whole))]


def test_catch_up_of_a_running_node_records_a_traceback_once_its_file_stays_quiet(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(follow_module, "QUIET_CLOSE", 0.2)
    job = hand_job(tmp_path)
    write(job.log(0), [*losses(1, 2), *traceback_lines("rank 0 is out")])
    with node_pool(tmp_path) as pool, open_store(tmp_path, job) as store:
        assert catch_up(store, pool, job.record, timeout=WAIT) == []
        errors = store.log_events(JOB_ID, severity="error")
        assert store.job(JOB_ID).first_failure is not None
    assert [(e.kind, e.line) for e in errors] == [("traceback", 3)]


def test_msruns_copy_of_the_schedulers_line_is_not_counted_again(tmp_path: Path):
    job = hand_job(tmp_path)
    write(job.dirs["node0"] / "logs" / "scheduler.log", [SCHEDULER_TIMEOUT])
    write(job.console("node0"), [SCHEDULER_TIMEOUT])  # msrun --join tails the scheduler's log
    job.exited("node0", 1)
    job.exited("node1", 0)
    with node_pool(tmp_path) as pool, open_store(tmp_path, job) as store:
        assert catch_up(store, pool, job.record, timeout=WAIT) == []
        timeouts = [e for e in store.log_events(JOB_ID) if e.kind == "scheduler_timeout"]
    assert [e.path.rsplit("/", 1)[1] for e in timeouts] == ["scheduler.log"]


def test_following_starts_without_asking_the_nodes_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The zone comes with the agent's first frame: no `date` per node, serially, outside any timeout."""
    def no_commands(*_: object, **__: object) -> None:
        raise AssertionError("JobFollow.start ran a command on a node")

    monkeypatch.setattr(LocalTransport, "run", no_commands)
    job = hand_job(tmp_path)
    write(job.log(0), losses(1, 1))
    sink = Batches()
    with node_pool(tmp_path) as pool:
        follow = JobFollow(job.record, pool, sink)
        follow.start()
        try:
            assert wait_until(lambda: sink.steps(0) == [1], WAIT)
        finally:
            follow.stop()


def test_a_traceback_at_the_end_of_an_ended_run_is_recorded_in_one_read(tmp_path: Path):
    """The exit code arrives in the same batch as the rank's last lines: they are complete."""
    job = hand_job(tmp_path)
    write(job.log(0), [*losses(1, 2), *traceback_lines("rank 0 is out")])
    job.exited("node0", 1)
    job.exited("node1", 0)
    with node_pool(tmp_path) as pool, open_store(tmp_path, job) as store:
        assert catch_up(store, pool, job.record, timeout=WAIT) == []
        errors = store.log_events(JOB_ID, severity="error")
        assert store.job(JOB_ID).first_failure is not None
    assert [(e.kind, e.line) for e in errors] == [("traceback", 3)]
