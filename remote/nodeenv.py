"""The environment a job's processes get on a node, as shell lines: what launch.sh runs before its command
and what preflight's launcher probe runs before its checks, so that the probe finds what the launch will."""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping

from remote.inventory import NodeSpec


def environment_lines(node: NodeSpec, env: Mapping[str, str]) -> list[str]:
    """The cluster file's env_setup lines as written (the operator's own, like a shell profile), the node's
    python first on PATH (msrun starts its ranks as `python`), then every variable, quoted."""
    lines = list(node.env_setup)
    python_dir = posixpath.dirname(node.python)
    if python_dir:
        lines.append(f'export PATH={shlex.quote(python_dir)}:"$PATH"')
    lines += [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
    return lines
