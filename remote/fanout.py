"""Run one command, or one per node, on many nodes at once; results as data."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass
from typing import TypeVar

from remote import nodeset
from remote.inventory import NodeSpec
from remote.pool import NodePool
from remote.transport import ErrorKind, RunResult

NodeCommand = Sequence[str] | Callable[[NodeSpec], Sequence[str]]
T = TypeVar("T")


@dataclass(frozen=True)
class FanoutResult:
    """Every node's result, in the order the nodes were given."""

    results: tuple[RunResult, ...]
    elapsed: float

    def _where(self, test: Callable[[RunResult], bool]) -> tuple[RunResult, ...]:
        return tuple(r for r in self.results if test(r))

    @property
    def ok(self) -> tuple[RunResult, ...]:
        return self._where(lambda r: r.ok)

    @property
    def failed(self) -> tuple[RunResult, ...]:
        """Ran, and exited non-zero."""
        return self._where(lambda r: r.error is None and r.exit_code != 0)

    @property
    def timed_out(self) -> tuple[RunResult, ...]:
        return self._where(lambda r: r.error is ErrorKind.TIMEOUT)

    @property
    def unreachable(self) -> tuple[RunResult, ...]:
        """Could not run at all: no connection, refused key, failed login."""
        return self._where(lambda r: r.error not in (None, ErrorKind.TIMEOUT))

    @property
    def all_ok(self) -> bool:
        return len(self.ok) == len(self.results)

    def summary(self) -> dict[str, int]:
        return {
            "nodes": len(self.results),
            "ok": len(self.ok),
            "failed": len(self.failed),
            "timed_out": len(self.timed_out),
            "unreachable": len(self.unreachable),
        }


@dataclass(frozen=True)
class OutputGroup:
    """Nodes that printed exactly the same thing and ended the same way."""

    nodes: tuple[str, ...]
    stdout: str
    stderr: str
    status: str
    exit_code: int | None

    @property
    def label(self) -> str:
        return nodeset.fold(self.nodes)


def fan_out(
    pool: NodePool,
    nodes: Sequence[NodeSpec],
    command: NodeCommand,
    *,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Iterator[RunResult]:
    """Results in the order they arrive. At most `pool.workers` nodes are busy at once."""

    def run_one(node: NodeSpec) -> RunResult:
        argv = command(node) if callable(command) else command
        try:
            return pool.transport(node).run(argv, timeout=timeout, env=env, cwd=cwd)
        except Exception as exc:  # noqa: BLE001 - one node's surprise must not sink the other 127
            return RunResult.failure(node=node.name, command=" ".join(argv), kind=ErrorKind.IO,
                                     message=f"internal error: {exc!r}", elapsed=0.0)

    return map_nodes(pool, nodes, run_one)


def map_nodes(pool: NodePool, nodes: Sequence[NodeSpec], work: Callable[[NodeSpec], T]) -> Iterator[T]:
    """`work(node)` for every node on the pool's threads; results in the order they finish.

    Stopping early (closing the iterator) cancels the work not yet started.
    """
    futures = [pool.executor.submit(work, node) for node in nodes]
    try:
        for future in as_completed(futures):
            yield future.result()
    finally:
        for future in futures:
            future.cancel()


def collect(results: Iterator[RunResult], nodes: Sequence[NodeSpec], started: float) -> FanoutResult:
    by_node = {r.node: r for r in results}
    ordered = tuple(by_node[n.name] for n in nodes if n.name in by_node)
    return FanoutResult(ordered, time.monotonic() - started)


def run_on(
    pool: NodePool,
    nodes: Sequence[NodeSpec],
    command: NodeCommand,
    *,
    timeout: float | None = None,
    on_result: Callable[[RunResult], None] | None = None,
) -> FanoutResult:
    """Run everywhere and wait; `on_result` sees each result as it arrives."""
    started = time.monotonic()

    def reported() -> Iterator[RunResult]:
        for result in fan_out(pool, nodes, command, timeout=timeout):
            if on_result is not None:
                on_result(result)
            yield result

    return collect(reported(), nodes, started)


def fold_outputs(results: Sequence[RunResult]) -> list[OutputGroup]:
    """ClusterShell's clubak: identical outputs once, under the node set that printed them."""
    groups: dict[tuple[str, str, str, int | None], list[str]] = {}
    for result in results:
        # failures to connect carry per-node addresses: fold them by kind, list reasons elsewhere
        if result.error is None or result.error is ErrorKind.TIMEOUT:
            key = (result.stdout, result.stderr, result.status, result.exit_code)
        else:
            key = ("", "", result.status, None)
        groups.setdefault(key, []).append(result.node)
    return [
        OutputGroup(tuple(names), stdout, stderr, status, code)
        for (stdout, stderr, status, code), names in groups.items()
    ]
