"""What the fault tests share: cluster files quick to notice a dead link, faults that always heal,
and what is left of a job on a host, read in the host's own namespaces (not over SSH)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from console.jobs.plan import process_marker
from console.records import JobRecord, LaunchRecord
from console.store import Store
from remote import launch
from tests.cluster_jobs import cluster_file, marked_processes
from tests.rank_jobs import REPO
from tests.testcluster import TestCluster

T = TypeVar("T")

CONNECT_TIMEOUT = 2
QUICK: dict[str, object] = {"connect_timeout": CONNECT_TIMEOUT, "keepalive": 1}
"""A dead link noticed in seconds: keepalives every second, connects given up after 2 s."""


def quick_cluster_file(test_cluster: TestCluster, tmp_path: Path, known_hosts: Path,
                       names: list[str]) -> Path:
    """A cluster file for jobs on `names` (this interpreter, CPU, one device each), quick to notice a cut."""
    return cluster_file(test_cluster, tmp_path, known_hosts, names, **QUICK)


@contextmanager
def link_cut(test_cluster: TestCluster, host: str) -> Iterator[None]:
    """The host's link down for the block; up again however the block ends."""
    test_cluster.cut(host)
    try:
        yield
    finally:
        test_cluster.heal(host)


@contextmanager
def sshd_down(test_cluster: TestCluster, host: str) -> Iterator[None]:
    """The host's sshd killed (its sessions with it) for the block; restarted however the block ends."""
    test_cluster.kill_sshd(host)
    try:
        yield
    finally:
        test_cluster.start_sshd(host)


def left_running(test_cluster: TestCluster, job_id: str, hosts: list[str]) -> dict[str, list[str]]:
    """The job's processes still alive on each host (by the marker in their environment)."""
    return {host: found for host in hosts if (found := marked_processes(test_cluster, host, job_id))}


def end_job(test_cluster: TestCluster, job_id: str, hosts: list[str]) -> None:
    """Kill whatever a test left of the job, until nothing is left (a rank's loop may fork meanwhile)."""
    deadline = time.monotonic() + 15
    while (left := left_running(test_cluster, job_id, hosts)) and time.monotonic() < deadline:
        for host, procs in left.items():
            test_cluster.exec(host, ["kill", "-KILL", *(proc.rsplit("/", 1)[-1] for proc in procs)])
        time.sleep(0.1)


def within(seconds: float, action: Callable[[], T]) -> tuple[T, float]:
    """`action()` and how long it took; fails when it took longer than `seconds`."""
    started = time.monotonic()
    outcome = action()
    elapsed = time.monotonic() - started
    assert elapsed <= seconds, f"took {elapsed:.1f} s, more than {seconds:g} s"
    return outcome, elapsed


# --- hand runs: shell "ranks" started as the launcher starts a run --------------------------------

JOBS = f"{TestCluster.node_storage_path}/jobs"

LOSS_FORMAT = ("%s - mindformers[train.py:86] - INFO - { Epoch:[  1/  1], step:[%5d/%5d], loss: %s, "
               "per_step_time: 250ms, lr: 0.0001, overflow cond: False, loss_scale: 1.0, global_norm: [0.9], "
               "train_throughput_per_npu: 0.015T\\n")
RANK = r"""
rank=$1 steps=$2 every=$3 format=$4 step=0
[ "$5" = stubborn ] && trap '' TERM
while [ "$step" -lt "$steps" ]; do
    step=$((step + 1))
    printf "$format" "$(date '+%Y-%m-%d %H:%M:%S,000')" "$step" "$steps" "$(( 10 - step % 5 )).5" \
        >> "logs/worker_$rank.log"
    sleep "$every"
done
"""
"""A hand rank: `steps` loss lines in MindFormers' format, one every `every` seconds, then exit 0; a
stubborn one ignores SIGTERM (a stop must wait its grace out and SIGKILL it)."""


@dataclass(frozen=True)
class HandRun:
    """A run on one host: its job directory, its wrapper's pid, the ranks it holds."""

    host: str
    job_dir: str
    pid: int
    ranks: tuple[int, ...]


def start_hand_run(test_cluster: TestCluster, host: str, job_id: str, ranks: tuple[int, ...], *,
                   steps: int, every: float, stubborn: bool = False) -> HandRun:
    """Write the run's files and start it with the launcher's own start script (wrapper, pid, marker)."""
    marker = process_marker(job_id, host)
    job_dir = f"{JOBS}/{job_id}"
    how = "stubborn" if stubborn else "plain"
    loops = "".join(f"sh ./rank.sh {rank} {steps} {every} {shlex.quote(LOSS_FORMAT)} {how} &\n"
                    for rank in ranks)
    script = f"export ASCEND_CONSOLE_JOB={shlex.quote(marker)}\n{loops}wait\n"
    _must(test_cluster, host, 'mkdir -p "$1/logs" && printf "%s" "$2" > "$1/launch.sh" && '
                              'printf "%s" "$3" > "$1/rank.sh"', job_dir, script, RANK)
    pid = _must(test_cluster, host, launch.START_SCRIPT, job_dir, marker).strip()
    return HandRun(host, job_dir, int(pid), ranks)


