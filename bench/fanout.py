"""`ascend-console run -- hostname` against `pdsh -R ssh` on the same test hosts, cold and warm.

Cold: a fresh process that opens every connection (what a person typing the command gets).
Warm: connections already open — ascend-console's pooled connections (what the dashboard and the
job service use between refreshes) against pdsh over OpenSSH ControlMaster multiplexing.

Run as root on Linux:  .venv/bin/python -m bench.fanout [--hosts 16] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from remote.fanout import run_on
from remote.inventory import load_cluster
from remote.pool import NodePool
from tests.testcluster import TestCluster, capability_problem

CONSOLE = [sys.executable, "-m", "console.cli"]


def timed(action: Callable[[], None], repeat: int) -> float:
    """Median wall time of `repeat` runs, in seconds."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def check(done: subprocess.CompletedProcess[str], hosts: int, what: str) -> None:
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or len(lines) != hosts:
        raise SystemExit(f"{what} failed (exit {done.returncode}, {len(lines)} lines):\n"
                         f"{done.stdout}\n{done.stderr}")


def console_cold(cluster_file: Path, hosts: int) -> Callable[[], None]:
    def action() -> None:
        check(subprocess.run([*CONSOLE, "run", "-c", str(cluster_file), "--", "hostname"],
                             capture_output=True, text=True), hosts, "ascend-console run")
    return action


def pdsh(addresses: list[str], ssh_args: str) -> Callable[[], None]:
    env = {**os.environ, "PDSH_SSH_ARGS": ssh_args, "PDSH_RCMD_TYPE": "ssh"}

    def action() -> None:
        check(subprocess.run(["pdsh", "-R", "ssh", "-f", "64", "-w", ",".join(addresses), "hostname"],
                             capture_output=True, text=True, env=env), len(addresses), "pdsh")
    return action


def measure(test_cluster: TestCluster, work: Path, repeat: int) -> dict[str, float]:
    known_hosts = test_cluster.write_known_hosts(work / "known_hosts")
    ssh_config = test_cluster.write_ssh_config(work / "ssh_config", known_hosts)
    cluster_file = test_cluster.cluster_yaml(work / "cluster.yaml", known_hosts=known_hosts)
    addresses = [h.address for h in test_cluster.hosts]
    hosts = len(addresses)
    control = f"-o ControlMaster=auto -o ControlPath={work}/cm-%C -o ControlPersist=120"
    figures = {
        "ascend-console cold": timed(console_cold(cluster_file, hosts), repeat),
        "pdsh cold": timed(pdsh(addresses, f"-F {ssh_config} -l%u %h"), repeat),
    }
    warm_pdsh = pdsh(addresses, f"-F {ssh_config} {control} -l%u %h")
    warm_pdsh()  # opens the control masters
    figures["pdsh warm"] = timed(warm_pdsh, repeat)
    cluster = load_cluster(cluster_file)
    with NodePool(cluster) as pool:
        figures["ascend-console in-process first"] = timed(
            lambda: _fan_out_once(cluster_file, hosts), 1)
        _fan_out(pool, cluster.nodes, hosts)  # opens the pooled connections
        figures["ascend-console warm"] = timed(lambda: _fan_out(pool, cluster.nodes, hosts), repeat)
        if pool.connections_opened() != hosts:
            raise SystemExit(f"warm runs reconnected: {pool.connections_opened()} connections")
    subprocess.run(["pkill", "-f", f"ControlPath={work}/cm-"], check=False)
    return figures


def _fan_out(pool: NodePool, nodes: tuple, hosts: int) -> None:  # type: ignore[type-arg]
    outcome = run_on(pool, nodes, ["hostname"])
    if len(outcome.ok) != hosts:
        raise SystemExit(f"fan-out failed: {[r.describe() for r in outcome.results if not r.ok]}")


def _fan_out_once(cluster_file: Path, hosts: int) -> None:
    cluster = load_cluster(cluster_file)
    with NodePool(cluster) as pool:
        _fan_out(pool, cluster.nodes, hosts)


def report(figures: dict[str, float], hosts: int, repeat: int) -> str:
    cold = figures["ascend-console cold"] / figures["pdsh cold"]
    warm = figures["ascend-console warm"] / figures["pdsh warm"]
    rows = [f"{name:<34} {seconds * 1000:9.1f} ms" for name, seconds in figures.items()]
    return "\n".join([
        f"`run -- hostname` on {hosts} hosts (real sshd each), median of {repeat} runs",
        *rows,
        f"ratio cold  ascend-console / pdsh: {cold:.2f}x",
        f"ratio warm  ascend-console / pdsh: {warm:.2f}x",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    problem = capability_problem()
    if problem is not None or shutil.which("pdsh") is None:
        print(f"cannot run: {problem or 'pdsh is not installed (apt-get install pdsh)'}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    try:
        with TestCluster(work / "cluster", hosts=args.hosts, prefix="acbench",
                         subnet_base="10.203") as test_cluster:
            figures = measure(test_cluster, work, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(report(figures, args.hosts, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
