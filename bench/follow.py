"""Following logs: throughput against `ssh host tail -F`, and write->event lag with 8 ranks on 4 hosts.

Throughput: a MindFormers-style log of N loss lines already on a test host is read from its start
to its end, in turn, by `ssh host tail -n +1 -F FILE | head -c SIZE > /dev/null` (OpenSSH, over a
warm ControlMaster connection) and by one NodeFollower (over a warm pooled connection): lines
delivered, and lines delivered then parsed into events (model.logevents), as `logs --follow` does.

Lag: 8 ranks (2 files on each of 4 hosts) each append RATE loss lines a second for SECONDS, every
line stamped with the time it was written (the logger's millisecond prefix; the hosts share this
machine's clock). Four followers, one per host, parse every line; a line's lag is the time its
batch has been parsed minus its stamp. The console's CPU is this process's user+system time over
the run (the writers are separate processes).

Run as root on Linux:  .venv/bin/python -m bench.follow [--lines 400000] [--repeat 3] [--seconds 20]
"""

from __future__ import annotations

import argparse
import array
import calendar
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import Bench, bench_cluster
from model.logevents import LogEventParser
from model.logformat import LossRecord, format_loss_line
from remote.follow import FileCursor, FollowBatch, NodeFollower
from remote.inventory import load_cluster
from remote.pool import NodePool
from remote.transport import Transport
from tests.testcluster import TestCluster

LOGGER = " - mindformers[mindformers/core/callback/callback.py:351] - INFO - "
WAIT_LIMIT = 600.0

# Runs in its own process per host: appends RATE stamped lines a second to each file for SECONDS.
WRITER = r"""
import sys, time
rate, seconds, paths = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
body, logger = sys.stdin.read().split("\n")[:2]
files = [open(p, "ab", buffering=0) for p in paths]
start = time.time()
written, total = 0, int(rate * seconds)
stamps = {}
while written < total:
    now = time.time()
    due = min(total, int((now - start) * rate)) - written
    if due > 0:
        second = int(now)
        if second not in stamps:
            stamps[second] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
        prefix = "%s,%03d%s" % (stamps[second], int((now - second) * 1000), logger)
        for f in files:
            f.write("".join(prefix + body % (written + i + 1) + "\n" for i in range(due)).encode())
        written += due
    time.sleep(0.002)
"""


def loss_body() -> str:
    """A MindFormers r1.7+ loss line with `%d` where the step goes."""
    record = LossRecord(step=1, total_steps=100000, loss=2.345678, epoch=1, epochs=1, step_in_epoch=12345,
                        steps_per_epoch=100000, per_step_ms=120, lr=1e-5, global_norm=1.234)
    return format_loss_line(record).replace("12345/", "%5d/", 1)


def write_log(path: Path, lines: int) -> int:
    body = loss_body()
    with path.open("w") as file:
        for start in range(0, lines, 10000):
            file.write("".join(f"2025-01-01 00:00:00,000{LOGGER}{body % (i % 100000)}\n"
                               for i in range(start, min(lines, start + 10000))))
    return path.stat().st_size


# --- throughput ---------------------------------------------------------------------------------


def raw_tail(bench: Bench, address: str, node_path: str, size: int) -> float:
    """Seconds for `ssh tail -n +1 -F` to deliver `size` bytes (head counts them and hangs up)."""
    control = ["-o", "ControlMaster=auto", "-o", "ControlPersist=300",
               "-o", f"ControlPath={bench.work}/cm-%C"]
    ssh = ["ssh", "-F", str(bench.ssh_config), *control, address]
    subprocess.run([*ssh, "true"], check=True, timeout=60)
    started = time.perf_counter()
    tail = subprocess.Popen([*ssh, "tail", "-n", "+1", "-F", node_path], stdout=subprocess.PIPE)
    head = subprocess.run(["head", "-c", str(size)], stdin=tail.stdout, stdout=subprocess.DEVNULL,
                          timeout=WAIT_LIMIT, check=True)
    elapsed = time.perf_counter() - started
    tail.kill()
    tail.wait()
    assert head.returncode == 0
    return elapsed


