"""Cluster files: which nodes exist and how to reach them, validated once into typed records."""

from __future__ import annotations

import difflib
import fnmatch
import os
import posixpath
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from model.yamlsource import (
    FieldPath,
    LocatedDocument,
    Problem,
    SourceError,
    load_located,
    load_located_file,
)
from remote import nodeset

TRANSPORTS = ("ssh", "local")
BACKENDS = ("npu", "cpu")
DEFAULT_FANOUT = 64
USER_CLUSTER_ENV = "ASCEND_CONSOLE_CLUSTER"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class InventoryError(SourceError):
    """A cluster file, or a node selection against it, is wrong."""


@dataclass(frozen=True)
class NodeSpec:
    """One server as the cluster file describes it. `None` means "not set": SSH config decides."""

    name: str
    host: str
    cluster_ip: str
    transport: str = "ssh"
    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    known_hosts: str = "~/.ssh/known_hosts"
    proxy_jump: str | None = None
    workdir: str = "/home/work"
    devices: int = 8
    backend: str = "npu"
    container: str | None = None
    python: str = "python3"
    env_setup: tuple[str, ...] = ()
    """Shell lines a job runs on the node before MindSpore (`source .../set_env.sh`, a conda or venv
    activation): the cluster's `defaults:` lines first, then the node's own."""
    connect_timeout: float = 10.0
    command_timeout: float = 120.0
    keepalive: float = 15.0

    def resolve(self, path: str) -> str:
        """`path` as a path on this node: a relative one is under the node's workdir; an absolute one,
        or one under `~`, is as written (on a local node `~` is expanded: this machine's home)."""
        here = self.transport == "local"
        if path.startswith(("/", "~")):
            return os.path.expanduser(path) if here else path
        workdir = os.path.expanduser(self.workdir) if here else self.workdir
        return posixpath.normpath(posixpath.join(workdir, path))


@dataclass(frozen=True)
class HealthThresholds:
    """Where a reading turns a node from OK to WARN; the cluster file's `health:` may change each."""

    temperature_c: float = 85.0
    """An NPU hotter than this is WARN."""
    disk_free_gb: float = 100.0
    """Less free space than this under the workdir is WARN (DeepSeek-V3 weights alone are 1.4 TB)."""
    clock_offset_s: float = 1.0
    """A node clock further than this from the console's is WARN (logs and timeouts disagree)."""
    hbm_busy_mb: int = 8192
    """HBM used above this on an NPU with no process of ours is WARN "busy" (idle 910B shows ~3.3 GB)."""


@dataclass(frozen=True)
class Cluster:
    name: str
    nodes: tuple[NodeSpec, ...]
    source: str
    ssh_config: str | None = "~/.ssh/config"
    fanout: int = DEFAULT_FANOUT
    health: HealthThresholds = HealthThresholds()

    def node(self, name: str) -> NodeSpec:
        for node in self.nodes:
            if node.name == name:
                return node
        raise InventoryError([Problem(self.source, None, "nodes", _unknown_node(name, self))])

    def select(self, pattern: str | None) -> tuple[NodeSpec, ...]:
        """Nodes named by a node set (`node[0-3],gpu7`) or glob (`node*`), in cluster order."""
        if not pattern:
            return self.nodes
        try:
            terms = nodeset.expand(pattern)
        except nodeset.NodeSetError as exc:
            raise InventoryError([Problem("--nodes", None, "", str(exc))]) from exc
        wanted: set[str] = set()
        for term in terms:
            matches = [n.name for n in self.nodes if fnmatch.fnmatchcase(n.name, term)]
            if not matches:
                raise InventoryError([Problem("--nodes", None, "", _unknown_node(term, self))])
            wanted.update(matches)
        return tuple(n for n in self.nodes if n.name in wanted)


def _unknown_node(name: str, cluster: Cluster) -> str:
    names = [n.name for n in cluster.nodes]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; nodes are {nodeset.fold(names)}"
    return f"no node {name!r} in cluster {cluster.name!r}{hint}"


# --- the schema --------------------------------------------------------------------------------

Checker = Callable[[Any], str | None]


