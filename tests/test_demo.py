"""`ascend-console demo`: the pure parts of console/jobs/demo.py and console/jobs/ask.py (the checkpoint
asked, predict's answer read back, the verdict on a training, the loss series of one rank), and the
headless demo itself, for real, on a clean state: the embedded local cluster, a fresh corpus, msrun,
a short training whose loss must fall, and the trained model's answer."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from console.jobs.ask import answer_text, checkpoint_dir, newest_checkpoint, predict_argv
from console.jobs.demo import (
    DemoOptions,
    LossPoint,
    LossTrack,
    Training,
    corpus_shape,
    demo_job_path,
    demo_request,
    plan_events,
)
from console.jobs.joblog import JobEvent, JobLogBatch
from console.jobs.logfiles import LogFile
from console.jobs.plan import LaunchSettings, make_plan
from console.jobs.request import PlannedJob
from model.config import parse_spec
from model.logformat import LossRecord
from model.loglines import LogEvent
from remote.inventory import NodeSpec, embedded_default_path, load_cluster

REPO = Path(__file__).resolve().parent.parent


def test_the_newest_rank_0_checkpoint_is_the_latest_epoch_and_step():
    names = ["tiny_rank_0-1_100.ckpt\n", "tiny_rank_0-1_200.ckpt", "tiny_rank_1-1_300.ckpt",
             "tiny_rank_0-1_30.ckpt", "notes.txt", "tiny_rank_0-1_200.ckpt.part"]
    assert newest_checkpoint(names) == "tiny_rank_0-1_200.ckpt"
    assert newest_checkpoint(["a.txt"]) is None


def test_the_answer_is_read_from_the_last_result_line_without_the_begin_token():
    """ask.py's reading of model.predict's output (model/answers.py parses the line)."""
    bos = "<\uff5cbegin\u2581of\u2581sentence\uff5c>"
    output = ("2026-12-06 22:14:01 - model[predict.py:60] - INFO - output result is: "
              f"[{{'text_generation_text': ['{bos}Return the number of lines\\n in it']}}]\n")
    assert answer_text("noise\n" + output) == "Return the number of lines\n in it"
    assert answer_text("Traceback (most recent call last):\n") is None
    assert answer_text("output result is: [not python") is None


def test_checkpoints_are_under_the_configs_output_dir():
    assert checkpoint_dir("output_dir: './out'\n") == "./out/checkpoint/rank_0"
    assert checkpoint_dir("seed: 0\n") == "./output/checkpoint/rank_0"


def test_predict_runs_the_nodes_env_setup_first_and_passes_every_word_as_an_argument():
    node = NodeSpec(name="n0", host="h", cluster_ip="h", python="/opt/ms/bin/python",
                    env_setup=("source /usr/local/Ascend/set_env.sh",))
    argv = predict_argv(node, checkpoint="output/checkpoint/rank_0/x.ckpt", prompt="it's $HOME; rm -rf /",
                        max_new_tokens=8)
    assert argv[:2] == ["sh", "-c"]
    assert argv[2].splitlines()[0] == "source /usr/local/Ascend/set_env.sh"
    assert argv[2].splitlines()[-1] == 'exec "$@"'
    assert argv[3:] == ["sh", "/opt/ms/bin/python", "-m", "model.predict", "--config", "config.yaml",
                        "--checkpoint", "output/checkpoint/rank_0/x.ckpt", "--prompt",
                        "it's $HOME; rm -rf /", "--max-new-tokens", "8"]
    shlex.join(argv)  # what the transport sends: one quoted word each


def point(step: int, loss: float) -> LossPoint:
    return LossPoint(step, 200, loss)


def test_a_training_passes_only_ended_well_with_the_loss_lower_at_the_end():
    nodes = ("node0", "node1")
    good = Training("j", {"node0": 0, "node1": 0}, nodes, first=point(1, 9.9), last=point(200, 4.1))
    assert good.ended_well and good.verdict is None
    assert Training("j", {"node0": 0, "node1": 0}, nodes, first=point(1, 4.0),
                    last=point(200, 4.1)).verdict == ("the loss did not fall: 4.0000 at step 1, 4.1000 at "
                                                      "step 200")
    assert Training("j", {"node0": 0}, nodes, first=point(1, 9.9), last=point(200, 4.1)).verdict == (
        "training did not end well (exit codes: node0 0, node1 no exit code)")
    assert Training("j", {"node0": 1, "node1": 0}, nodes).verdict == (
        "training did not end well (exit codes: node0 1, node1 0)")
    assert Training("j", {"node0": 0, "node1": 0}, nodes, ("node1: store locked",)).verdict == (
        "node1: store locked")
    one_step = Training("j", {"node0": 0, "node1": 0}, nodes, first=point(5, 9.0), last=point(5, 9.0))
    assert one_step.verdict == "training ended without two loss steps to compare"


def loss_event(rank: int, step: int, loss: float | None) -> JobEvent:
    record = LossRecord(step=step, total_steps=30, loss=loss)
    event = LogEvent(kind="loss", severity="info", line=step, time=None, message="", lines=(), loss=record)
    return JobEvent(LogFile("node0", f"logs/worker_{rank}.log", "worker", rank), event, rank, None)


def test_the_loss_series_is_one_ranks_each_step_once():
    track = LossTrack(0)
    first = track.take(JobLogBatch("node0", events=(loss_event(0, 1, 9.9), loss_event(1, 1, 9.8),
                                                    loss_event(0, 2, 9.5))))
    again = track.take(JobLogBatch("node0", events=(loss_event(0, 2, 9.5), loss_event(0, 3, None),
                                                    loss_event(0, 4, 9.0))))
    assert [p.step for p in first] == [1, 2] and [p.step for p in again] == [4]
    assert track.first == LossPoint(1, 30, 9.9) and track.last == LossPoint(4, 30, 9.0)


def test_the_demos_job_is_the_tiny_model_and_steps_become_samples():
    assert corpus_shape(demo_job_path()) == (2048, 128)
    assert demo_request(DemoOptions()).overrides == ()
    # batch 8 per rank, two data-parallel ranks
    assert demo_request(DemoOptions(steps=20)).overrides == ("train_dataset.data_loader.sizes=[320, 0, 0]",)


def test_the_plan_says_the_two_local_nodes_share_one_msrun():
    cluster = load_cluster(embedded_default_path())
    text = demo_job_path().read_text()
    plan = make_plan(cluster, cluster.nodes, template="tiny_local.yaml", overrides=(), config_text=text,
                     settings=LaunchSettings(), job_id="20261206-120000-tiny_local", master_port=8118)
    planned = PlannedJob(request=demo_request(DemoOptions()), plan=plan, job=parse_spec(text, "t.yaml"),
                         nodes=cluster.nodes, port_note="free on node0")
    events = plan_events(planned)
    assert "2 rank(s) on 2 node(s) in 1 msrun(s), master 127.0.0.1:8118" in events[0].message
    assert events[1].node == "node0"
    assert events[1].message.endswith("; one msrun for node0, node1: they share one machine address, and "
                                      "msrun starts a scheduler on every machine that owns the master "
                                      "address")


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ASCEND_CONSOLE_CLUSTER", "ASCEND_CONSOLE_STATE")}
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_CACHE_HOME=str(tmp_path / "cache"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               ASCEND_CONSOLE_CORPUS=str(tmp_path / "corpus"))
    return env


def test_the_headless_demo_trains_for_real_on_a_clean_state_and_the_model_answers(tmp_path: Path):
    done = subprocess.run([sys.executable, "-m", "console.cli", "demo", "--headless", "--steps", "20",
                           "--train-limit", "900"],
                          cwd=REPO, env=clean_env(tmp_path), capture_output=True, text=True, timeout=1200)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    titles = [line for line in out.splitlines() if line.startswith("== ")]
    assert titles == ["== the nodes", "== the embedded corpus", "== the plan", "== launch", "== training",
                      "== the end", "== the trained model"]
    assert "  built: " in out  # the corpus was prepared here, in the clean directory
    assert (tmp_path / "corpus" / "tokenizer.json").is_file()
    assert "node0: step 1/20 loss " in out and "node0: step 20/20 loss " in out
    assert "node0: msrun exited 0" in out and "demo passed: training ended: loss " in out
    answer = out.split("== the trained model", 1)[1]
    assert "node0: Return the number of" in answer
    jobs = list((tmp_path / "data" / "ascend-console" / "local" / "node0" / "jobs").iterdir())
    assert len(jobs) == 1 and (jobs[0] / "exit_code").read_text().strip() == "0"
    assert (tmp_path / "state" / "ascend-console").is_dir()  # the store: this session's own


def test_a_node_that_cannot_be_reached_stops_the_demo_at_the_check_with_the_reason(tmp_path: Path):
    cluster = tmp_path / "gone.yaml"
    cluster.write_text("name: gone\nnodes:\n  - {name: n0, host: 127.0.0.1, port: 1, connect_timeout: 2}\n")
    done = subprocess.run([sys.executable, "-m", "console.cli", "demo", "--headless", "-c", str(cluster)],
                          cwd=REPO, env=clean_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "n0: UNREACHABLE" in done.stdout.replace("failed ", "")
    assert "demo failed: node(s) not fit to run: n0 UNREACHABLE" in " ".join(done.stderr.split())
    assert "== the plan" not in done.stdout
