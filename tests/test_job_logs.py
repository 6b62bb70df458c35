"""The job side of following, without nodes: which files, who failed first, the store's log tables,
job references by name or prefix, and progress from recorded loss lines."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from console.jobs.failure import INFERRED_SLACK, first_failure, first_failure_document
from console.jobs.logfiles import files_to_follow, job_layout
from console.jobs.logview import rank_progress
from console.jobs.lookup import AmbiguousJob, find_job, unknown_job_text
from console.records import JobRecord, LogCursor, LogEventRecord, MetricRecord
from console.store import Store, UnknownJob

PLAN = {"workers": 8, "nodes": [
    {"node": "a2-1", "node_rank": 1, "job_dir": "/w/jobs/j", "local_workers": 4},
    {"node": "a2-0", "node_rank": 0, "job_dir": "/w/jobs/j", "local_workers": 4}]}
TEMPLATE = Path(__file__).resolve().parent.parent / "configs" / "jobs" / "tiny_local.yaml"
PP2 = TEMPLATE.read_text().replace("pipeline_stage: 1", "pipeline_stage: 2")


def job(job_id: str = "20261206-120000-tiny_local", name: str = "tiny_local",
        created: float = 1.0) -> JobRecord:
    return JobRecord(job_id, name, "lab", "/c.yaml", PP2, plan=PLAN, state="running", created_at=created)


# --- which files -------------------------------------------------------------------------------


def test_ranks_are_numbered_by_node_rank_and_the_last_stage_prints_the_loss():
    layout = job_layout(PLAN, PP2)
    assert [(n.node, list(n.ranks)) for n in layout.nodes] == [("a2-0", [0, 1, 2, 3]),
                                                                 ("a2-1", [4, 5, 6, 7])]
    assert (layout.pipeline_stages, list(layout.loss_ranks)) == (2, [4, 5, 6, 7])
    assert layout.default_ranks == (0, 7)


def test_the_default_files_are_rank_0_the_last_rank_msrun_and_the_scheduler():
    files = {(f.node, f.path, f.role, f.rank) for f in files_to_follow(job_layout(PLAN, PP2))}
    assert files == {
        ("a2-0", "/w/jobs/j/console.log", "launcher", None), ("a2-0", "/w/jobs/j/exit_code", "exit", None),
        ("a2-0", "/w/jobs/j/logs/scheduler.log", "scheduler", None),
        ("a2-0", "/w/jobs/j/logs/worker_0.log", "worker", 0),
        ("a2-1", "/w/jobs/j/console.log", "launcher", None), ("a2-1", "/w/jobs/j/exit_code", "exit", None),
        ("a2-1", "/w/jobs/j/logs/worker_7.log", "worker", 7)}


def test_a_config_that_cannot_be_read_counts_as_one_stage():
    assert job_layout(PLAN, "not: [a, mindformers config").pipeline_stages == 1


# --- who failed first --------------------------------------------------------------------------


def event(node: str, rank: int | None, kind: str, time: float | None, line: int = 1) -> LogEventRecord:
    return LogEventRecord("j", node, f"/w/{node}.log", line, kind, "error", f"{kind} on {node}", rank, time)


def test_the_earliest_error_wins_whatever_order_it_was_recorded_in():
    found = first_failure([event("a2-1", 5, "cann_error", 105.0), event("a2-0", 2, "traceback", 100.5)])
    assert found is not None and (found.node, found.rank, found.kind) == ("a2-0", 2, "traceback")


def test_msruns_reaction_is_not_the_failure_even_when_it_comes_first():
    found = first_failure([event("a2-0", None, "workers_killed", 99.0),
                           event("a2-0", None, "job_failed", 99.0),
                           replace(event("a2-0", None, "traceback", 99.0), source="msrun"),
                           event("a2-1", 6, "worker_exit", 100.0)])
    assert found is not None and (found.node, found.rank, found.kind) == ("a2-1", 6, "worker_exit")


def test_simultaneous_errors_go_by_the_order_they_were_recorded():
    found = first_failure([event("a2-1", 6, "worker_exit", 100.0), event("a2-0", 1, "worker_exit", 100.0)])
    assert found is not None and found.rank == 6


def test_warnings_are_no_failure():
    assert first_failure([replace(event("a2-0", 0, "warning", 1.0), severity="warning")]) is None


# --- the store's log tables --------------------------------------------------------------------


def cursor(offset: int, line: int, inode: int = 7) -> LogCursor:
    return LogCursor("20261206-120000-tiny_local", "a2-0", "/w/jobs/j/logs/worker_0.log", inode, offset, line,
                     rank=0, pid=4242, last_time=10.0)


def test_a_files_part_is_recorded_once_and_a_stale_position_is_refused(tmp_path: Path):
    with Store(tmp_path / "db") as store:
        store.create_job(job())
        loss = MetricRecord(job().id, "a2-0", 0, 1, 11.0, 9.5, {"per_step_ms": 300})
        error = event("a2-0", 0, "traceback", 12.0, line=3)
        assert store.record_log(None, cursor(120, 3), [replace(error, job_id=job().id)], [loss])
        assert not store.record_log(None, cursor(240, 6), [], [loss])  # a second console, one step behind
        assert store.record_log(cursor(120, 3), cursor(240, 6), [], [replace(loss, step=2)])
        assert store.log_cursors(job().id) == [cursor(240, 6)]
        assert [m.step for m in store.metrics(job().id)] == [1, 2]
        [kept] = store.log_events(job().id, severity="error")
        assert (kept.kind, kept.line, kept.rank, kept.time) == ("traceback", 3, 0, 12.0)


def test_an_msrun_line_that_named_a_pid_before_its_rank_was_known_is_read_with_its_rank(tmp_path: Path):
    # msrun's "Worker process 4242 exit" read before worker_0.log told rank 0's pid: the errors
    # shown later name rank 0, whichever file was read first.
    with Store(tmp_path / "db") as store:
        store.create_job(job())
        exit_line = replace(event("a2-0", None, "worker_exit", 12.0), job_id=job().id, pid=4242,
                            path="/w/msrun.log")
        unknown = replace(cursor(120, 3), path="/w/msrun.log", rank=None, pid=None)
        store.record_log(None, unknown, [exit_line], [])
        [before] = store.log_events(job().id, severity="error")
        assert before.rank is None
        store.record_log(None, cursor(120, 3), [], [])
        [after] = store.log_events(job().id, severity="error")
        assert (after.kind, after.rank) == ("worker_exit", 0)


def test_the_first_failure_is_kept_with_the_job(tmp_path: Path):
    with Store(tmp_path / "db") as store:
        store.create_job(job())
        store.set_first_failure(job().id, {"node": "a2-1", "rank": 6})
        assert store.job(job().id).first_failure == {"node": "a2-1", "rank": 6}


# --- naming a job ------------------------------------------------------------------------------


def test_a_job_is_found_by_id_prefix_or_name_and_the_newest_of_a_name_wins(tmp_path: Path):
    with Store(tmp_path / "db") as store:
        older = job("20261206-120000-tiny_local", created=1.0)
        newer = job("20261206-130000-tiny_local", created=2.0)
        store.create_job(older)
        store.create_job(newer)
        assert find_job(store, older.id).job.id == older.id
        assert find_job(store, "20261206-12").job.id == older.id
        named = find_job(store, "tiny_local")
        assert named.job.id == newer.id and "newest of 2" in named.note
        with pytest.raises(AmbiguousJob, match="start of 2 job ids"):
            find_job(store, "20261206-1")
        with pytest.raises(UnknownJob) as missing:
            find_job(store, "tiny_locl")
        assert "did you mean 'tiny_local'" in unknown_job_text(missing.value, store)


# --- progress ----------------------------------------------------------------------------------


def test_progress_is_the_last_step_with_a_recent_mean_step_time_and_an_eta():
    series = [MetricRecord("j", "a2-1", 7, step, float(step), 10.0 - step,
                           {"per_step_ms": 1000 if step == 1 else 200, "total_steps": 100})
              for step in range(1, 21)]
    [progress] = rank_progress(series)
    assert (progress.rank, progress.step, progress.loss, progress.per_step_ms) == (7, 20, -10.0, 200.0)
    assert progress.eta_seconds == 80 * 0.2


def stamped_event(node: str, rank: int, time: float, *, own_stamp: bool) -> LogEventRecord:
    """An error whose first line carries its own timestamp, or (a traceback) took an earlier line's."""
    first = "[ERROR] ME(7:7,python):2026-12-06-21:07:15.174.000 [x.py:1] boom" if own_stamp else \
        "Traceback (most recent call last):"
    return replace(event(node, rank, "ms_error" if own_stamp else "traceback", time), lines=(first,))


