"""What a rank reads besides the architecture: errors with file and line, and the lr schedules."""

from pathlib import Path

import pytest

from model.runconfig import LearningRate, load_job
from model.yamlsource import SourceError

MODEL = "model: {model_config: {num_layers: 1, hidden_size: 8, num_heads: 1}}\n"


def test_every_bad_value_is_reported_with_its_line(tmp_path: Path):
    path = tmp_path / "job.yaml"
    path.write_text("seed: x\n" + MODEL + "runner_config: {epochs: 0}\nlr_schedule: {type: StepLR}\n"
                    "context: {mode: 3}\n")
    with pytest.raises(SourceError) as error:
        load_job(path)
    assert [str(p).replace(str(path), "job.yaml") for p in error.value.problems] == [
        "job.yaml:1: seed: expected an integer, got 'x'",
        "job.yaml:5: context.mode: expected 0 (graph) or 1 (PyNative), got 3",
        "job.yaml:3: runner_config.epochs: expected 1 or more, got 0",
        "job.yaml:4: lr_schedule.type: unsupported lr_schedule type 'StepLR'; use one of "
        "ConstantWarmUpLR, CosineWithWarmUpLR, LinearWithWarmUpLR",
    ]


def test_the_tiny_local_config_reads_as_written():
    job, run = load_job(Path(__file__).parent.parent / "configs" / "jobs" / "tiny_local.yaml",
                        output_dir="/tmp/out")
    assert (run.graph_mode, run.train_samples, run.output_dir, run.checkpoint.prefix) == \
        (True, 3200, "/tmp/out", "tiny")
    assert job.training.data_prefixes == ()


def test_schedules_warm_up_linearly_then_hold_or_decay_to_the_end():
    constant = LearningRate("constant", peak=1.0, warmup_steps=4)
    assert [constant.at(s, 10) for s in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    cosine = LearningRate("cosine", peak=1.0, warmup_steps=2, end=0.1)
    assert cosine.at(2, 12) == pytest.approx(1.0) and cosine.at(12, 12) == pytest.approx(0.1)
    assert cosine.at(7, 12) == pytest.approx(0.55)
    linear = LearningRate("linear", peak=1.0, warmup_ratio=0.0, end=0.0, total_steps=10)
    assert linear.at(5, 999) == pytest.approx(0.5)
