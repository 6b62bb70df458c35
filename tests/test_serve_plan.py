"""Serve jobs planned without nodes, launch.sh byte for byte: vLLM-MindSpore on one node (in a
container too), on two with Ray (the head starts Ray then serves, the other joins and blocks) and in
its data-parallel multiprocess mode (every node serves its replicas, the other headless), MindIE's
daemon, and this project's model.serve; their endpoints; the job file's `console.serve:` section read
and checked. Neither vLLM-MindSpore nor MindIE can run here (no NPUs): these bytes are what is tested."""

from __future__ import annotations

import dataclasses
import subprocess

import pytest

from console.jobs.plan import PlanError, launch_settings
from console.jobs.preflight import input_paths
from console.jobs.servespec import ServeEndpoint, ServeSettings
from model.config import parse_spec
from tests.rank_jobs import TINY_LOCAL
from tests.test_job_plan import NODES, plan_for

VLLM_ENV = ("export MS_ENABLE_LCCL=off\nexport HCCL_OP_EXPANSION_MODE=AIV\n"
            "export MS_ALLOC_CONF=enable_vmm:true\n"
            "export ASCEND_RT_VISIBLE_DEVICES=0,1,2,3,4,5,6,7\nexport VLLM_MS_MODEL_BACKEND=mindformers\n")
VLLM_SETUP = (". /usr/local/Ascend/ascend-toolkit/set_env.sh\n"
              'export PYTHONPATH=/home/work/mindformers"${PYTHONPATH:+:$PYTHONPATH}"\n')
JOB = parse_spec(TINY_LOCAL.read_text(), "tiny_local.yaml")
SERVE = ("exec vllm-mindspore serve --model=/data/deepseek-v3 --trust-remote-code --host 127.0.0.1 "
         "--port 8118 ")
DP = ("--tensor-parallel-size 4 --data-parallel-size 4 --data-parallel-size-local 2 "
      "--data-parallel-start-rank "
      "{start} --data-parallel-address 192.168.0.0 --data-parallel-rpc-port 12370 --enable-expert-parallel")


def head(node: int) -> str:
    """What every launch.sh starts with: the cluster file's env_setup, the interpreter, the marker."""
    return (f"#!/bin/sh\n# ascend-console job 20261128-120000-job: node n{node}, node_rank {node}. This file "
            f"is what runs.\nJOB_DIR=$(pwd)\nsource /usr/local/Ascend/set_env.sh\nexport PATH=/opt/ms/bin:"
            f"\"$PATH\"\nexport ASCEND_CONSOLE_JOB=20261128-120000-job@n{node}\n")


def vllm(**settings: object) -> ServeSettings:
    return ServeSettings(engine="vllm", model="/data/deepseek-v3", **settings)  # type: ignore[arg-type]


def test_vllm_on_one_node_serves_with_its_tutorials_environment():
    plan = plan_for(NODES[:1], kind="serve",
                    serve=vllm(served_model_name="deepseek-v3",
                               args=("--max-num-seqs=256", "--block-size=128")))
    assert plan.nodes[0].script == head(0) + VLLM_ENV + VLLM_SETUP + SERVE + (
        "--served-model-name deepseek-v3 --tensor-parallel-size 8 --max-num-seqs=256 --block-size=128\n")
    assert plan.serve == ServeEndpoint("vllm", "n0", "/home/work/jobs/20261128-120000-job", "127.0.0.1", 8118,
                                       "Application startup complete.", "/health", 900.0, "/data/deepseek-v3")
    assert input_paths(plan, JOB) == {"/data/deepseek-v3": "weights"}  # the config's paths are not vLLM's
    assert plan.as_json()["serve"]["endpoint"] == "http://127.0.0.1:8118" and plan.style == "mindformers"
    assert not plan.ships_code


def test_vllm_with_ray_starts_the_head_then_serves_and_the_other_node_joins():
    plan = plan_for(NODES[:2], kind="serve", serve=vllm(nic="enp189s0f0"))
    nics = "".join(f"export {name}=enp189s0f0\n" for name in ("GLOO_SOCKET_IFNAME", "HCCL_SOCKET_IFNAME",
                                                               "TP_SOCKET_IFNAME"))
    assert plan.nodes[0].script == head(0) + VLLM_ENV + nics + VLLM_SETUP + (
        "ray start --head --port=6379 --node-ip-address=192.168.0.0 || exit 2\n" + SERVE +
        "--tensor-parallel-size 16 --distributed-executor-backend=ray\n")
    assert plan.nodes[1].script == head(1) + VLLM_ENV + nics + VLLM_SETUP + (
        "exec ray start --address=192.168.0.0:6379 --node-ip-address=192.168.0.1 --block\n")
    assert plan.serve is not None and plan.serve.node == "n0"


