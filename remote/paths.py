"""Which of a job's input paths are missing on which nodes: one round trip per node."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from remote.fanout import run_on
from remote.inventory import NodeSpec
from remote.pool import NodePool

# Prints each argument that does not exist; paths arrive as arguments, never as shell text.
_MISSING = 'for p; do [ -e "$p" ] || printf "%s\\n" "$p"; done'


@dataclass(frozen=True)
class MissingPath:
    path: str
    nodes: tuple[str, ...]
    """Nodes where it is missing, or could not be checked (see `unchecked`)."""
    unchecked: bool = False


def missing_paths(pool: NodePool, nodes: Sequence[NodeSpec], paths: Sequence[str],
                  *, timeout: float = 30.0) -> list[MissingPath]:
    """Every path absent on some node, with the nodes; unreachable nodes count as unchecked."""
    if not paths:
        return []
    outcome = run_on(pool, nodes, ["sh", "-c", _MISSING, "sh", *paths], timeout=timeout)
    absent: dict[str, list[str]] = {}
    for result in outcome.results:
        if result.ok:
            for path in result.stdout.splitlines():
                absent.setdefault(path, []).append(result.node)
    found = [MissingPath(path, tuple(where)) for path, where in absent.items()]
    lost = tuple(r.node for r in outcome.results if not r.ok)
    if lost:
        found += [MissingPath(path, lost, unchecked=True) for path in paths]
    return found


def dataset_files(prefixes: Sequence[str]) -> list[str]:
    """A Megatron dataset prefix stands for two files: PREFIX.bin and PREFIX.idx."""
    return [f"{prefix}{suffix}" for prefix in prefixes for suffix in (".bin", ".idx")]
