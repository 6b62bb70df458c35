"""JobFollow on the local transport: job directories built by hand on two local "nodes" (each its
own workdir), lines appended while the job is followed, and what lands in the store.

The job: 4 ranks, node0 holds ranks 0-1, node1 ranks 2-3; followed by default: ranks 0 and 3.
Every wait is bounded (WAIT) and only ever ends early when what it waits for has happened.
"""

from __future__ import annotations

import calendar
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from console.jobs.follow import JobEvent, JobFollow, JobLine, JobLogBatch, catch_up
from console.store import JobRecord, MetricRecord, Store
from remote.follow import FollowNotice
from remote.inventory import load_cluster_text
from remote.pool import NodePool
from tests.followcheck import wait_until

TEMPLATE = Path(__file__).resolve().parent.parent / "configs" / "jobs" / "tiny_local.yaml"
JOB_ID = "20261206-120000-tiny_local"
NODES = ("node0", "node1")
LOCAL_WORKERS = 2
WAIT = 60.0
"""Seconds any one wait may take before the test fails (generous: only a broken follow needs it)."""


# --- the lines msrun and the ranks write (as in tests/samples/logs/) ----------------------------


def loss_line(step: int, loss: float, stamp: str = "2026-12-06 21:10:05,122") -> str:
    return (f"{stamp} - mindformers[train.py:86] - INFO - {{ Epoch:[  1/  1], step:[{step:5d}/  200], "
            f"loss: {loss:.6f}, per_step_time: 341ms, lr: 0.00015, overflow cond: False, loss_scale: 1.0, "
            "global_norm: [0.902115], train_throughput_per_npu: 0.015T")


def ms_line(pid: int, text: str, *, level: str = "WARNING",
            stamp: str = "2026-12-06-21:07:08.146.269") -> str:
    """A MindSpore C++ logger line: it carries the process id of the rank that wrote it."""
    return (f"[{level}] DISTRIBUTED({pid},7f1d12dfab80,python):{stamp} "
            f"[mindspore/ccsrc/cluster/rpc/tcp/tcp_comm.cc:485] Connect] {text}")


def started_line(rank: int) -> str:
    return (f"Start worker process with rank id:{rank}, log file:logs/worker_{rank}.log. Environment "
            f"variable [RANK_ID={rank}] is exported. Execute command: python train.py")


def msrun_line(level: str, where: int, text: str) -> str:
    return (f"[{level}] ME(3802:140198017321856,MainProcess):2026-12-06-21:07:15.174.000 "
            f"[mindspore/parallel/cluster/process_entity/_api.py:{where}] {text}")


def worker_exit_line(pid: int, code: int) -> str:
    return msrun_line("ERROR", 365, f"Worker process {pid} exit with exception. Error code: {code}.")


def killed_others_line() -> str:
    return msrun_line("WARNING", 370, "There's worker exits with exception, kill all other workers.")


def traceback_lines(message: str) -> list[str]:
    return ["Traceback (most recent call last):", '  File "/w/train.py", line 12, in <module>',
            "    main()", f"RuntimeError: {message}"]


def losses(first: int, last: int, *, base: float = 10.0) -> list[str]:
    return [loss_line(step, base - step / 1000) for step in range(first, last + 1)]


# --- a job by hand ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HandJob:
    record: JobRecord
    dirs: dict[str, Path]
    """node -> its job directory."""

    def node_of(self, rank: int) -> str:
        return NODES[rank // LOCAL_WORKERS]

    def log(self, rank: int) -> Path:
        return self.dirs[self.node_of(rank)] / "logs" / f"worker_{rank}.log"

    def console(self, node: str) -> Path:
        return self.dirs[node] / "console.log"

    def exited(self, node: str, code: int) -> None:
        """As launch.py's wrapper does: written whole, then renamed into place."""
        part = self.dirs[node] / "exit_code.part"
        part.write_text(f"{code}\n")
        part.rename(self.dirs[node] / "exit_code")


def hand_job(tmp_path: Path) -> HandJob:
    dirs = {node: tmp_path / node / "jobs" / JOB_ID for node in NODES}
    for path in dirs.values():
        (path / "logs").mkdir(parents=True)
    plan = {"job_id": JOB_ID, "name": "tiny_local", "workers": LOCAL_WORKERS * len(NODES),
            "nodes": [{"node": node, "node_rank": index, "job_dir": str(dirs[node]),
                       "local_workers": LOCAL_WORKERS} for index, node in enumerate(NODES)]}
    record = JobRecord(JOB_ID, "tiny_local", "hand", str(tmp_path / "cluster.yaml"), TEMPLATE.read_text(),
                       plan=plan, state="running", created_at=1.0)
    return HandJob(record, dirs)


def node_pool(tmp_path: Path, pythons: dict[str, str] | None = None) -> NodePool:
    """Two local nodes, each with its own workdir; `pythons`: the interpreter a node runs agents with."""
    chosen = pythons or {}
    nodes = "".join(f"  - name: {node}\n    transport: local\n    workdir: {tmp_path / node}\n"
                    f"    cluster_ip: 127.0.0.1\n    python: {chosen.get(node, sys.executable)}\n"
                    for node in NODES)
    return NodePool(load_cluster_text(f"name: hand\nnodes:\n{nodes}", "cluster.yaml"))


def write(path: Path, lines: Sequence[str]) -> None:
    with path.open("a") as file:
        file.write("".join(line + "\n" for line in lines))


def open_store(tmp_path: Path, job: HandJob) -> Store:
    """The console's database, with the job as `launch` recorded it."""
    store = Store(tmp_path / "console.db")
    store.create_job(job.record)
    return store


class Batches:
    """A JobFollow sink that keeps everything (called on the followers' threads)."""

    def __init__(self) -> None:
        self._batches: list[JobLogBatch] = []
        self._lock = threading.Lock()

    def __call__(self, batch: JobLogBatch) -> None:
        with self._lock:
            self._batches.append(batch)

    def events(self, kind: str | None = None) -> list[JobEvent]:
        with self._lock:
            return [e for b in self._batches for e in b.events if kind is None or e.event.kind == kind]

    def lines(self, path: Path) -> list[JobLine]:
        with self._lock:
            return [line for b in self._batches for line in b.lines if line.file.path == str(path)]

    def notices(self, path: Path) -> list[FollowNotice]:
        with self._lock:
            return [n for b in self._batches for n in b.notices if n.path == str(path)]

    def steps(self, rank: int) -> list[int]:
        return [e.event.loss.step for e in self.events("loss") if e.rank == rank and e.event.loss]


@contextmanager
def following(job: HandJob, pool: NodePool, sink: Callable[[JobLogBatch], None], *,
              store: Store | None = None, ranks: Sequence[int] | None = None,
              from_start: bool = True) -> Iterator[JobFollow]:
    follow = JobFollow(job.record, pool, sink, store=store, ranks=ranks, from_start=from_start)
    follow.start()
    try:
        yield follow
    finally:
        follow.stop()


def recorded_steps(store: Store, rank: int) -> list[int]:
    return sorted(m.step for m in store.metrics(JOB_ID) if m.rank == rank)


def metrics_of(store: Store, rank: int) -> list[MetricRecord]:
    return [m for m in store.metrics(JOB_ID) if m.rank == rank]


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
