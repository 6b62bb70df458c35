"""What a node must hold before a launch runs there, probed in one round trip per node: paths that
exist, commands on PATH, Python modules its interpreter imports, and its container running.

The probe runs where the launch would: after the node's `env_setup` lines with its interpreter's
directory first on PATH (as launch.sh does), and for a node with a `container`, inside it through the
same `docker exec` the launch uses, once `docker inspect` says it runs. Paths, names and the interpreter
travel quoted (`shlex.quote`); the `env_setup` lines go in as written, as they do into launch.sh.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from remote.fanout import run_on
from remote.inventory import NodeSpec
from remote.nodeenv import environment_lines
from remote.pool import NodePool
from remote.transport import ErrorKind, RunResult

NeedKind = Literal["path", "command", "module"]
ABSENT = "ASCEND_NEED_ABSENT"
CONTAINER_DOWN = "ASCEND_NEED_CONTAINER"
DONE = "ASCEND_NEEDS_DONE"
"""Printed last: a probe whose output lacks it ended early (an `env_setup` line that exits)."""

_HELPERS = (
    'bounded() { if command -v timeout >/dev/null 2>&1; then timeout "$limit" "$@"; else "$@"; fi; }\n'
    f"absent() {{ printf '{ABSENT} %s %s\\n' \"$1\" \"$2\"; }}\n"
    "last() { printf '%s\\n' \"$1\" | sed '/^[[:space:]]*$/d' | tail -n 1; }\n"
)
# $1 the container, $2 what runs inside it once it runs
_ENTER = (f'state=$(docker inspect -f "{{{{.State.Running}}}}" "$1" 2>&1 | tail -n 1)\n'
          f'[ "$state" = true ] || {{ printf "{CONTAINER_DOWN} %s\\n" "$state"; exit 0; }}\n'
          'exec docker exec "$1" sh -c "$2"')


@dataclass(frozen=True)
class Need:
    kind: NeedKind
    subject: str
    """The path, the command's name, or the module's name."""


@dataclass(frozen=True)
class NeedsReading:
    node: str
    absent: tuple[tuple[Need, str], ...] = ()
    """Each need the node lacks, with what it said (an import's last error line; else empty)."""
    container_down: str | None = None
    """The node's container does not run: what `docker inspect` said (nothing inside was checked)."""
    failure: str | None = None
    """The probe did not finish: why (nothing was checked)."""

    @property
    def checked(self) -> bool:
        return self.failure is None and self.container_down is None


def probe_needs(pool: NodePool, needs: Mapping[str, tuple[NodeSpec, Sequence[Need]]], *,
                env: Mapping[str, Mapping[str, str]] | None = None,
                timeout: float = 30.0) -> list[NeedsReading]:
    """Every node's needs (keyed by node name) probed at once, each in the environment its launch.sh sets
    (`env`: node name -> the variables it exports); an import may take 2/3 of `timeout`."""
    limit = max(1, int(timeout * 2 / 3))
    commands = {name: node_command(node, wanted, limit=limit, env=(env or {}).get(name, {}))
                for name, (node, wanted) in needs.items()}
    nodes = [node for node, _ in needs.values()]
    outcome = run_on(pool, nodes, lambda node: commands[node.name], timeout=timeout)
    return [read_needs(result, needs[result.node][1], timeout=timeout) for result in outcome.results]


def node_command(node: NodeSpec, needs: Sequence[Need], *, limit: int,
                 env: Mapping[str, str] | None = None) -> list[str]:
    """The argv that probes `needs` on `node` (inside its container when it has one)."""
    script = needs_script(node, needs, limit=limit, env=env or {})
    if node.container:
        return ["sh", "-c", _ENTER, "sh", node.container, script]
    return ["sh", "-c", script]


def needs_script(node: NodeSpec, needs: Sequence[Need], *, limit: int,
                 env: Mapping[str, str] | None = None) -> str:
    """Shell text: launch.sh's environment (remote.nodeenv), then one line a need; each one absent printed
    as `ASCEND_NEED_ABSENT <index> <detail>`."""
    lines = environment_lines(node, env or {})
    lines += [f"limit={limit}", _HELPERS]
    lines += [_need_line(index, need, node.python) for index, need in enumerate(needs)]
    lines.append(f"echo {DONE}")
    return "\n".join(lines) + "\n"


def _need_line(index: int, need: Need, python: str) -> str:
    subject = shlex.quote(need.subject)
    if need.kind == "path":
        return f"[ -e {subject} ] || absent {index} ''"
    if need.kind == "command":
        return f"command -v {subject} >/dev/null 2>&1 || absent {index} ''"
    code = shlex.quote(f"import {need.subject}")
    return (f"out=$(bounded {shlex.quote(python)} -c {code} 2>&1) || {{ [ $? -eq 124 ] && "
            f'out="no answer within $limit s"; absent {index} "$(last "$out")"; }}')


def read_needs(result: RunResult, needs: Sequence[Need], *, timeout: float) -> NeedsReading:
    """One node's probe output -> what it lacks."""
    if result.error is ErrorKind.TIMEOUT:
        return NeedsReading(result.node, failure=f"no answer within {timeout:g} s")
    if result.error is not None:
        return NeedsReading(result.node, failure=result.message or result.error.value)
    absent: list[tuple[Need, str]] = []
    for line in result.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word == CONTAINER_DOWN:
            return NeedsReading(result.node, container_down=rest.strip() or "not running")
        if word == ABSENT:
            index, _, detail = rest.partition(" ")
            if index.isdigit() and int(index) < len(needs):
                absent.append((needs[int(index)], detail.strip()))
    if DONE not in result.stdout.splitlines():
        said = (result.stderr.strip().splitlines() or [f"exit code {result.exit_code}"])[-1]
        return NeedsReading(result.node, failure=f"the check ended early: {said}")
    return NeedsReading(result.node, tuple(absent))
