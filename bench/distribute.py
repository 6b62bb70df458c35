"""`distribute` (relay chain) against `rsync` from the console host to each host in turn.

A generated weight set (shards like safetensors files) goes to N test hosts whose links are all
rate-limited with `tc` (each host's veth both ways, and the console host's bridge), so that the
network, not this machine's cores, is the bottleneck, as on a real cluster. Reported: wall time,
and the bytes that left the console host (the bridge's transmit counter, i.e. the wire).

Run as root on Linux:  .venv/bin/python -m bench.distribute [--size-gib 2] [--hosts 4] [--mbit 400]
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import Bench, bench_cluster
from remote.inventory import load_cluster
from remote.pool import NodePool
from remote.transfer import DistributionResult, distribute

GIB = 1024 ** 3
CHUNK = 16 * 1024 * 1024


def limit_links(bench: Bench, mbit: int) -> None:
    """A token bucket on every link out of every host and out of the console host."""
    network = bench.cluster.network
    shape = ["root", "tbf", "rate", f"{mbit}mbit", "burst", "1mb", "latency", "100ms"]
    commands = [["tc", "qdisc", "replace", "dev", network.bridge, *shape]]
    for host in bench.cluster.hosts:
        for leg in network.legs[host.name]:
            commands.append(["tc", "qdisc", "replace", "dev", leg.link, *shape])
            commands.append(["ip", "netns", "exec", host.netns, "tc", "qdisc", "replace", "dev", leg.device,
                             *shape])
    for argv in commands:
        subprocess.run(argv, check=True, capture_output=True, timeout=30)


def make_weights(root: Path, size: int, shards: int) -> None:
    """`shards` files of random bytes summing to `size`, plus a config, like a safetensors checkpoint."""
    root.mkdir(parents=True)
    (root / "config.json").write_text('{"model_type": "deepseek_v3"}\n')
    per_shard = size // shards
    for index in range(shards):
        with (root / f"model-{index + 1:05d}-of-{shards:05d}.safetensors").open("wb") as shard:
            left = per_shard
            while left:
                shard.write(os.urandom(min(CHUNK, left)))
                left -= min(CHUNK, left)


def bridge_tx(bench: Bench) -> int:
    return int(Path(f"/sys/class/net/{bench.cluster.network.bridge}/statistics/tx_bytes").read_text())


def measured(action: Callable[[], None], bench: Bench) -> tuple[float, int]:
    """Wall seconds and bytes the console host put on the wire."""
    before, started = bridge_tx(bench), time.perf_counter()
    action()
    return time.perf_counter() - started, bridge_tx(bench) - before


def rsync_each(bench: Bench, weights: Path, dest: str) -> list[float]:
    """The reference: `rsync -a` from the console host to one host after the other."""
    seconds = []
    for address in bench.addresses:
        argv = ["rsync", "-a", "-e", shlex.join(["ssh", "-F", str(bench.ssh_config)]), f"{weights}/",
                f"{address}:{dest}/"]
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, timeout=3600)
        seconds.append(time.perf_counter() - started)
    return seconds


def run_distribute(bench: Bench, weights: Path, dest: str) -> DistributionResult:
    cluster = load_cluster(bench.cluster_file)
    with NodePool(cluster) as pool:
        result = distribute(pool, cluster.nodes, weights, dest)
    if not result.ok:
        raise SystemExit(f"distribute failed: {[(n.node, n.error) for n in result.failed]}")
    return result


def clear(bench: Bench, dest: str) -> None:
    for host in bench.cluster.hosts:
        subprocess.run(["rm", "-rf", "--", str(host.storage / Path(dest).name)], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--shards", type=int, default=32)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--mbit", type=int, default=400)
    args = parser.parse_args()
    size = int(args.size_gib * GIB)
    with bench_cluster(args.hosts, suffix="d", index=3) as bench:
        bench.cluster.trust_each_other()
        limit_links(bench, args.mbit)
        weights = bench.work / "weights"
        make_weights(weights, size, args.shards)
        singles: list[float] = []
        rsync_wall, rsync_bytes = measured(
            lambda: singles.extend(rsync_each(bench, weights, "/srv/actest/rs")), bench)
        clear(bench, "/srv/actest/rs")
        outcome: list[DistributionResult] = []
        ours_wall, ours_bytes = measured(
            lambda: outcome.append(run_distribute(bench, weights, "/srv/actest/d")), bench)
    result, total = outcome[0], result_size(outcome[0])
    single_rate = total / singles[0]
    node_rates = [total / n.elapsed for n in result.nodes]
    lines = [
        f"{total / GIB:.2f} GiB in {len(result.manifest)} files to {args.hosts} hosts, "
        f"every link {args.mbit} Mbit/s",
        f"rsync to each host in turn   wall {rsync_wall:7.1f} s   console sent {rsync_bytes / GIB:5.2f} GiB"
        f"   ({', '.join(f'{s:.1f}' for s in singles)} s per host)",
        f"ascend-console distribute    wall {ours_wall:7.1f} s   console sent {ours_bytes / GIB:5.2f} GiB"
        f"   chain {' -> '.join(['console', *(h.node for h in result.hops)])}",
        f"ratio wall  distribute / sequential rsync: {ours_wall / rsync_wall:.2f}x (goal <= 0.35x)",
        f"ratio bytes from the console / weight set: {ours_bytes / total:.2f}x (goal ~1x; rsync: "
        f"{rsync_bytes / total:.2f}x)",
        f"single rsync stream {single_rate * 8 / 1e6:.0f} Mbit/s; distribute per node, whole run: "
        f"{', '.join(f'{r * 8 / 1e6:.0f}' for r in node_rates)} Mbit/s "
        f"(slowest {min(node_rates) / single_rate:.2f}x of the single stream; goal >= 0.90x)",
    ]
    print("\n".join(lines))
    return 0


def result_size(result: DistributionResult) -> int:
    return result.manifest.total_bytes


if __name__ == "__main__":
    sys.exit(main())
