"""JobFollow on the local transport: job directories built by hand on two local "nodes" (each its
own workdir), lines appended while the job is followed, and what lands in the store.

The job: 4 ranks, node0 holds ranks 0-1, node1 ranks 2-3; followed by default: ranks 0 and 3.
Every wait is bounded (WAIT) and only ever ends early when what it waits for has happened.
"""

from __future__ import annotations

import calendar
import os
import sys
import time
from pathlib import Path

import pytest

from console.jobs.follow import catch_up
from console.store import Store
from tests.followcheck import wait_until
from tests.handjobs import (
    JOB_ID,
    WAIT,
    Batches,
    following,
    hand_job,
    killed_others_line,
    losses,
    metrics_of,
    ms_line,
    msrun_line,
    node_pool,
    open_store,
    recorded_steps,
    started_line,
    traceback_lines,
    worker_exit_line,
    write,
)

# --- exactly once ------------------------------------------------------------------------------


def test_two_consoles_at_once_record_every_step_once_and_a_later_one_resumes(tmp_path: Path):
    job = hand_job(tmp_path)
    write(job.log(0), losses(1, 5))
    write(job.log(3), losses(1, 5))
    first_sink, second_sink = Batches(), Batches()
    with node_pool(tmp_path) as pool, open_store(tmp_path, job) as one, Store(tmp_path / "console.db") as two:
        with following(job, pool, first_sink, store=one), following(job, pool, second_sink, store=two):
            for step in range(6, 61):  # both consoles read while the ranks write
                write(job.log(0), losses(step, step))
                write(job.log(3), losses(step, step))
                time.sleep(0.002)
            assert wait_until(lambda: all(sink.steps(rank)[-1:] == [60] for sink in (first_sink, second_sink)
                                          for rank in (0, 3)), WAIT)
            assert wait_until(lambda: len(one.metrics(JOB_ID)) >= 120, WAIT)
        assert first_sink.steps(0) == second_sink.steps(0) == list(range(1, 61))
        assert recorded_steps(one, 0) == recorded_steps(one, 3) == list(range(1, 61))

        write(job.log(0), losses(61, 80))  # written while no console follows
        write(job.log(3), losses(61, 80))
        third_sink = Batches()
        with Store(tmp_path / "console.db") as three, \
                following(job, pool, third_sink, store=three, from_start=False):
            assert wait_until(lambda: all(third_sink.steps(rank)[-1:] == [80] for rank in (0, 3)), WAIT)
            assert wait_until(lambda: len(three.metrics(JOB_ID)) >= 160, WAIT)
        assert third_sink.steps(0) == third_sink.steps(3) == list(range(61, 81))  # resumed, not re-read
        assert recorded_steps(one, 0) == recorded_steps(one, 3) == list(range(1, 81))


# --- who failed first ---------------------------------------------------------------------------


def test_a_rank_killed_with_one_line_in_its_log_is_named_by_its_pid(tmp_path: Path):
    job = hand_job(tmp_path)
    write(job.log(0), [ms_line(3808, "Connection 11 source: 127.0.0.1:37410"), *losses(1, 3)])
    write(job.console("node0"), [started_line(0), started_line(1)])
    write(job.console("node1"), [started_line(2), started_line(3)])
    write(job.log(3), losses(1, 3))
    sink = Batches()
    with node_pool(tmp_path) as pool, open_store(tmp_path, job) as store, \
            following(job, pool, sink, store=store):
        assert wait_until(lambda: sink.steps(3)[-1:] == [3], WAIT)
        # msrun reports rank 1's death (SIGKILL) before anything of rank 1's log has been read
        write(job.console("node0"), [worker_exit_line(3810, -9), killed_others_line()])
        assert wait_until(lambda: store.job(JOB_ID).first_failure is not None, WAIT)
        unnamed = store.job(JOB_ID).first_failure
        assert unnamed is not None and (unnamed["node"], unnamed["kind"], unnamed["rank"]) == (
            "node0", "worker_exit", None)
        write(job.log(1), [ms_line(3810, "Connection 12 source: 127.0.0.1:37436")])
        assert wait_until(lambda: (store.job(JOB_ID).first_failure or {}).get("rank") == 1, WAIT)
        failure = store.job(JOB_ID).first_failure
    assert failure is not None and failure["node"] == "node0" and failure["kind"] == "worker_exit"
    assert "SIGKILL" in failure["message"]


