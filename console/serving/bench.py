"""`bench-serve`: a bounded load test of an OpenAI-compatible endpoint, and its figures.

M requests, at most N in flight, each streamed so its first token can be timed; then what vLLM's
`benchmark_serving` reports for the same run: requests/s, output tokens/s, time to first token (TTFT),
time per output token after the first (TPOT) and the whole request's latency, each as mean, p50, p90
and p99 (percentiles interpolated linearly, as numpy's default that vLLM uses), and the errors, folded
by message. Bounded twice: N and M are capped, and only a local endpoint (or, later, a job's) may be
loaded, so that nobody's production server is load-tested by a typo.
"""

from __future__ import annotations

import ipaddress
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from console.serving.answer import AnswerClock, AnswerStats
from console.serving.client import DEFAULT_LIMITS, EndpointError, Limits, ServingClient

MAX_CONCURRENCY = 64
MAX_REQUESTS = 10_000
DEFAULT_PROMPT = "The quick brown fox jumps over the lazy dog. Once upon a time"
LOCAL_NAMES = ("localhost",)


def local_url_problem(url: str) -> str | None:
    """Why a URL may not be load-tested, or None: only this machine's loopback, for now."""
    host = urlsplit(url if "://" in url else f"http://{url}").hostname or ""
    if host in LOCAL_NAMES:
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return (f"{host or url} is not this machine: bench-serve loads only a local endpoint (localhost, "
            "127.0.0.1, ::1), so that a typo never load-tests someone's server; tunnel it here "
            "(ssh -L PORT:HOST:PORT) to measure it")


@dataclass(frozen=True)
class BenchPlan:
    url: str
    concurrency: int
    requests: int
    max_tokens: int
    prompt: str = DEFAULT_PROMPT
    model: str | None = None
    """None: the endpoint's first model."""


@dataclass(frozen=True)
class RequestResult:
    stats: AnswerStats | None
    """None: the request failed."""
    error: str | None = None


@dataclass(frozen=True)
class Spread:
    """Seconds."""

    mean: float
    p50: float
    p90: float
    p99: float


@dataclass(frozen=True)
class BenchReport:
    model: str
    concurrency: int
    requests: int
    completed: int
    duration: float
    """Seconds from the first request sent to the last answer's end."""
    requests_per_second: float
    """Completed requests over the duration."""
    output_tokens: int
    output_tokens_per_second: float
    ttft: Spread | None
    tpot: Spread | None
    """Time per output token after the first; answers of one token have none."""
    latency: Spread | None
    errors: dict[str, int]
    """Each distinct error message and how many requests ended with it."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default, which vLLM's figures use)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def spread(values: Sequence[float]) -> Spread | None:
    if not values:
        return None
    return Spread(statistics.fmean(values), percentile(values, 0.5), percentile(values, 0.9),
                  percentile(values, 0.99))


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def summarize(results: Sequence[RequestResult], *, model: str, concurrency: int,
              duration: float) -> BenchReport:
    done = [r.stats for r in results if r.stats is not None]
    errors: dict[str, int] = {}
    for result in results:
        if result.error is not None:
            errors[result.error] = errors.get(result.error, 0) + 1
    tokens = sum(s.tokens for s in done)
    return BenchReport(
        model=model, concurrency=concurrency, requests=len(results), completed=len(done),
        duration=duration, requests_per_second=rate(len(done), duration), output_tokens=tokens,
        output_tokens_per_second=rate(tokens, duration),
        ttft=spread([s.first_token_seconds for s in done if s.first_token_seconds is not None]),
        tpot=spread([(s.seconds - s.first_token_seconds) / (s.tokens - 1) for s in done
                     if s.first_token_seconds is not None and s.tokens > 1]),
        latency=spread([s.seconds for s in done]), errors=errors)


def run_bench(plan: BenchPlan, *, limits: Limits = DEFAULT_LIMITS,
              clock: Callable[[], float] = time.monotonic) -> BenchReport:
    """Blocking: the whole load test. An endpoint that cannot say its model raises EndpointError;
    a request that fails is counted in the report's errors."""
    with ServingClient(plan.url, limits=limits) as client:
        model = client.model(plan.model).id
        body = {"model": model, "prompt": plan.prompt, "max_tokens": plan.max_tokens, "temperature": 0,
                "ignore_eos": True}  # every answer as long as asked, as benchmark_serving's random runs

        def one(_: int) -> RequestResult:
            answer = AnswerClock(clock)
            try:
                for chunk in client.stream("/v1/completions", body):
                    answer.heard(chunk)
            except EndpointError as exc:
                return RequestResult(None, str(exc))
            return RequestResult(answer.stats())

        started = clock()
        with ThreadPoolExecutor(max_workers=plan.concurrency, thread_name_prefix="bench") as pool:
            results = list(pool.map(one, range(plan.requests)))
        return summarize(results, model=model, concurrency=plan.concurrency, duration=clock() - started)