def _is_str(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "must be a non-empty string"


def _is_port(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535
    return None if ok else f"must be a TCP port, an integer from 1 to 65535 (got {value!r})"


def _is_positive_int(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    return None if ok else f"must be a whole number >= 1 (got {value!r})"


def _is_seconds(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    return None if ok else f"must be a number of seconds > 0 (got {value!r})"


def _is_backend(value: Any) -> str | None:
    return None if value in BACKENDS else f"must be one of {', '.join(BACKENDS)} (got {value!r})"


def _is_positive_number(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    return None if ok else f"must be a number >= 0 (got {value!r})"


def _is_shell_lines(value: Any) -> str | None:
    ok = isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
    return None if ok else f"must be a shell line or a list of them (got {value!r})"


def _shell_lines(value: Any) -> tuple[str, ...]:
    lines = value.splitlines() if isinstance(value, str) else value
    return tuple(line for line in lines if line.strip())


def _is_health(value: Any) -> str | None:
    return None if isinstance(value, dict) else "must be a mapping of thresholds"


def _is_transport(value: Any) -> str | None:
    return None if value in TRANSPORTS else f"must be one of {', '.join(TRANSPORTS)} (got {value!r})"


def _is_name(value: Any) -> str | None:
    if isinstance(value, str) and _NAME.fullmatch(value):
        return None
    return f"must be letters, digits, '.', '_' or '-', starting with a letter or digit (got {value!r})"


# Fields that `defaults:` and every node may set, with their checks.
NODE_FIELDS: dict[str, Checker] = {
    "user": _is_str,
    "port": _is_port,
    "identity_file": _is_str,
    "known_hosts": _is_str,
    "proxy_jump": _is_str,
    "workdir": _is_str,
    "devices": _is_positive_int,
    "transport": _is_transport,
    "backend": _is_backend,
    "container": _is_str,
    "python": _is_str,
    "env_setup": _is_shell_lines,
    "connect_timeout": _is_seconds,
    "command_timeout": _is_seconds,
    "keepalive": _is_seconds,
}
# Fields only a node may set.
NODE_ONLY_FIELDS: dict[str, Checker] = {"name": _is_name, "host": _is_str, "cluster_ip": _is_str}
TOP_FIELDS: dict[str, Checker] = {
    "name": _is_str,
    "defaults": lambda v: None if isinstance(v, dict) else "must be a mapping of node fields",
    "nodes": lambda v: None if isinstance(v, list) and v else "must be a non-empty list of nodes",
    "ssh_config": _is_str,
    "fanout": _is_positive_int,
    "health": _is_health,
}
HEALTH_FIELDS: dict[str, Checker] = {
    name: _is_positive_number for name in HealthThresholds.__dataclass_fields__
}


# --- loading -----------------------------------------------------------------------------------


def load_cluster(path: Path) -> Cluster:
    return _parse_from(lambda: load_located_file(path))


def load_cluster_text(text: str, source: str) -> Cluster:
    return _parse_from(lambda: load_located(text, source))


def _parse_from(read: Callable[[], LocatedDocument]) -> Cluster:
    try:
        doc = read()
    except SourceError as exc:
        raise InventoryError(exc.problems) from exc
    return _parse(doc)


def embedded_default_path() -> Path:
    return Path(str(resources.files("configs") / "clusters" / "local.yaml"))


def user_cluster_path() -> Path:
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "ascend-console" / "cluster.yaml"


def default_cluster_path() -> Path:
    """$ASCEND_CONSOLE_CLUSTER, else the user's file if it exists, else the embedded local cluster."""
    from_env = os.environ.get(USER_CLUSTER_ENV)
    if from_env:
        return Path(from_env).expanduser()
    user_file = user_cluster_path()
    return user_file if user_file.exists() else embedded_default_path()


def _parse(doc: LocatedDocument) -> Cluster:
    problems: list[Problem] = []
    data = doc.data
    if not isinstance(data, dict):
        raise InventoryError([doc.problem((), "a cluster file is a mapping with name, defaults, nodes")])
    _check_fields(doc, data, (), TOP_FIELDS, problems=problems)
    for required in ("name", "nodes"):
        if required not in data:
            problems.append(doc.problem((), f"missing required field {required!r}"))
    defaults: dict[str, Any] = data["defaults"] if isinstance(data.get("defaults"), dict) else {}
    _check_fields(doc, defaults, ("defaults",), NODE_FIELDS, problems=problems, misplaced=NODE_ONLY_FIELDS)
    health: dict[str, Any] = data["health"] if isinstance(data.get("health"), dict) else {}
    _check_fields(doc, health, ("health",), HEALTH_FIELDS, problems=problems)
    raw_nodes: list[Any] = data["nodes"] if isinstance(data.get("nodes"), list) else []
    nodes = [_parse_node(doc, i, raw, defaults, problems) for i, raw in enumerate(raw_nodes)]
    _check_unique_names(doc, raw_nodes, problems)
    _check_jump_loops(doc, [n for n in nodes if n is not None], problems)
    if problems:
        raise InventoryError(problems)
    return Cluster(
        name=data["name"],
        nodes=tuple(n for n in nodes if n is not None),
        source=doc.source,
        ssh_config=data.get("ssh_config", "~/.ssh/config"),
        fanout=data.get("fanout", DEFAULT_FANOUT),
        health=HealthThresholds(**health),
    )


def _check_fields(
    doc: LocatedDocument,
    data: dict[Any, Any],
    path: FieldPath,
    allowed: dict[str, Checker],
    *,
    problems: list[Problem],
    misplaced: dict[str, Checker] | None = None,
) -> None:
    for key, value in data.items():
        where = (*path, str(key))
        checker = allowed.get(str(key))
        if checker is None:
            problems.append(doc.problem(where, _unknown_key_message(str(key), allowed, misplaced)))
        elif (error := checker(value)) is not None:
            problems.append(doc.problem(where, error))


SECRET_KEYS = frozenset({"password", "passwd", "pass", "passphrase", "key_password", "key_passphrase"})
"""Keys people write for secrets: refused with the reason (keys or an agent only), not as unknown."""


def _unknown_key_message(
    key: str, allowed: dict[str, Checker], misplaced: dict[str, Checker] | None
) -> str:
    if misplaced and key in misplaced:
        return "can only be set on a node, not in defaults"
    if key.lower() in SECRET_KEYS:
        return ("no password or passphrase is kept in a cluster file: authenticate with a key "
                "(identity_file) or an SSH agent")
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return f"unknown key; valid keys here: {', '.join(sorted(allowed))}"


def _parse_node(
    doc: LocatedDocument,
    index: int,
    raw: Any,
    defaults: dict[str, Any],
    problems: list[Problem],
) -> NodeSpec | None:
    path: FieldPath = ("nodes", index)
    if not isinstance(raw, dict):
        problems.append(doc.problem(path, "a node is a mapping with at least name and host"))
        return None
    before = len(problems)
    _check_fields(doc, raw, path, {**NODE_FIELDS, **NODE_ONLY_FIELDS}, problems=problems)
    merged = {k: v for k, v in {**defaults, **raw}.items() if k in NODE_FIELDS or k in NODE_ONLY_FIELDS}
    transport = merged.get("transport", "ssh")
    if "name" not in raw:
        problems.append(doc.problem(path, "missing required field 'name'"))
    if "host" not in raw and transport == "ssh":
        problems.append(doc.problem(
            path, "missing required field 'host' (an address or ~/.ssh/config alias)"))
    if len(problems) > before:
        return None
    host = merged.get("host", "localhost")
    fields = {k: v for k, v in merged.items() if k not in ("host", "cluster_ip")}
    fields["env_setup"] = _shell_lines(defaults.get("env_setup", [])) + _shell_lines(raw.get("env_setup", []))
    # a local node is this machine: it computes on the CPU unless the file says otherwise
    fields.setdefault("backend", "cpu" if transport == "local" else "npu")
    if transport == "local":
        # ...and runs its ranks with the console's own interpreter, unless told otherwise
        fields.setdefault("python", sys.executable)
        if "workdir" in fields:
            where: FieldPath = (*path, "workdir") if "workdir" in raw else ("defaults", "workdir")
            workdir, error = local_path(fields["workdir"])
            if error is not None:
                problem = doc.problem(where, error)
                if problem not in problems:  # a defaults: workdir is said once, not once a node
                    problems.append(problem)
                return None
            fields["workdir"] = workdir
    return NodeSpec(host=host, cluster_ip=merged.get("cluster_ip", host), **fields)


XDG_DEFAULTS = {"XDG_DATA_HOME": ".local/share", "XDG_STATE_HOME": ".local/state",
                "XDG_CACHE_HOME": ".cache", "XDG_CONFIG_HOME": ".config"}
"""The XDG base directories under $HOME, for a variable unset or empty (the XDG spec's defaults)."""
_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def local_path(value: str) -> tuple[str, str | None]:
    """A local node's path with `$VAR` / `${VAR}` taken from the console's environment (this machine is
    the node), the XDG base directories defaulting as the XDG spec says: so the embedded cluster's job
    directories follow $XDG_DATA_HOME, one per user and session. (The path, an error or None.)"""
    unset: list[str] = []

    def value_of(match: re.Match[str]) -> str:
        name = match["braced"] or match["bare"]
        found = os.environ.get(name)
        if not found and name in XDG_DEFAULTS:
            return str(Path.home() / XDG_DEFAULTS[name])
        if found is None:
            unset.append(name)
            return match[0]
        return found

    expanded = _VARIABLE.sub(value_of, value)
    if unset:
        return value, (f"${unset[0]} is not set in the environment (a local node's path may use "
                       f"environment variables; XDG ones default to their place under $HOME)")
    return expanded, None


def _check_unique_names(doc: LocatedDocument, raw_nodes: list[Any], problems: list[Problem]) -> None:
    first_seen: dict[str, int] = {}
    for index, raw in enumerate(raw_nodes):
        name = raw.get("name") if isinstance(raw, dict) else None
        if not isinstance(name, str):
            continue
        if name in first_seen:
            first_line = doc.line_of(("nodes", first_seen[name]))
            problems.append(doc.problem(
                ("nodes", index, "name"),
                f"duplicate node name {name!r} (first used on line {first_line})",
            ))
        else:
            first_seen[name] = index


def _check_jump_loops(doc: LocatedDocument, nodes: list[NodeSpec], problems: list[Problem]) -> None:
    """proxy_jump may name another node; following those names must end at a node reached directly."""
    jumps = {n.name: n.proxy_jump for n in nodes}
    for index, node in enumerate(nodes):
        chain, hop = [node.name], node.proxy_jump
        while hop in jumps and hop not in chain:
            chain.append(hop)
            hop = jumps[hop]
        if hop == node.name:
            problems.append(doc.problem(("nodes", index, "proxy_jump"),
                                        f"jump hosts loop: {' -> '.join([*chain, node.name])}"))