def paramiko_cat(transport: Transport, node_path: str, size: int) -> float:
    """Seconds for `cat FILE`'s bytes to arrive through the same pooled paramiko connection, read
    and dropped: the ceiling of anything that reads a node's file through paramiko."""
    started, received = time.perf_counter(), 0
    with transport.stream(["cat", node_path]) as stream:
        for chunks in stream.chunks(0.2):
            received += sum(len(data) for channel, data in chunks if channel == "stdout")
    if received != size:
        raise SystemExit(f"cat delivered {received} of {size} bytes: {stream.message}")
    return time.perf_counter() - started


def follow_to_end(transport: Transport, node_path: str, size: int, *,
                  parse: bool) -> tuple[float, float, int]:
    """(seconds, console CPU seconds, events) for one follower to deliver the whole file."""
    parser, events = LogEventParser(), [0]
    done = threading.Event()

    def on_batch(batch: FollowBatch) -> None:
        if parse:
            events[0] += len(parser.feed(line.text for line in batch.lines))
        if batch.cursors[node_path].offset >= size:
            done.set()

    follower = NodeFollower(transport, [FileCursor(node_path)], on_batch)
    cpu, started = _cpu(), time.perf_counter()
    follower.start()
    finished = done.wait(WAIT_LIMIT)
    elapsed, used = time.perf_counter() - started, _cpu() - cpu
    follower.stop()
    follower.join(30)
    if not finished:
        raise SystemExit(f"the follower did not reach the end of {node_path} within {WAIT_LIMIT:g}s")
    return elapsed, used, events[0]


def throughput(bench: Bench, lines: int, repeat: int) -> list[str]:
    host = bench.cluster.hosts[0]
    size = write_log(host.storage / "throughput.log", lines)
    node_path = f"{TestCluster.node_storage_path}/throughput.log"
    raw, cat, ours, parsed, cpu = [], [], [], [], []
    with NodePool(load_cluster(bench.cluster_file)) as pool:
        transport = pool.transport(host.name)
        if not transport.run(["true"]).ok:
            raise SystemExit(f"cannot reach {host.name}")
        for _ in range(repeat):
            raw.append(raw_tail(bench, host.address, node_path, size))
            cat.append(paramiko_cat(transport, node_path, size))
            ours.append(follow_to_end(transport, node_path, size, parse=False)[0])
            seconds, used, events = follow_to_end(transport, node_path, size, parse=True)
            parsed.append(seconds)
            cpu.append(used / seconds)
    if events != lines:
        raise SystemExit(f"the parser found {events} loss events in {lines} loss lines")
    rows = [("ssh tail -n +1 -F | head -c SIZE", statistics.median(raw)),
            ("paramiko cat, bytes only", statistics.median(cat)),
            ("NodeFollower, lines delivered", statistics.median(ours)),
            ("NodeFollower + LogEventParser, events", statistics.median(parsed))]
    out = [f"throughput: {lines} loss lines ({size / 1e6:.1f} MB) on one host, median of {repeat} runs"]
    out += [f"{name:<40} {s:7.2f} s {lines / s:10,.0f} lines/s {size / s / 1e6:7.1f} MB/s"
            for name, s in rows]
    out += [f"ratio lines  tail / follower: {rows[0][1] / rows[2][1]:.2f}x",
            f"ratio lines  paramiko cat / follower: {rows[1][1] / rows[2][1]:.2f}x",
            f"ratio events tail / follower+parser: {rows[0][1] / rows[3][1]:.2f}x",
            f"console CPU while following + parsing: {statistics.median(cpu):.2f} cores"]
    return out


# --- lag ----------------------------------------------------------------------------------------


