"""Serving the small model: `bench-serve`'s figures next to the ones vLLM's `benchmark_serving` prints.

Starts `python -m model.serve` on a local port (bench/served.py; configs/jobs/tiny_local.yaml's model;
freshly initialised weights unless --checkpoint; the embedded corpus's tokenizer), then for each concurrency
sends --requests completions of --max-tokens tokens each (greedy, the end-of-sentence token ignored,
as benchmark_serving's random dataset runs), at most that many in flight, with bench-serve's own code
(console/serving/bench.py). Prints the result in benchmark_serving's layout, each line its quantity
under vLLM's name. There is no vLLM here: what is compared is what the quantities mean (the same
definitions, see docs/benchmarks.md), not numbers from the same hardware.

Run:  .venv/bin/python -m bench.serve [--concurrency 1,4] [--requests 16] [--max-tokens 32]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from bench.served import REPO, serving
from console.serving.bench import BenchPlan, BenchReport, Spread, run_bench
from model.data.corpus import default_corpus_dir

RULE = "=" * 50


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "jobs" / "tiny_local.yaml")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: fresh weights")
    parser.add_argument("--concurrency", default="1,4", help="comma-separated levels (default 1,4)")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=32)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    arguments = ["--config", str(args.config)]
    if args.checkpoint is not None:
        arguments += ["--checkpoint", str(args.checkpoint)]
    corpus = Path(os.environ.get("ASCEND_CONSOLE_CORPUS") or default_corpus_dir())
    print(f"python -m model.serve {' '.join(arguments)}  ({os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f} at start)")
    with tempfile.TemporaryDirectory() as work, serving(Path(work), arguments, corpus=corpus) as server:
        for level in (int(n) for n in args.concurrency.split(",")):
            plan = BenchPlan(server.url, level, args.requests, args.max_tokens)
            print_result(run_bench(plan))


def print_result(report: BenchReport) -> None:
    """benchmark_serving's result block, for the quantities bench-serve measures, plus its p90."""
    print(f"Maximum request concurrency: {report.concurrency}")
    print(f"{' Serving Benchmark Result ':=^50}")
    rows: list[tuple[str, str]] = [
        ("Successful requests:", f"{report.completed}"),
        ("Failed requests:", f"{sum(report.errors.values())}"),
        ("Benchmark duration (s):", f"{report.duration:.2f}"),
        ("Total generated tokens:", f"{report.output_tokens}"),
        ("Request throughput (req/s):", f"{report.requests_per_second:.2f}"),
        ("Output token throughput (tok/s):", f"{report.output_tokens_per_second:.2f}"),
    ]
    for line in rows:
        print(f"{line[0]:<40}{line[1]:<10}")
    for title, short, values in (("Time to First Token", "TTFT", report.ttft),
                                 ("Time per Output Token (excl. 1st token)", "TPOT", report.tpot),
                                 ("End-to-end Latency", "E2EL", report.latency)):
        print(f"{title:-^50}")
        for name, seconds in spread_rows(values):
            print(f"{f'{name} {short} (ms):':<40}{seconds * 1000:<10.2f}")
    print(RULE)


def spread_rows(values: Spread | None) -> list[tuple[str, float]]:
    if values is None:
        return []
    return [("Mean", values.mean), ("Median", values.p50), ("P90", values.p90), ("P99", values.p99)]


if __name__ == "__main__":
    main()
