"""Predict jobs planned without nodes: MindFormers' predict command rendered byte for byte, this
project's model.predict with every prompt an argument of its own, the kind chosen by the job file or
the request, the checkpoint rendered into the config and named with the node when preflight misses it."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from console.jobs.answer import JobAnswer
from console.jobs.plan import PROMPTS_NAME, PlanError, launch_settings
from console.jobs.predict import PredictAsk, PredictOutcome, machines_without, predict_request
from console.jobs.preflight import Readings, judge
from console.jobs.request import check_checkpoint, checkpoint_override, predict_inputs
from console.records import JobRecord
from model.overrides import derive
from remote.paths import MissingPath
from tests.test_job_plan import NODES, plan_for

PROMPTS = ("请介绍一下北京", "Return the number of")


def test_the_mindformers_predict_is_the_deepseek_readmes_command_with_a_prompts_file():
    plan = plan_for(style="mindformers", kind="predict", prompts=PROMPTS)
    assert plan.nodes[1].script.splitlines()[-1] == (
        "exec bash /home/work/mindformers/scripts/msrun_launcher.sh 'run_mindformer.py --register_path "
        "research/deepseek3 --config '\"$JOB_DIR\"/'config.yaml --run_mode predict --use_parallel True "
        "--predict_data '\"$JOB_DIR\"/'prompts.txt --predict_batch_size 2' 24 8 192.168.0.0 8118 1 "
        "\"$JOB_DIR\"/logs True 600")
    assert plan.files == ((PROMPTS_NAME, "请介绍一下北京\nReturn the number of\n"),)
    assert plan.as_json()["kind"] == "predict" and plan.as_json()["prompts"] == list(PROMPTS)
    # what the launcher receives: the job directory expanded in both places, the rest one word
    line = plan.nodes[1].script.splitlines()[-1].removeprefix("exec ")
    words = subprocess.run(["sh", "-c", f'JOB_DIR=/j; set -- {line}; printf "%s\\n" "$3"'],
                           capture_output=True, text=True, check=True).stdout
    assert "--config /j/config.yaml" in words and "--predict_data /j/prompts.txt" in words


def test_the_model_predict_gets_each_prompt_as_one_argument():
    hostile = "it's $(reboot) \"quoted\"\nand two lines"
    plan = plan_for(style="model", kind="predict", prompts=(hostile, "b"), max_new_tokens=8)
    assert plan.nodes[0].argv[-9:] == ("code/model/predict.py", "--config", "config.yaml", "--prompt",
                                       hostile, "--prompt", "b", "--max-new-tokens", "8")
    assert plan.files == ()
    done = subprocess.run(["sh", "-n"], input=plan.nodes[0].script, text=True, capture_output=True,
                          check=False)
    assert done.returncode == 0, done.stderr


def test_a_predict_job_needs_prompts_and_mindformers_one_a_line():
    with pytest.raises(PlanError, match="needs a prompt"):
        plan_for(style="model", kind="predict")
    with pytest.raises(PlanError, match="line break"):
        plan_for(style="mindformers", kind="predict", prompts=("two\nlines",))
    with pytest.raises(PlanError, match="one given is blank"):
        plan_for(style="model", kind="predict", prompts=("a", "  "))
    with pytest.raises(PlanError, match="takes no prompts"):
        plan_for(style="msrun", kind="predict", prompts=("a",), script="train.py")
    for wrong in (0, -1, True, "9"):
        with pytest.raises(PlanError, match="max_new_tokens must be a whole number"):
            launch_settings({"console": {"kind": "predict", "max_new_tokens": wrong}}, "j")


def test_the_job_file_chooses_the_kind_and_its_prompts():
    settings = launch_settings({"console": {"kind": "predict", "prompts": "hello", "max_new_tokens": 9}}, "j")
    assert (settings.kind, settings.prompts, settings.max_new_tokens) == ("predict", ("hello",), 9)
    assert launch_settings({"console": {"entry": "predict"}}, "j").kind == "predict"  # the older name
    with pytest.raises(PlanError, match="kind must be one of train, predict, serve"):
        launch_settings({"console": {"kind": "chat"}}, "j")
    with pytest.raises(PlanError, match="prompts must be"):
        launch_settings({"console": {"prompts": [1]}}, "j")


def test_the_checkpoint_is_rendered_into_the_config_and_must_be_absolute(tmp_path: Path):
    template = Path(__file__).resolve().parent.parent / "configs" / "jobs" / "tiny_local.yaml"
    text = derive(template, checkpoint_override("/data/it's here/tiny_rank_0-1_20.ckpt"))
    assert predict_inputs(text) == {"checkpoint": "/data/it's here/tiny_rank_0-1_20.ckpt"}
    check_checkpoint(predict_inputs(text))
    with pytest.raises(PlanError, match="needs a checkpoint"):
        check_checkpoint(predict_inputs(template.read_text()))
    with pytest.raises(PlanError, match=r"checkpoint 'output/x\.ckpt': give its absolute path"):
        check_checkpoint({"checkpoint": "output/x.ckpt"})
    check_checkpoint({"pretrained_model_dir": "/weights/deepseek-v3"})  # MindFormers' Hugging Face form


def test_a_missing_checkpoint_is_named_with_its_node():
    plan = plan_for(style="model", kind="predict", prompts=("x",))
    path = "/data/ckpt/tiny_rank_0-1_20.ckpt"
    readings = Readings(health=[], port=8118, bytes_to_copy=0, missing=[MissingPath(path, ("n1", "n2"))],
                        problems=(), roles={path: "checkpoint"})
    verdict = judge(plan, readings)
    assert not verdict.go
    assert [(v.node, v.message) for v in verdict.blocking] == [
        ("n1", f"checkpoint {path} is not on n1"), ("n2", f"checkpoint {path} is not on n2")]


def test_predicting_from_a_training_job_asks_for_its_nodes_style_and_config():
    plan = {"style": "model", "nodes": [{"node": "node0", "machines": ["node0", "node1"]},
                                        {"node": "node2", "machines": ["node2"]}]}
    trained = JobRecord("20261206-120000-tiny", "tiny", "local", "c.yaml", "seed: 0\n", plan=plan)
    request = predict_request(trained, Path("/tmp/t/tiny.yaml"), "/w/ckpt/tiny_rank_0-1_20.ckpt",
                              PredictAsk(("a", "b"), 12))
    assert (request.nodes, request.style, request.name, request.kind) == ("node[0-2]", "model",
                                                                          "tiny-predict", "predict")
    assert (request.prompts, request.checkpoint, request.max_new_tokens) == (
        ("a", "b"), "/w/ckpt/tiny_rank_0-1_20.ckpt", 12)


def test_the_checkpoint_goes_to_each_other_machine_of_the_training_once():
    # Every rank loads the checkpoint; nodes sharing an address share a disk and get no copy.
    shared = replace(NODES[0], name="n0b")
    nodes = (NODES[0], shared, NODES[1], NODES[2])
    assert [n.name for n in machines_without("n0", nodes)] == ["n1", "n2"]
    assert [n.name for n in machines_without("n1", nodes)] == ["n0", "n2"]
    assert machines_without("n0", (NODES[0], shared)) == []


def test_a_predict_with_an_answer_and_a_failure_is_no_success():
    answered = JobAnswer("n0", 0, ("x",), ())
    assert PredictOutcome("j", "/c", answered).ok
    assert not PredictOutcome("j", "/c", answered, failure="n1 exited 1").ok
