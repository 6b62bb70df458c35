"""A serve job's settings (the job file's `console.serve:` section) and its endpoint (where the server
listens on its node, and how to tell it is ready), as the plan records it. Pure.

Engines: `model` (this project's `model.serve`, on one node), `vllm` (vLLM-MindSpore: one node, or many
with Ray or with its data-parallel multiprocess mode) and `mindie` (MindIE's daemon, one node). The
server listens on 127.0.0.1 of its node by default: the console reaches it through the node's transport
(an SSH port forward), so nothing is opened to the network.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Engine = Literal["model", "vllm", "mindie"]
ENGINES: tuple[Engine, ...] = ("model", "vllm", "mindie")
MultiNode = Literal["ray", "mp"]
MULTI_NODE: tuple[MultiNode, ...] = ("ray", "mp")
DEFAULT_PORTS: Mapping[Engine, int] = {"model": 8000, "vllm": 8000, "mindie": 1025}
"""vLLM's default; MindIE's port is its conf/config.json's (1025 in Huawei's examples)."""
READY_LINES: Mapping[Engine, str] = {"model": "Application startup complete.",
                                     "vllm": "Application startup complete.",
                                     "mindie": "Daemon start success!"}
"""The log line each server prints once it serves (uvicorn's, MindIE's)."""
READY_TIMEOUT = 900.0
"""Seconds a server may take to load (MindSpore's import and graph build on a busy CPU; weights on NPUs)."""


@dataclass(frozen=True)
class ServeSettings:
    """`console.serve:` (all optional)."""

    engine: Engine | None = None
    """None: `model` for the model style, else `vllm`."""
    port: int | None = None
    """Where the server listens on its node; None: the engine's default (DEFAULT_PORTS)."""
    host: str = "127.0.0.1"
    """The address it binds on the node; the console needs no other (it forwards through SSH)."""
    model: str | None = None
    """vllm: the weights directory (`--model`); model: a checkpoint (default: the config's
    load_checkpoint, else fresh weights); mindie: unused (its config.json names the model)."""
    served_model_name: str | None = None
    tensor_parallel: int | None = None
    """vllm: `--tensor-parallel-size`; None: every device of the job (ray), of a node (single, mp)."""
    data_parallel: int | None = None
    """vllm, multiprocess mode: `--data-parallel-size`; None: one replica per node."""
    multi_node: MultiNode = "ray"
    """vllm on several nodes: `ray` (tensor parallel across nodes) or `mp` (data parallel, no Ray)."""
    expert_parallel: bool = False
    """vllm: `--enable-expert-parallel`."""
    backend: str = "mindformers"
    """vllm: VLLM_MS_MODEL_BACKEND (mindformers, mindone, native)."""
    toolkit_env: str = "/usr/local/Ascend/ascend-toolkit/set_env.sh"
    """Sourced before vllm or mindie starts (CANN's environment)."""
    nic: str | None = None
    """vllm on several nodes: the interface GLOO, HCCL and TP sockets use."""
    ray_port: int = 6379
    rpc_port: int = 12370
    """vllm multiprocess mode: `--data-parallel-rpc-port`."""
    mindie_home: str = "/usr/local/Ascend/mindie/latest/mindie-service"
    args: tuple[str, ...] = ()
    """More arguments for the server, after the console's."""
    ready_timeout: float = READY_TIMEOUT


@dataclass(frozen=True)
class ServeEndpoint:
    """Where a serve job's server listens, on which node, and what says it is ready."""

    engine: Engine
    node: str
    job_dir: str
    """The server node's job directory (its log is console.log there)."""
    host: str
    port: int
    ready_line: str
    health_path: str | None
    """Polled before `/v1/models`; None where the server has none (MindIE)."""
    ready_timeout: float
    weights: str | None = None
    """What the server loads from every node's disk (`serve.model`), checked there by preflight."""

    @property
    def url(self) -> str:
        """The URL on the node (reachable there, or through a forward)."""
        return f"http://{self.host}:{self.port}"

    def as_json(self) -> dict[str, Any]:
        return {"engine": self.engine, "node": self.node, "job_dir": self.job_dir, "host": self.host,
                "port": self.port, "endpoint": self.url, "ready_line": self.ready_line,
                "health_path": self.health_path, "ready_timeout": self.ready_timeout, "weights": self.weights}

    @classmethod
    def from_plan(cls, plan: Mapping[str, Any]) -> ServeEndpoint | None:
        """The endpoint a recorded plan holds; None for a job that serves nothing."""
        found = plan.get("serve")
        if not isinstance(found, dict):
            return None
        return cls(engine=found["engine"], node=str(found["node"]), job_dir=str(found["job_dir"]),
                   host=str(found["host"]), port=int(found["port"]), ready_line=str(found["ready_line"]),
                   health_path=found.get("health_path"), ready_timeout=float(found["ready_timeout"]),
                   weights=found.get("weights"))


def serve_settings(value: Any) -> ServeSettings:
    """`console.serve:` read; raises ValueError (TypeError) naming the key."""
    if value is None:
        return ServeSettings()
    if not isinstance(value, dict):
        raise ValueError("serve must be a mapping")
    known = set(ServeSettings.__dataclass_fields__)
    unknown = set(value) - known
    if unknown:
        raise ValueError(f"serve: unknown key(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(sorted(known))}")
    if value.get("engine") not in (None, *ENGINES):
        raise ValueError(f"serve.engine must be one of {', '.join(ENGINES)} (got {value['engine']!r})")
    if value.get("multi_node", "ray") not in MULTI_NODE:
        raise ValueError(f"serve.multi_node must be one of {', '.join(MULTI_NODE)} "
                         f"(got {value['multi_node']!r})")
    read = dict(value)
    for name in ("port", "tensor_parallel", "data_parallel", "ray_port", "rpc_port"):
        if read.get(name) is not None:
            read[name] = int(read[name])
    read["ready_timeout"] = float(read.get("ready_timeout", READY_TIMEOUT))
    args = read.get("args", ())
    read["args"] = tuple(shlex.split(args)) if isinstance(args, str) else tuple(str(a) for a in args)
    return ServeSettings(**read)