def test_msruns_worker_exit_makes_every_rank_of_that_node_read(tmp_path: Path):
    job = hand_job(tmp_path)
    write(job.log(1), traceback_lines("node0 rank 1 is not asked for"))
    write(job.log(2), [ms_line(4242, "rank 2 is up"), *traceback_lines("simulated failure on rank 2")])
    write(job.log(3), losses(1, 2))
    write(job.console("node1"), [started_line(2), started_line(3)])
    sink = Batches()
    with node_pool(tmp_path) as pool, following(job, pool, sink, ranks=[3]):
        assert wait_until(lambda: sink.steps(3) == [1, 2], WAIT)
        assert sink.lines(job.log(2)) == []
        write(job.console("node1"), [worker_exit_line(4242, 1), killed_others_line()])
        assert wait_until(lambda: len(sink.lines(job.log(2))) == 5, WAIT)
        write(job.log(2), ["after the traceback"])  # closes it: the traceback is one event
        assert wait_until(lambda: [e.rank for e in sink.events("traceback")] == [2], WAIT)
    [traceback] = sink.events("traceback")
    assert (traceback.file.node, traceback.event.line) == ("node1", 2)
    assert traceback.event.message == "RuntimeError: simulated failure on rank 2"
    assert sink.lines(job.log(1)) == []  # node0's msrun reported nothing: its ranks stay as asked


# --- files that start over ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["replaced", "truncated"])
def test_a_log_replaced_or_truncated_is_read_from_line_1_and_recorded(tmp_path: Path, how: str):
    job = hand_job(tmp_path)
    log = job.log(0)
    write(log, [*losses(1, 3), *traceback_lines("the old run ends")])
    sink = Batches()
    with node_pool(tmp_path) as pool, open_store(tmp_path, job) as store, \
            following(job, pool, sink, store=store, ranks=[0]):
        assert wait_until(lambda: recorded_steps(store, 0) == [1, 2, 3], WAIT)
        if how == "replaced":  # a new run in the same directory: a smaller, new file
            fresh = log.with_name("worker_0.log.new")
            write(fresh, losses(1, 2, base=20.0))
            fresh.rename(log)
        else:
            os.truncate(log, 0)
            write(log, losses(1, 2, base=20.0))
        assert wait_until(lambda: recorded_steps(store, 0) == [1, 1, 2, 2, 3], WAIT)
        assert [n.kind for n in sink.notices(log)] == [how]
        recorded = metrics_of(store, 0), store.log_events(JOB_ID, severity="error"), store.log_cursors(JOB_ID)
    assert [line.number for line in sink.lines(log)] == [1, 2, 3, 4, 5, 6, 7, 1, 2]
    new_run = [e for e in sink.events("loss") if e.event.loss and (e.event.loss.loss or 0) > 15]
    assert [(e.event.line, e.event.loss.step if e.event.loss else None) for e in new_run] == [(1, 1), (2, 2)]
    metrics, errors, cursors = recorded
    assert sorted((m.step, m.loss) for m in metrics if m.loss and m.loss > 15) == [(1, 19.999), (2, 19.998)]
    [old_end] = errors  # the old file's last traceback, read whole
    assert (old_end.line, old_end.message) == (4, "RuntimeError: the old run ends")
    [cursor] = [c for c in cursors if c.path == str(log)]
    assert (cursor.inode, cursor.line, cursor.offset) == (log.stat().st_ino, 2, log.stat().st_size)


# --- the end of a run ---------------------------------------------------------------------------


