"""`ascend-console run -- hostname` against `pdsh -R ssh` on the same test hosts, cold and warm.

Cold: a fresh process that opens every connection (what a person typing the command gets).
Warm: connections already open — ascend-console's pooled connections (what the dashboard and the
job service use between refreshes) against pdsh over OpenSSH ControlMaster multiplexing.

Run as root on Linux:  .venv/bin/python -m bench.fanout [--hosts 16] [--repeat 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence

from bench.common import CONSOLE, Bench, bench_cluster, expect_lines, figure_lines, ratio_lines, timed
from remote.fanout import run_on
from remote.inventory import NodeSpec, load_cluster
from remote.pool import NodePool


def measure(bench: Bench, repeat: int) -> dict[str, float]:
    hosts = len(bench.addresses)

    def console_cold() -> None:
        done = subprocess.run([*CONSOLE, "run", "-c", str(bench.cluster_file), "--", "hostname"],
                              capture_output=True, text=True)
        expect_lines(done, hosts, "ascend-console run")

    figures = {
        "ascend-console cold": timed(console_cold, repeat),
        "pdsh cold": timed(bench.pdsh("hostname", warm=False, min_lines=hosts), repeat),
    }
    warm_pdsh = bench.pdsh("hostname", warm=True, min_lines=hosts)
    warm_pdsh()  # opens the control masters
    figures["pdsh warm"] = timed(warm_pdsh, repeat)
    cluster = load_cluster(bench.cluster_file)
    with NodePool(cluster) as pool:
        everywhere = lambda: hostname_everywhere(pool, cluster.nodes)  # noqa: E731
        figures["ascend-console in-process first"] = timed(everywhere, 1)
        figures["ascend-console warm"] = timed(everywhere, repeat)
        if pool.connections_opened() != hosts:
            raise SystemExit(f"warm runs reconnected: {pool.connections_opened()} connections")
    return figures


def hostname_everywhere(pool: NodePool, nodes: Sequence[NodeSpec]) -> None:
    outcome = run_on(pool, nodes, ["hostname"])
    if not outcome.all_ok:
        raise SystemExit(f"fan-out failed: {[r.describe() for r in outcome.results if not r.ok]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with bench_cluster(args.hosts, suffix="f", index=2) as bench:
        figures = measure(bench, args.repeat)
    print("\n".join([
        f"`run -- hostname` on {args.hosts} hosts (real sshd each), median of {args.repeat} runs",
        *figure_lines(figures),
        *ratio_lines(figures, [("cold", "ascend-console cold", "pdsh cold"),
                               ("warm", "ascend-console warm", "pdsh warm")]),
    ]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
