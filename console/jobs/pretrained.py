"""A job config read as MindFormers reads it: an mcore config's `pretrained_model_dir`/config.json is looked
for on this host, else on every node at once (the first in cluster order that has it wins), and merged under
the YAML (model/pretrained.py, model/config.py). A directory no one can read leaves the class defaults and a
warning that says why, node by node (identical reasons folded).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from model.config import JobSpec, pretrained_model_dir, spec_from_document
from model.pretrained import Pretrained, config_json_path, pretrained_from_text
from model.yamlsource import load_located
from remote import nodeset
from remote.fanout import run_on
from remote.inventory import Cluster
from remote.pool import NodePool
from remote.transport import RunResult

READ_TIMEOUT = 15.0
"""Seconds a node has to print config.json (connecting counts in its transport's own limit)."""
MAX_BYTES = 1 << 20
"""A DeepSeek-V3 config.json is about 2 KiB; more than a MiB is not one."""


def parse_job(text: str, source: str, cluster: Cluster | None, *, pool: NodePool | None = None) -> JobSpec:
    """`text` (the config as rendered) read into a spec, with its pretrained_model_dir's config.json when
    it is an mcore config that names one. `cluster` None: look on this host only; `pool`: the caller's
    connections to `cluster`'s nodes (else a pool of its own, closed when read)."""
    doc = load_located(text, source)
    directory = pretrained_model_dir(doc)
    pretrained = None if directory is None else read_pretrained(directory, cluster, pool=pool)
    return spec_from_document(doc, pretrained=pretrained)


def read_pretrained(directory: str, cluster: Cluster | None, *, pool: NodePool | None = None) -> Pretrained:
    """config.json of `directory`: here when the path exists here, else from the first node that has it
    (asked all at once, so dead nodes cost one READ_TIMEOUT, not one each).
    A file that is there but not valid raises a SourceError naming where it was read."""
    local = Path(config_json_path(directory)).expanduser()
    if local.is_file():
        try:
            text = local.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return Pretrained(directory, str(local), unreadable=f"{local}: {exc}")
        return pretrained_from_text(directory, text, str(local))
    if cluster is None or not cluster.nodes:
        return Pretrained(directory, unreadable=f"{local} is not on this host")
    path = config_json_path(directory)
    command = ["head", "-c", str(MAX_BYTES + 1), "--", path]
    with nullcontext(pool) if pool is not None else NodePool(cluster) as nodes:
        asked = run_on(nodes, cluster.nodes, command, timeout=READ_TIMEOUT)
    misses: dict[str, list[str]] = {}
    for result in asked.results:
        miss = _miss(result, path)
        if miss is None:
            return pretrained_from_text(directory, result.stdout, f"{result.node}:{path}")
        misses.setdefault(miss, []).append(result.node)
    said = "; ".join(f"{nodeset.fold(nodes)}: {miss}" for miss, nodes in misses.items())
    return Pretrained(directory, unreadable=f"not on this host nor on {said}")


def _miss(result: RunResult, path: str) -> str | None:
    """Why a node's answer is not the file (missing, unreachable, too big); None: it is."""
    if not result.ok:
        lines = result.stderr.strip().splitlines()
        return lines[-1] if lines else result.message or result.status
    if len(result.stdout.encode("utf-8")) > MAX_BYTES:
        return f"{path} is over {MAX_BYTES} bytes: not a model's config.json"
    return None
