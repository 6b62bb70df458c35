"""`ascend-console check` against pdsh running the same probe script on the same test hosts.

Cold: a fresh `ascend-console check --json` process against `pdsh -R ssh` (new SSH connections).
Warm: a refresh over open connections — the dashboard's pooled paramiko connections against pdsh
over OpenSSH ControlMaster. Then the warm refresh alone at larger scales.

Run as root on Linux:  .venv/bin/python -m bench.check [--hosts 16] [--scale 64 128] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys

from bench.common import CONSOLE, Bench, bench_cluster, cpu_seconds, figure_lines, ratio_lines, timed
from remote.checker import ClusterChecker
from remote.health import Status
from remote.inventory import load_cluster
from remote.pool import NodePool
from remote.probe import probe_argv


def probe_line(bench: Bench, *, full: bool) -> str:
    """The probe exactly as ascend-console sends it, as one shell line for pdsh: full for a first
    check, quick for a refresh."""
    node = load_cluster(bench.cluster_file).nodes[0]
    return shlex.join(probe_argv(node, "@@ascend-bench", full=full))


def console_cold(bench: Bench) -> None:
    done = subprocess.run([*CONSOLE, "check", "-c", str(bench.cluster_file), "--json"],
                          capture_output=True, text=True)
    nodes = json.loads(done.stdout)["nodes"]
    if any(n["status"] in ("UNREACHABLE", "UNKNOWN") for n in nodes):
        raise SystemExit(f"check failed: {[n['reasons'] for n in nodes]}")


def warm_refresh(checker: ClusterChecker) -> None:
    reports = checker.refresh()
    if any(r.status in (Status.UNREACHABLE, Status.UNKNOWN) for r in reports):
        raise SystemExit(f"refresh failed: {[r.reasons for r in reports]}")


def measure_side_by_side(bench: Bench, repeat: int) -> dict[str, float]:
    hosts = len(bench.addresses)
    figures = {
        "ascend-console check, cold": timed(lambda: console_cold(bench), repeat),
        "pdsh full probe, cold": timed(bench.pdsh(probe_line(bench, full=True), warm=False, min_lines=hosts),
                                       repeat),
    }
    warm_pdsh = bench.pdsh(probe_line(bench, full=False), warm=True, min_lines=hosts)
    warm_pdsh()
    figures["pdsh quick probe, warm"] = timed(warm_pdsh, repeat)
    figures["ascend-console refresh, warm"] = measure_warm(bench, repeat)
    # the test hosts share this machine's two cores, so wall time above is mostly the probe's own
    # work on the "nodes"; CPU spent by the console side alone is what grows with a real fleet
    figures["pdsh quick probe, warm: client CPU"] = cpu_seconds(warm_pdsh, repeat, children=True)
    figures["ascend-console refresh, warm: client CPU"] = measure_warm(bench, repeat, cpu=True)
    return figures


def measure_warm(bench: Bench, repeat: int, *, cpu: bool = False) -> float:
    with NodePool(load_cluster(bench.cluster_file)) as pool:
        checker = ClusterChecker(pool, pool.cluster.nodes)
        warm_refresh(checker)  # opens the pooled connections and reads the static facts
        refresh = lambda: warm_refresh(checker)  # noqa: E731
        seconds = cpu_seconds(refresh, repeat, children=False) if cpu else timed(refresh, repeat)
        if pool.connections_opened() != len(bench.addresses):
            raise SystemExit(f"warm refreshes reconnected: {pool.connections_opened()} connections")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--scale", type=int, nargs="*", default=[64, 128])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with bench_cluster(args.hosts, suffix="c", index=1) as bench:
        figures = measure_side_by_side(bench, args.repeat)
    lines = [
        f"`check` on {args.hosts} hosts (real sshd, 8 stand-in NPUs each), median of {args.repeat} runs",
        *figure_lines(figures),
        *ratio_lines(figures, [
            ("cold", "ascend-console check, cold", "pdsh full probe, cold"),
            ("warm", "ascend-console refresh, warm", "pdsh quick probe, warm"),
            ("cpu", "ascend-console refresh, warm: client CPU", "pdsh quick probe, warm: client CPU"),
        ]),
    ]
    for hosts in args.scale:
        with bench_cluster(hosts, suffix="c", index=1) as bench:
            lines.append(f"warm refresh at {hosts} hosts: {measure_warm(bench, args.repeat) * 1000:.0f} ms")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