def test_vllm_data_parallel_serves_on_every_node_the_other_headless():
    plan = plan_for(NODES[:2], kind="serve",
                    serve=vllm(multi_node="mp", data_parallel=4, tensor_parallel=4, expert_parallel=True))
    assert plan.nodes[0].script == head(0) + VLLM_ENV + VLLM_SETUP + SERVE + DP.format(start=0) + "\n"
    assert plan.nodes[1].script == (head(1) + VLLM_ENV + VLLM_SETUP + SERVE + DP.format(start=2)
                                    + " --headless\n")
    with pytest.raises(PlanError, match="data_parallel 3 must be a multiple of the 2 nodes"):
        plan_for(NODES[:2], kind="serve", serve=vllm(multi_node="mp", data_parallel=3))


def test_mindie_runs_its_daemon_in_its_service_directory():
    plan = plan_for(NODES[:1], kind="serve", serve=ServeSettings(engine="mindie"))
    assert plan.nodes[0].script == head(0) + (
        ". /usr/local/Ascend/ascend-toolkit/set_env.sh\ncd /usr/local/Ascend/mindie/latest/mindie-service || "
        "exit 2\nexec ./bin/mindieservice_daemon\n")
    assert plan.serve is not None
    assert (plan.serve.ready_line, plan.serve.health_path) == ("Daemon start success!", None)
    with pytest.raises(PlanError, match="MindIE's daemon is planned on one node"):
        plan_for(NODES[:2], kind="serve", serve=ServeSettings(engine="mindie"))


def test_the_model_engine_serves_the_shipped_model_on_the_nodes_127_0_0_1():
    plan = plan_for(NODES[:1], kind="serve", style="model", serve=ServeSettings(model="/ckpt/it's.ckpt"))
    assert plan.nodes[0].script == head(0) + (
        'export PYTHONPATH="$JOB_DIR/code${PYTHONPATH:+:$PYTHONPATH}"\n'
        "exec /opt/ms/bin/python -m model.serve --config config.yaml --host 127.0.0.1 --port 8118 "
        "--served-model-name job --checkpoint '/ckpt/it'\"'\"'s.ckpt'\n")
    assert plan.ships_code and plan.serve is not None and plan.serve.url == "http://127.0.0.1:8118"
    assert input_paths(plan, JOB) == {"/ckpt/it's.ckpt": "weights"}
    for node in plan.nodes:
        done = subprocess.run(["sh", "-n"], input=node.script, text=True, capture_output=True, check=False)
        assert done.returncode == 0, done.stderr
    with pytest.raises(PlanError, match=r"model\.serve runs on one node"):
        plan_for(NODES[:2], kind="serve", style="model")


def test_a_containerised_node_serves_in_its_container():
    boxed = dataclasses.replace(NODES[0], container="vllm-ms")
    plan = plan_for((boxed,), kind="serve", serve=vllm())
    node = plan.nodes[0]
    assert node.container_script is not None and "vllm-mindspore serve" in node.container_script
    assert node.script.splitlines()[-1] == (
        'exec docker exec --workdir "$(pwd)" --env ASCEND_CONSOLE_JOB=20261128-120000-job@n0 vllm-ms '
        "sh ./launch-in-container.sh")


def test_vllm_needs_its_weights():
    with pytest.raises(PlanError, match=r"needs console\.serve\.model"):
        plan_for(NODES[:1], kind="serve", serve=ServeSettings(engine="vllm"))


def test_the_job_file_serve_section_is_read_and_checked():
    settings = launch_settings({"console": {"kind": "serve", "serve": {
        "engine": "vllm", "port": "8100", "model": "/w", "args": "--max-num-seqs=256 --block-size=128",
        "multi_node": "mp"}}}, "j")
    assert settings.kind == "serve" and settings.serve == ServeSettings(
        engine="vllm", port=8100, model="/w", args=("--max-num-seqs=256", "--block-size=128"),
        multi_node="mp")
    with pytest.raises(PlanError, match=r"serve\.engine must be one of model, vllm, mindie"):
        launch_settings({"console": {"serve": {"engine": "triton"}}}, "j")
    with pytest.raises(PlanError, match="serve: unknown key"):
        launch_settings({"console": {"serve": {"prot": 1}}}, "j")
