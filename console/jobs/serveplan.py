"""What each node of a serve job runs: the server's command, its environment and the shell lines before
it, per engine (console/jobs/servespec.py). Pure; plan.py writes them into launch.sh.

- `model`: `python -m model.serve --config config.yaml --host H --port P` on one node (`model/` shipped).
- `vllm`, one node: `vllm-mindspore serve --model=W --trust-remote-code ... --tensor-parallel-size T`.
- `vllm` with Ray: `ray start --head` then the serve (`--distributed-executor-backend=ray`) on node 0,
  `ray start --address=<node 0>:6379 --block` on the others (it stays in the foreground: the job lasts
  while Ray does, and stop finds it by the job's marker).
- `vllm` in data-parallel multiprocess mode: the serve on every node with `--data-parallel-*`, node 0
  answering HTTP, the others `--headless`.
- `mindie`: `./bin/mindieservice_daemon` in MindIE's service directory, on one node (its
  conf/config.json says the model, the devices and the port).
The vLLM-MindSpore environment is its DeepSeek tutorial's (serving-and-logs.md §1).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from console.jobs.servespec import (
    DEFAULT_PORTS,
    READY_LINES,
    Engine,
    ServeEndpoint,
    ServeSettings,
)
from remote.inventory import NodeSpec

VLLM_ENV = {"MS_ENABLE_LCCL": "off", "HCCL_OP_EXPANSION_MODE": "AIV", "MS_ALLOC_CONF": "enable_vmm:true"}
"""What vLLM-MindSpore's DeepSeek tutorial exports on every node."""
SOCKET_IFNAMES = ("GLOO_SOCKET_IFNAME", "HCCL_SOCKET_IFNAME", "TP_SOCKET_IFNAME")


@dataclass(frozen=True)
class ServeCommand:
    """One node's part: launch.sh's environment, the lines before its `exec`, and what it execs."""

    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    setup: tuple[str, ...] = ()
    """Shell lines, already quoted."""


def engine_for(settings: ServeSettings, style: str) -> Engine:
    return settings.engine or ("model" if style == "model" else "vllm")


def serve_port(settings: ServeSettings, engine: Engine) -> int:
    return settings.port if settings.port is not None else DEFAULT_PORTS[engine]


def serve_commands(nodes: Sequence[NodeSpec], settings: ServeSettings, *, engine: Engine, port: int,
                   config: str, name: str, mindformers_home: str) -> list[ServeCommand]:
    """Each node's command, node 0 first (the one that answers HTTP); `name`: the job's, the model's
    id where the engine would take a file name. Raises ValueError for a layout the engine cannot serve."""
    if engine == "model":
        _one_node(nodes, "model.serve runs on one node")
        return [_model_serve(nodes[0], settings, port, config, name)]
    if engine == "mindie":
        _one_node(nodes, "MindIE's daemon is planned on one node (several need its ranktable)")
        return [ServeCommand(("./bin/mindieservice_daemon",), setup=(
            f". {shlex.quote(settings.toolkit_env)}", f"cd {shlex.quote(settings.mindie_home)} || exit 2"))]
    if not settings.model:
        raise ValueError("vLLM-MindSpore needs console.serve.model: the weights directory on the nodes")
    if len(nodes) == 1:
        tp = settings.tensor_parallel or nodes[0].devices
        return [ServeCommand((*_vllm_serve(settings, port, tp), *settings.args),
                             _vllm_env(nodes[0], settings), _vllm_setup(settings, mindformers_home))]
    if settings.multi_node == "ray":
        return _vllm_ray(nodes, settings, port, mindformers_home)
    return _vllm_data_parallel(nodes, settings, port, mindformers_home)


def serve_endpoint(engine: Engine, node: NodeSpec, job_dir: str, settings: ServeSettings,
                   port: int) -> ServeEndpoint:
    return ServeEndpoint(engine=engine, node=node.name, job_dir=job_dir, host=settings.host, port=port,
                         ready_line=READY_LINES[engine],
                         health_path=None if engine == "mindie" else "/health",
                         ready_timeout=settings.ready_timeout,
                         weights=None if engine == "mindie" else settings.model)