def record_hand_job(state: Path, cluster_file: Path, job_id: str, runs: list[HandRun]) -> None:
    """The job as the launcher records it once every node has started: running, one launch per node,
    and a plan naming each node's job directory and ranks (what the log readers follow)."""
    plan = {"job_id": job_id, "name": "hand", "workers": sum(len(r.ranks) for r in runs),
            "nodes": [{"node": r.host, "node_rank": index, "job_dir": r.job_dir,
                       "local_workers": len(r.ranks), "ranks": list(r.ranks)}
                      for index, r in enumerate(runs)]}
    with Store(state / "console.db") as store:
        store.create_job(
            JobRecord(job_id, "hand", "hand", str(cluster_file), "config", plan=plan, state="running",
                      created_at=1.0, updated_at=1.0),
            [LaunchRecord(job_id, r.host, index, r.job_dir, pid=r.pid, state="running", updated_at=1.0)
             for index, r in enumerate(runs)])


def remove_job_dirs(test_cluster: TestCluster, job_id: str, hosts: list[str]) -> None:
    for host in hosts:
        test_cluster.exec(host, ["rm", "-rf", f"{JOBS}/{job_id}"])


def _must(test_cluster: TestCluster, host: str, script: str, *args: str) -> str:
    done = test_cluster.exec(host, ["sh", "-c", script, "sh", *args])
    assert done.returncode == 0, f"{host}: {done.stderr}"
    return done.stdout


class FollowRun:
    """`logs JOB --follow --json` as its own process, its store `state`; its events are read as they come."""

    def __init__(self, cluster_file: Path, state: Path, job_id: str) -> None:
        env = {**os.environ, "ASCEND_CONSOLE_STATE": str(state)}
        self._stderr = (state / f"follow-{time.monotonic_ns()}.err").open("w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "console.cli", "-c", str(cluster_file), "logs", job_id, "--follow",
             "--json"], cwd=REPO, text=True, env=env, stdout=subprocess.PIPE, stderr=self._stderr,
            stdin=subprocess.DEVNULL)
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.append(json.loads(line))

    def wait_for_losses(self, count: int, within_s: float = 60) -> None:
        deadline = time.monotonic() + within_s
        while sum(e["kind"] == "loss" for e in list(self.events)) < count:
            assert self.process.poll() is None, f"the follow ended early: {self.stderr()}"
            assert time.monotonic() < deadline, f"fewer than {count} loss events in {within_s:g} s"
            time.sleep(0.1)

    def finish(self, within_s: float) -> int:
        """Its exit code, once it has ended by itself (within `within_s`) and every event is read."""
        try:
            code = self.process.wait(timeout=within_s)
        finally:
            self.process.kill()
            self._reader.join(10)
        return code

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-3000:]

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        self._stderr.close()


def follow_notices(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(node, kind) of the follow's link events, waiting and appearing files left out: a dropped link and
    its recovery are exactly one disconnected/reconnected pair."""
    return [(e["node"], e["kind"]) for e in events if e["kind"].startswith("follow-")
            and e["kind"] not in ("follow-waiting", "follow-appeared")]


def loss_steps(events: list[dict[str, Any]]) -> dict[int, list[int]]:
    steps: dict[int, list[int]] = {}
    for event in events:
        if event["kind"] == "loss":
            steps.setdefault(event["rank"], []).append(event["step"])
    return steps


def recorded_steps(state: Path, job_id: str) -> Counter[tuple[int, int]]:
    with Store(state / "console.db") as store:
        return Counter((m.rank, m.step) for m in store.metrics(job_id))


def host_processes(test_cluster: TestCluster, hosts: list[str]) -> dict[str, list[tuple[int, str, str]]]:
    """(pid, name, command line) of every process in each host's network namespace: the hosts share this
    machine's process table, and a host's own processes are those in its namespace."""
    namespaces = {os.stat(f"/run/netns/{test_cluster.host(h).netns}").st_ino: h for h in hosts}
    found: dict[str, list[tuple[int, str, str]]] = {}
    for entry in Path("/proc").iterdir():
        try:
            host = namespaces.get(os.stat(entry / "ns" / "net").st_ino)
            if host is None:
                continue
            name = (entry / "comm").read_text().strip()
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):  # gone meanwhile, or not a process
            continue
        found.setdefault(host, []).append((int(entry.name), name, argv))
    return found


def agents_left(test_cluster: TestCluster, hosts: list[str], job_id: str, *,
                within_s: float) -> dict[str, list[int]]:
    """Follow agents (processes whose command line names the job) still on the hosts after `within_s`
    seconds of waiting for them to go."""
    deadline = time.monotonic() + within_s
    while True:
        left = {host: [pid for pid, name, argv in procs if name.startswith("python") and job_id in argv]
                for host, procs in host_processes(test_cluster, hosts).items()}
        left = {host: pids for host, pids in left.items() if pids}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)
