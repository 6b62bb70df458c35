"""`ascend-console bench-serve JOB|--url URL --concurrency N --requests M [--max-tokens K] [--json]`: a
bounded load test of a serve job's server (through a port forward) or of a local OpenAI-compatible endpoint
(console/serving/bench.py says what it measures)."""

from __future__ import annotations

import argparse

from console import exitcodes
from console.arguments import positive_int
from console.commands.endpoint import add_target_arguments, with_target
from console.render import print_error, print_json
from console.serving.bench import (
    DEFAULT_PROMPT,
    MAX_CONCURRENCY,
    MAX_REQUESTS,
    BenchPlan,
    BenchReport,
    Spread,
    local_url_problem,
    run_bench,
)
from console.serving.client import EndpointError
from remote.inventory import Cluster

HELP = "load-test a serve job or a local endpoint: requests/s, tokens/s, TTFT and latency percentiles"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser, url_help="a local endpoint, e.g. http://127.0.0.1:8000")
    parser.add_argument("--concurrency", type=positive_int, required=True, metavar="N",
                        help=f"requests in flight at once (at most {MAX_CONCURRENCY})")
    parser.add_argument("--requests", type=positive_int, required=True, metavar="M",
                        help=f"requests in all (at most {MAX_REQUESTS})")
    parser.add_argument("--max-tokens", type=positive_int, default=32, metavar="K",
                        help="tokens each answer (the end-of-sentence token ignored; default 32)")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, metavar="TEXT",
                        help="the prompt every request sends")
    parser.add_argument("--model", metavar="ID", help="the model to ask (default: the endpoint's first)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    problem = local_url_problem(args.url) if args.url is not None else None
    if problem is not None:
        raise exitcodes.UsageError(problem)
    if args.concurrency > MAX_CONCURRENCY or args.requests > MAX_REQUESTS:
        raise exitcodes.UsageError(f"a bounded test: --concurrency at most {MAX_CONCURRENCY}, "
                                   f"--requests at most {MAX_REQUESTS}")
    return with_target(args, cluster, "bench-serve", lambda url: bench(args, url))


def bench(args: argparse.Namespace, url: str) -> int:
    plan = BenchPlan(url, args.concurrency, args.requests, args.max_tokens, args.prompt, args.model)
    try:
        report = run_bench(plan)
    except EndpointError as exc:
        print_error(str(exc))
        return exitcodes.NODE_FAILED if exc.reachable else exitcodes.UNREACHABLE
    if args.json:
        print_json(report.as_dict())
    else:
        print_report(report)
    return exitcodes.OK if not report.errors else exitcodes.NODE_FAILED


def print_report(report: BenchReport) -> None:
    print(f"model {report.model}: {report.requests} requests, {report.concurrency} at a time")
    print(f"completed            {report.completed} ({sum(report.errors.values())} failed)")
    print(f"duration             {report.duration:.2f} s")
    print(f"requests/s           {report.requests_per_second:.2f}")
    print(f"output tokens        {report.output_tokens}")
    print(f"output tokens/s      {report.output_tokens_per_second:.1f}")
    print("                      mean     p50     p90     p99  (ms)")
    for name, values in (("time to first token", report.ttft), ("time per output token", report.tpot),
                         ("latency", report.latency)):
        print(f"{name:<21}{spread_text(values)}")
    for message, count in report.errors.items():
        print(f"error ({count}): {message}")


def spread_text(values: Spread | None) -> str:
    if values is None:
        return "   -"
    return " ".join(f"{v * 1000:7.0f}" for v in (values.mean, values.p50, values.p90, values.p99))