def _one_node(nodes: Sequence[NodeSpec], why: str) -> None:
    if len(nodes) != 1:
        raise ValueError(f"{why}: choose one node with --nodes (got {len(nodes)})")


def _model_serve(node: NodeSpec, settings: ServeSettings, port: int, config: str, name: str) -> ServeCommand:
    argv = [node.python, "-m", "model.serve", "--config", config, "--host", settings.host,
            "--port", str(port), "--served-model-name", settings.served_model_name or name]
    if settings.model:
        argv += ["--checkpoint", settings.model]
    return ServeCommand((*argv, *settings.args))


def _vllm_serve(settings: ServeSettings, port: int, tensor_parallel: int) -> list[str]:
    argv = ["vllm-mindspore", "serve", f"--model={settings.model}", "--trust-remote-code",
            "--host", settings.host, "--port", str(port)]
    if settings.served_model_name:
        argv += ["--served-model-name", settings.served_model_name]
    return [*argv, "--tensor-parallel-size", str(tensor_parallel)]


def _vllm_env(node: NodeSpec, settings: ServeSettings) -> dict[str, str]:
    env = {**VLLM_ENV, "ASCEND_RT_VISIBLE_DEVICES": ",".join(map(str, range(node.devices))),
           "VLLM_MS_MODEL_BACKEND": settings.backend}
    if settings.nic:
        env.update(dict.fromkeys(SOCKET_IFNAMES, settings.nic))
    return env


def _vllm_setup(settings: ServeSettings, mindformers_home: str) -> tuple[str, ...]:
    """CANN's environment, then MindFormers first on PYTHONPATH (the mindformers backend imports it)."""
    lines = [f". {shlex.quote(settings.toolkit_env)}"]
    if settings.backend == "mindformers":
        lines.append(f'export PYTHONPATH={shlex.quote(mindformers_home)}"${{PYTHONPATH:+:$PYTHONPATH}}"')
    return tuple(lines)


def _vllm_ray(nodes: Sequence[NodeSpec], settings: ServeSettings, port: int,
              mindformers_home: str) -> list[ServeCommand]:
    head = nodes[0].cluster_ip
    tp = settings.tensor_parallel or sum(n.devices for n in nodes)
    setup = _vllm_setup(settings, mindformers_home)
    start_head = shlex.join(["ray", "start", "--head", f"--port={settings.ray_port}",
                             f"--node-ip-address={head}"]) + " || exit 2"
    serve = ServeCommand((*_vllm_serve(settings, port, tp), "--distributed-executor-backend=ray",
                          *settings.args), _vllm_env(nodes[0], settings), (*setup, start_head))
    return [serve, *(ServeCommand(("ray", "start", f"--address={head}:{settings.ray_port}",
                                   f"--node-ip-address={node.cluster_ip}", "--block"),
                                  _vllm_env(node, settings), setup) for node in nodes[1:])]


def _vllm_data_parallel(nodes: Sequence[NodeSpec], settings: ServeSettings, port: int,
                        mindformers_home: str) -> list[ServeCommand]:
    dp = settings.data_parallel or len(nodes)
    if dp % len(nodes):
        raise ValueError(f"serve.data_parallel {dp} must be a multiple of the {len(nodes)} nodes")
    local = dp // len(nodes)
    tp = settings.tensor_parallel or max(1, nodes[0].devices // local)
    commands = []
    for rank, node in enumerate(nodes):
        argv = [*_vllm_serve(settings, port, tp), "--data-parallel-size", str(dp),
                "--data-parallel-size-local", str(local), "--data-parallel-start-rank", str(rank * local),
                "--data-parallel-address", nodes[0].cluster_ip,
                "--data-parallel-rpc-port", str(settings.rpc_port)]
        argv += ["--enable-expert-parallel"] if settings.expert_parallel else []
        argv += ["--headless"] if rank else []
        commands.append(ServeCommand((*argv, *settings.args), _vllm_env(node, settings),
                                     _vllm_setup(settings, mindformers_home)))
    return commands
