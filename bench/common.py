"""What the benchmarks share: timing, pdsh as the reference, and a throw-away test cluster."""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.testcluster import ClusterPlace, TestCluster, capability_problem

CONSOLE = [sys.executable, "-m", "console.cli"]
# The benchmarks' own place, apart from the tests' (ASCEND_TEST_PREFIX / ASCEND_TEST_SUBNET,
# actest / 10.201 by default), so that a benchmark beside a test run collides with nothing; each
# benchmark derives its cluster's place from it, so two benchmarks at once do not collide either.
BENCH_PLACE = ClusterPlace(os.environ.get("ASCEND_BENCH_PREFIX", "acbench"),
                           os.environ.get("ASCEND_BENCH_SUBNET", "10.230"))


def timed(action: Callable[[], None], repeat: int) -> float:
    """Median wall time of `repeat` runs, in seconds."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def cpu_seconds(action: Callable[[], None], repeat: int, *, children: bool) -> float:
    """Median CPU time (user + system) this process, or its child processes, spent per run:
    what the orchestrating side costs, apart from the work on the nodes."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    samples = []
    for _ in range(repeat):
        before = resource.getrusage(who)
        action()
        after = resource.getrusage(who)
        samples.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(samples)


def expect_lines(done: subprocess.CompletedProcess[str], lines: int, what: str) -> None:
    found = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode not in (0, 1) or len(found) < lines:
        raise SystemExit(f"{what} failed (exit {done.returncode}, {len(found)} lines):\n"
                         f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


@dataclass(frozen=True)
class Bench:
    """A running test cluster and the files both tools use to reach it."""

    cluster: TestCluster
    work: Path
    known_hosts: Path
    ssh_config: Path
    cluster_file: Path

    @property
    def addresses(self) -> list[str]:
        return [h.address for h in self.cluster.hosts]

    def pdsh(self, command: str, *, warm: bool, min_lines: int) -> Callable[[], None]:
        """pdsh -R ssh over the same hosts, keys and known_hosts; warm = OpenSSH ControlMaster."""
        control = ("-o ControlMaster=auto -o ControlPersist=300 "
                   f"-o ControlPath={self.work}/cm-%C ") if warm else ""
        env = {**os.environ, "PDSH_SSH_ARGS": f"-F {self.ssh_config} {control}-l%u %h"}
        argv = ["pdsh", "-R", "ssh", "-f", "256", "-w", ",".join(self.addresses), command]

        def action() -> None:
            expect_lines(subprocess.run(argv, capture_output=True, text=True, env=env), min_lines, "pdsh")
        return action

    def stop_control_masters(self) -> None:
        subprocess.run(["pkill", "-f", f"ControlPath={self.work}/cm-"], check=False)


@contextmanager
def bench_cluster(hosts: int, *, suffix: str, index: int) -> Iterator[Bench]:
    """A cluster of `hosts` at BENCH_PLACE.derived(suffix, index): one (suffix, index) a benchmark."""
    place = BENCH_PLACE.derived(suffix, index)
    problem = capability_problem()
    if problem is not None or shutil.which("pdsh") is None:
        raise SystemExit(f"cannot run: {problem or 'pdsh is not installed (apt-get install pdsh)'}")
    work = Path(tempfile.mkdtemp(prefix=f"{place.prefix}-"))
    try:
        with TestCluster(work / "cluster", hosts=hosts, place=place) as cluster:
            known_hosts = cluster.write_known_hosts(work / "known_hosts")
            ssh_config = cluster.write_ssh_config(work / "ssh_config", known_hosts)
            cluster_file = cluster.cluster_yaml(work / "cluster.yaml", known_hosts=known_hosts)
            bench = Bench(cluster, work, known_hosts, ssh_config, cluster_file)
            try:
                yield bench
            finally:
                bench.stop_control_masters()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ratio_lines(figures: dict[str, float], pairs: list[tuple[str, str, str]]) -> list[str]:
    return [f"ratio {label:<5} {ours} / {theirs}: {figures[ours] / figures[theirs]:.2f}x"
            for label, ours, theirs in pairs]


def figure_lines(figures: dict[str, float]) -> list[str]:
    return [f"{name:<40} {seconds * 1000:9.1f} ms" for name, seconds in figures.items()]