def test_the_follow_ends_once_every_node_wrote_exit_code_with_every_file_read_to_its_end(tmp_path: Path):
    job = hand_job(tmp_path)
    write(job.log(0), losses(1, 3))
    write(job.log(3), losses(1, 3))
    sink = Batches()
    with node_pool(tmp_path) as pool, open_store(tmp_path, job) as store, \
            following(job, pool, sink, store=store) as follow:
        assert wait_until(lambda: sink.steps(0)[-1:] == sink.steps(3)[-1:] == [3], WAIT)
        write(job.log(0), losses(4, 50))  # the last lines, right before the run ends
        job.exited("node0", 0)
        assert wait_until(lambda: "node0" in follow.done_nodes, WAIT)
        assert not follow.wait(0), "node1 is still running"
        write(job.log(3), losses(4, 50))
        write(job.console("node1"), [msrun_line("INFO", 380, "All workers successfully exit!")])
        job.exited("node1", 0)
        assert follow.wait(WAIT)
        assert follow.exit_codes == {"node0": 0, "node1": 0}
        assert recorded_steps(store, 0) == recorded_steps(store, 3) == list(range(1, 51))
    assert sink.steps(0) == sink.steps(3) == list(range(1, 51))
    assert [e.file.node for e in sink.events("all_exited")] == ["node1"]


def test_catch_up_records_a_finished_job_once(tmp_path: Path):
    job = hand_job(tmp_path)
    for rank in range(4):  # ranks 1 and 2 are read because msrun reports a failure on their nodes
        write(job.log(rank), [ms_line(3808 + rank, "up"), *losses(1, 20 if rank != 3 else 17)])
    write(job.log(3), traceback_lines("rank 3 fails"))
    write(job.console("node0"), [started_line(0), started_line(1)])
    write(job.console("node1"), [started_line(2), started_line(3), worker_exit_line(3811, 1)])
    job.exited("node0", 1)
    job.exited("node1", 1)
    with node_pool(tmp_path) as pool, open_store(tmp_path, job) as store:
        assert catch_up(store, pool, store.job(JOB_ID), timeout=WAIT) == []
        recorded = (store.metrics(JOB_ID), store.log_events(JOB_ID), store.job(JOB_ID).first_failure)
        assert [recorded_steps(store, rank) for rank in range(4)] == [list(range(1, 21))] * 3 + [
            list(range(1, 18))]
        errors = sorted((e.node, e.kind) for e in store.log_events(JOB_ID, severity="error"))
        assert errors == [("node1", "traceback"), ("node1", "worker_exit")]
        failure = store.job(JOB_ID).first_failure
        assert failure is not None and (failure["node"], failure["rank"]) == ("node1", 3)
        assert catch_up(store, pool, store.job(JOB_ID), timeout=WAIT) == []
        assert (store.metrics(JOB_ID), store.log_events(JOB_ID), store.job(JOB_ID).first_failure) == recorded


# --- on the console's clock ---------------------------------------------------------------------


SKEW = 600.0
"""Seconds node1's clock is set ahead of the console's."""


def skewed_python(tmp_path: Path) -> str:
    """An interpreter whose clock runs SKEW seconds ahead: what node1's follow agent reports."""
    site = tmp_path / "skewed"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        f"import time\n_real = time.time\ntime.time = lambda: _real() + {SKEW!r}\n")
    wrapper = site / "python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={site} exec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def test_event_times_are_put_on_the_consoles_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TZ", "IST-05:30")  # both nodes print local time 5 h 30 ahead of UTC
    zone = 5 * 3600 + 30 * 60
    job = hand_job(tmp_path)
    write(job.log(0), losses(1, 1))
    write(job.log(3), losses(1, 1))
    sink = Batches()
    pool = node_pool(tmp_path, {"node1": skewed_python(tmp_path)})
    with pool, following(job, pool, sink):
        assert wait_until(lambda: sink.steps(0) == sink.steps(3) == [1], WAIT)
        for rank in (0, 3):
            write(job.log(rank), [ms_line(1000 + rank, f"rank {rank} fails", level="ERROR",
                                          stamp="2026-12-06-21:07:15.250.000")])
        assert wait_until(lambda: len(sink.events("ms_error")) == 2, WAIT)
    printed = calendar.timegm((2026, 12, 6, 21, 7, 15, 0, 0, 0)) + 0.25
    times = {e.file.node: e.time for e in sink.events("ms_error")}
    # offsets are measured from heartbeats, late by the pipe's delay: bounds far below SKEW and the zone
    assert times["node0"] == pytest.approx(printed - zone, abs=SKEW / 10)
    assert times["node1"] == pytest.approx(printed - zone - SKEW, abs=SKEW / 10)
