"""Weights from a model hub: `openmind_hub.snapshot_download` run on one node, then distributed.

The download runs with the node's own interpreter, as the MindFormers tutorial does it:
`HUB_WHITE_LIST_PATHS` exported to the target directory (openmind_hub refuses other paths), the
endpoint from `OPENMIND_HUB_ENDPOINT` so that a mirror can be used, and `local_dir_use_symlinks=False`
(spelled right: the tutorial's `local_dir_use_symlink` is silently ignored, leaving symlinks into a
cache that a copy would not carry). The script is fixed text; the repository id and the directory
are its arguments, never pasted into it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from remote.inventory import NodeSpec
from remote.pool import NodePool
from remote.rsync import home_relative
from remote.transfer import (
    DEFAULT_OPTIONS,
    DistributionResult,
    ProgressCallback,
    TransferOptions,
    distribute,
)

ENDPOINT_ENV = "OPENMIND_HUB_ENDPOINT"
DOWNLOAD_TIMEOUT = 24 * 3600.0
MARK = "@@ascend-hub "
# Exit codes of the script below, and what they mean to a person.
MISSING, IMPORT_FAILED, UNREACHABLE, FAILED = 3, 4, 5, 6
DOWNLOAD_SCRIPT = f"""
import os, sys
repo_id, local_dir = sys.argv[1], sys.argv[2]
def fail(code, text):
    sys.stderr.write({MARK!r} + text.replace("\\n", " ") + "\\n")
    sys.exit(code)
try:
    from openmind_hub import snapshot_download
except ModuleNotFoundError as exc:
    fail({MISSING} if exc.name and exc.name.split(".")[0] == "openmind_hub" else {IMPORT_FAILED}, repr(exc))
except Exception as exc:
    fail({IMPORT_FAILED}, repr(exc))
os.makedirs(local_dir, exist_ok=True)
try:
    path = snapshot_download(repo_id, local_dir=local_dir, local_dir_use_symlinks=False)
except Exception as exc:
    chain, seen = [], exc
    while seen is not None and len(chain) < 8:
        chain.append(type(seen).__name__ + ": " + str(seen)[:300])
        seen = seen.__cause__ or seen.__context__
    text = " <- ".join(chain[:1] + chain[-1:] if len(chain) > 1 else chain)
    words = ("Connection", "Timeout", "SSL", "Proxy", "Max retries", "resolve", "unreachable")
    fail({UNREACHABLE} if any(w in text for w in words) else {FAILED}, text)
print(path)
"""


class HubError(Exception):
    """The hub download failed on a node; the message names the node and what to do."""


@dataclass(frozen=True)
class WeightsResult:
    node: str
    """Where the weights were downloaded."""
    path: str
    distribution: DistributionResult | None
    """Their copy to the other nodes (None when there were no others)."""

    @property
    def ok(self) -> bool:
        return self.distribution is None or self.distribution.ok


def download_argv(node: NodeSpec, repo_id: str, destination: str) -> list[str]:
    return [node.python, "-c", DOWNLOAD_SCRIPT, repo_id, home_relative(destination)]


def download_env(destination: str, endpoint: str | None) -> dict[str, str]:
    env = {"HUB_WHITE_LIST_PATHS": home_relative(destination), "OM_HUB_DISABLE_PROGRESS_BARS": "1"}
    if endpoint:
        env[ENDPOINT_ENV] = endpoint
    return env


def download(pool: NodePool, node: NodeSpec, repo_id: str, destination: str, *,
             endpoint: str | None = None, timeout: float = DOWNLOAD_TIMEOUT) -> str:
    """Download repo_id into destination on node (a relative one under its workdir, as `distribute` reads
    it); returns the directory the hub reports."""
    destination = node.resolve(destination)
    result = pool.transport(node).run(download_argv(node, repo_id, destination),
                                      env=download_env(destination, endpoint), timeout=timeout)
    if result.ok:
        return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else destination
    if result.error is not None:
        raise HubError(f"{node.name}: the hub download did not run: {result.message}")
    raise HubError(explain(node, result.exit_code, result.stderr, endpoint))


def explain(node: NodeSpec, code: int | None, stderr: str, endpoint: str | None) -> str:
    said = next((line[len(MARK):] for line in reversed(stderr.splitlines()) if line.startswith(MARK)),
                (stderr.strip().splitlines() or [f"exit {code}"])[-1])
    where = endpoint or f"${ENDPOINT_ENV} or openmind_hub's default (https://modelers.cn)"
    if code == MISSING:
        return (f"{node.name}: openmind_hub is not installed for {node.python} "
                f"(install it there: {node.python} -m pip install openmind-hub): {said}")
    if code == IMPORT_FAILED:
        return f"{node.name}: openmind_hub could not be imported (an endpoint must be https://): {said}"
    if code == UNREACHABLE:
        return (f"{node.name} cannot reach the hub at {where}; check the node's network or proxy "
                f"(HUB_HTTPS_PROXY), or give a mirror with --endpoint: {said}")
    return f"{node.name}: the hub download failed: {said}"


def fetch_weights(
    pool: NodePool,
    nodes: Sequence[NodeSpec],
    repo_id: str,
    destination: str,
    *,
    endpoint: str | None = None,
    options: TransferOptions = DEFAULT_OPTIONS,
    on_progress: ProgressCallback | None = None,
) -> WeightsResult:
    """Download on the first node, then distribute from it to the others (node to node)."""
    first, *others = nodes
    path = download(pool, first, repo_id, destination, endpoint=endpoint)
    if not others:
        return WeightsResult(first.name, path, None)
    copied = distribute(pool, others, destination, destination, from_node=first, options=options,
                        on_progress=on_progress)
    return WeightsResult(first.name, path, copied)
