"""The MindFormers loss-line format: every real line in the reference parses; what we write parses back."""

import math
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.logformat import LossRecord, format_loss_line, format_progress_line, parse_loss_line

SAMPLES = (Path(__file__).parent / "samples" / "loss-lines.txt").read_text(encoding="utf-8").splitlines()


def test_every_reference_line_parses_with_its_step_and_loss():
    records = [parse_loss_line(line) for line in SAMPLES]
    assert all(r is not None for r in records)
    steps_losses = [(r.step, r.loss) for r in records if r]
    assert steps_losses[:5] == [(1, 10.649), (2, 10.633), (3, 9.673), (4, 9.287), (5, 8.867)]
    # epoch 2 of 3 at step 100/100: global step 200; `loss:[cur/mean]` takes the current value
    assert steps_losses[6] == (200, 3.5)
    assert steps_losses[-2:] == [(1, 11.813965), (2, 11.755612)]


def test_details_are_read_despite_version_drift():
    first = parse_loss_line(SAMPLES[0])
    assert first is not None
    assert (first.per_step_ms, first.lr, first.throughput_tflops) == (103328, 0.0, 2.896)
    assert first.global_norm is None  # printed as "[1 31049]": no guess
    third = parse_loss_line(SAMPLES[2])  # "global_norm [10.579812]" without the colon
    assert third is not None and third.global_norm == 10.579812
    moe = parse_loss_line(SAMPLES[5])
    assert moe is not None
    assert moe.parts == {"lm_loss": 10.001234, "load_balancing_loss": 0.12, "mtp_loss": 0.002222}
    assert (moe.lr, moe.global_norm, moe.total_steps) == (9.999e-05, 3.2145, 1000)
    pynative = parse_loss_line(SAMPLES[-1])
    assert pynative is not None
    assert (pynative.per_step_ms, pynative.lr, pynative.global_norm, pynative.throughput_tflops) == \
        (710, 1e-05, 19.926786, 25.92)
    assert pynative.epoch is None and pynative.total_steps == 10


def test_a_non_last_pipeline_stage_has_no_loss():
    line = ("{ step:[    3/   10], loss: N/A (non-last PP stage, refer to last stage for real loss), "
            "per_step_time:    700ms, lr: 1.000000e-05, grad_norm:  10.000000 }")
    record = parse_loss_line(line)
    assert record is not None and record.step == 3 and record.loss is None and record.per_step_ms == 700


@pytest.mark.parametrize("line", [
    "", "Traceback (most recent call last):", "  1.2% |   | 1.75123 samples/s/p  1:15:12 }",
    "{ Epoch:[  1/  1], step:[", ".........Starting Training Model..........",
])
def test_lines_without_a_loss_give_none(line: str):
    assert parse_loss_line(line) is None


def test_nan_loss_stays_visible():
    record = parse_loss_line("{ Epoch:[  1/  1], step:[    4/   10], loss: nan, per_step_time: 9ms, "
                             "overflow cond: False, loss_scale: 1.0, global_norm: None")
    assert record is not None and record.loss is not None and math.isnan(record.loss)


finite = st.floats(min_value=0, max_value=1e4, allow_nan=False)


@given(epoch=st.integers(1, 99), steps=st.integers(1, 99999), loss=finite, lr=finite, norm=finite,
       ms=st.integers(0, 10**7), mtp=st.one_of(st.none(), finite))
def test_what_we_write_parses_back(*, epoch: int, steps: int, loss: float, lr: float, norm: float, ms: int,
                                   mtp: float | None):
    parts = {"lm_loss": loss} if mtp is None else {"lm_loss": loss, "mtp_loss": mtp}
    written = LossRecord(step=(epoch - 1) * steps + steps, total_steps=99 * steps, loss=loss, epoch=epoch,
                         epochs=99, step_in_epoch=steps, steps_per_epoch=steps, per_step_ms=ms, lr=lr,
                         global_norm=norm, throughput_tflops=1.5, parts=parts)
    prefix = "2026-11-28 12:00:00,000 - mindformers[x.py:1] - INFO - "
    read = parse_loss_line(prefix + format_loss_line(written))
    assert read is not None
    assert (read.step, read.total_steps, read.per_step_ms, read.throughput_tflops) == \
        (written.step, written.total_steps, ms, 1.5)
    assert read.loss == pytest.approx(loss, abs=1e-6)
    assert read.lr == pytest.approx(lr, rel=1e-5, abs=1e-300)
    assert read.global_norm == pytest.approx(norm, abs=1e-6)
    assert read.parts.keys() == parts.keys()


def test_progress_line_matches_mindformers_layout():
    line = format_progress_line(0.667, 8.10372, timedelta(days=1, hours=3, minutes=26, seconds=5))
    assert line == "  66.7% |" + "█" * 33 + " " * 17 + "| 8.10372 samples/s/p  1 day, 3:26:05 }"
    assert parse_loss_line(line) is None
