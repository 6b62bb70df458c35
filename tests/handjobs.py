"""Jobs built by hand for tests: job directories on two local "nodes" (each its own workdir), the lines
msrun and the ranks write (as in tests/samples/logs/), and a sink that keeps what a JobFollow delivers.

The job: 4 ranks, node0 holds ranks 0-1, node1 ranks 2-3; followed by default: ranks 0 and 3.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from console.jobs.follow import JobFollow
from console.jobs.joblog import JobEvent, JobLine, JobLogBatch
from console.records import JobRecord, MetricRecord
from console.store import Store
from remote.follow import FollowNotice
from remote.inventory import load_cluster_text
from remote.pool import NodePool

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

    def batches(self) -> list[JobLogBatch]:
        with self._lock:
            return list(self._batches)

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


def marked(job_id: str, node: str) -> list[int]:
    """Processes of this machine carrying the job's marker for `node`."""
    wanted = f"ASCEND_CONSOLE_JOB={job_id}@{node}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if wanted in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found