def test_an_inferred_time_counts_a_little_later_than_an_exact_one():
    inferred = stamped_event("a2-0", 1, 100.0, own_stamp=False)
    just_after = stamped_event("a2-1", 6, 100.5, own_stamp=True)
    long_after = stamped_event("a2-1", 6, 160.0, own_stamp=True)
    found = first_failure([inferred, just_after])
    assert found is not None and (found.rank, found.time_inferred) == (6, False)
    found = first_failure([inferred, long_after])
    assert found is not None and (found.rank, found.time_inferred) == (1, True)
    tied = first_failure([stamped_event("a2-0", 1, 100.0 - INFERRED_SLACK, own_stamp=False),
                          stamped_event("a2-1", 6, 100.0, own_stamp=True)])
    assert tied is not None and tied.rank == 6


def test_the_first_failure_is_read_and_written_in_one_transaction(tmp_path: Path):
    """Two consoles updating at once: neither may read, then let the other write, then write stale."""
    with Store(tmp_path / "db") as store:
        store.create_job(job())
        exit_line = replace(event("a2-0", None, "worker_exit", 12.0), job_id=job().id, pid=4242)
        store.record_log(None, cursor(120, 3), [exit_line], [])
        other = sqlite3.connect(tmp_path / "db", timeout=0)
        seen: list[tuple[list[LogEventRecord], dict[tuple[str, int], int]]] = []

        def choose(events: list[LogEventRecord], pids: dict[tuple[str, int], int]) -> dict[str, Any] | None:
            seen.append((events, pids))
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")  # another console cannot record meanwhile
            return first_failure_document(events, pids)

        document = store.update_first_failure(job().id, choose)
        other.close()
        assert [e.kind for e in seen[0][0]] == ["worker_exit"] and seen[0][1] == {("a2-0", 4242): 0}
        assert document is not None and document["rank"] == 0
        assert store.job(job().id).first_failure == document