class LagMeter:
    """on_batch for the lag run: parses every line, then records now minus each line's stamp."""

    def __init__(self) -> None:
        self.lags = array.array("d")
        self.events = 0
        self.lines = 0
        self._parsers: dict[tuple[str, str], LogEventParser] = {}
        self._seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, batch: FollowBatch) -> None:
        events = 0
        for path in {line.path for line in batch.lines}:
            parser = self._parsers.setdefault((batch.node, path), LogEventParser())
            events += len(parser.feed(line.text for line in batch.lines if line.path == path))
        now = time.time()
        lags = [now - self._stamp(line.text) for line in batch.lines]
        with self._lock:
            self.lags.extend(lags)
            self.events += events
            self.lines += len(batch.lines)

    def _stamp(self, text: str) -> float:
        second = self._seconds.get(text[:19])
        if second is None:
            second = self._seconds[text[:19]] = float(
                calendar.timegm(time.strptime(text[:19], "%Y-%m-%d %H:%M:%S")))
        return second + int(text[20:23]) / 1000


def lag(bench: Bench, ranks_per_host: int, rate: float, seconds: float) -> list[str]:
    hosts = bench.cluster.hosts
    cluster = load_cluster(bench.cluster_file)
    meter = LagMeter()
    names = [[f"lag/worker_{h * ranks_per_host + r}.log" for r in range(ranks_per_host)]
             for h in range(len(hosts))]
    for host in hosts:
        (host.storage / "lag").mkdir(exist_ok=True)
    with NodePool(cluster) as pool:
        followers = [
            NodeFollower(pool.transport(host.name),
                         [FileCursor(f"{TestCluster.node_storage_path}/{n}") for n in names[i]], meter)
            for i, host in enumerate(hosts)]
        for follower in followers:
            follower.start()
        time.sleep(2)  # connected and waiting for the files
        cpu, started = _cpu(), time.perf_counter()
        writers = [_start_writer([str(host.storage / n) for n in names[i]], rate, seconds)
                   for i, host in enumerate(hosts)]
        for writer in writers:
            writer.wait(seconds + 60)
        expected = int(rate * seconds) * ranks_per_host * len(hosts)
        _wait(lambda: meter.lines >= expected, 30)
        elapsed, used = time.perf_counter() - started, _cpu() - cpu
        for follower in followers:
            follower.stop()
        for follower in followers:
            follower.join(30)
    ranks = ranks_per_host * len(hosts)
    lags = sorted(meter.lags)
    return [
        f"lag: {ranks} ranks on {len(hosts)} hosts, {rate:g} lines/s each for {seconds:g}s "
        f"({ranks * rate:,.0f} lines/s in all), every line parsed",
        f"lines delivered {meter.lines:,} of {expected:,}, events {meter.events:,}",
        f"lag p50 {_quantile(lags, 0.50) * 1000:6.0f} ms   p99 {_quantile(lags, 0.99) * 1000:6.0f} ms   "
        f"max {lags[-1] * 1000:6.0f} ms",
        f"console CPU {used / elapsed:.2f} cores ({used:.1f} s over {elapsed:.1f} s)",
    ]


def _start_writer(paths: list[str], rate: float, seconds: float) -> subprocess.Popen[bytes]:
    writer = subprocess.Popen([sys.executable, "-c", WRITER, f"{rate:g}", f"{seconds:g}", *paths],
                              stdin=subprocess.PIPE)
    assert writer.stdin is not None
    writer.stdin.write(f"{loss_body()}\n{LOGGER}\n".encode())
    writer.stdin.close()
    return writer


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _wait(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lines", type=int, default=400_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=2000.0)
    args = parser.parse_args()
    with bench_cluster(4, suffix="l", index=4) as bench:
        out = throughput(bench, args.lines, args.repeat)
        out += lag(bench, 2, args.rate, args.seconds)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
