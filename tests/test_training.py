"""Training for real on the CPU: the loss falls on the embedded corpus, SIGTERM saves and exits cleanly,
and under real msrun two ranks stay identical while each logs MindFormers' loss lines."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest

from model.deepseek.checkpoint import saved_checkpoints
from tests.rank_jobs import (
    TRAIN_SCRIPT,
    free_port,
    loss_records,
    rank_environment,
    run_single_rank,
    write_job,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tmp_path_factory.mktemp("corpus")


def test_loss_falls_by_a_third_on_the_embedded_corpus(tmp_path, corpus):
    job = write_job(tmp_path, "callbacks[0].per_print_times=1")
    done = run_single_rank(job, corpus, tmp_path / "out", "--max-steps", "400")
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    records = loss_records(done.stdout)
    assert [r.step for r in records] == list(range(1, 401))
    losses = [r.loss for r in records if r.loss is not None]
    first, last = losses[0], np.mean(losses[-20:])
    assert last <= 0.7 * first, (first, last)
    assert "no data_path: training on the embedded corpus" in done.stdout
    assert ".........Training Over!............." in done.stdout


def test_pynative_mode_trains_too(tmp_path, corpus):
    job = write_job(tmp_path, "context.mode=1")
    done = run_single_rank(job, corpus, tmp_path / "out", "--max-steps", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    assert [r.step for r in loss_records(done.stdout)] == [1, 2, 3]


def test_a_resumed_run_is_the_run_that_was_not_interrupted(tmp_path, corpus):
    """Graph mode: the resumed steps give the very losses of an uninterrupted run, so the weights,
    the optimizer's moments, the schedule's position and the experts' biases all came back."""
    job = write_job(tmp_path, "callbacks[0].per_print_times=1")
    straight = run_single_rank(job, corpus, tmp_path / "straight", "--max-steps", "6")
    assert straight.returncode == 0, straight.stderr[-3000:]
    assert run_single_rank(job, corpus, tmp_path / "out", "--max-steps", "4").returncode == 0
    (tmp_path / "resumed").mkdir()
    resumed_job = write_job(tmp_path / "resumed", f"load_checkpoint={tmp_path / 'out' / 'checkpoint'}",
                            "resume_training=true", "callbacks[0].per_print_times=1")
    done = run_single_rank(resumed_job, corpus, tmp_path / "out", "--max-steps", "6")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "tiny_rank_0-1_4.ckpt (step 4)" in done.stdout
    resumed = loss_records(done.stdout)
    assert [r.step for r in resumed] == [5, 6]
    assert [(r.loss, r.lr) for r in resumed] == [(r.loss, r.lr) for r in loss_records(straight.stdout)[4:]]


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path, corpus):
    job = write_job(tmp_path, "callbacks[0].per_print_times=1")
    rank = subprocess.Popen([sys.executable, str(TRAIN_SCRIPT), "--config", str(job), "--output-dir",
                             str(tmp_path / "out")], env=rank_environment(corpus), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert rank.stdout is not None
    lines = []
    for line in rank.stdout:  # wait for training to be under way
        lines.append(line)
        if loss_records(line):
            break
    rank.send_signal(signal.SIGTERM)
    rest, _ = rank.communicate(timeout=120)
    output = "".join(lines) + rest
    assert rank.returncode == 0, output[-3000:]
    stopped_at = loss_records(output)[-1].step
    saved = saved_checkpoints(tmp_path / "out" / "checkpoint" / "rank_0", "tiny", 0)
    assert [s.step for s in saved] == [stopped_at]
    assert f"stopping on signal {int(signal.SIGTERM)} after step {stopped_at}" in output
    assert "Training Over" not in output


def msrun_command(tmp_path: Path, job: Path, steps: int) -> list[str]:
    return [str(Path(sys.executable).parent / "msrun"), "--worker_num", "2", "--local_worker_num", "2",
            "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
            "--log_dir", str(tmp_path / "logs"), "--join", "True", "--cluster_time_out", "120",
            str(TRAIN_SCRIPT), "--config", str(job),
            "--max-steps", str(steps), "--output-dir", str(tmp_path / "out")]


def msrun(tmp_path: Path, corpus: Path, job: Path, steps: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(msrun_command(tmp_path, job, steps), env=rank_environment(corpus),
                          capture_output=True, text=True, timeout=900, check=False)


def test_one_rank_told_to_stop_stops_both_at_the_same_step(tmp_path, corpus):
    """Nodes get the console's SIGTERM at different moments: the ranks agree on one step, both save."""
    job = write_job(tmp_path, "callbacks[0].per_print_times=1")
    run = subprocess.Popen(msrun_command(tmp_path, job, steps=100000), env=rank_environment(corpus),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        log = tmp_path / "logs" / "worker_0.log"
        for _ in range(300):
            if log.exists() and loss_records(log.read_text(errors="replace")):
                break
            time.sleep(1)
        [rank_0] = [pid for pid in rank_pids(job)
                    if {"MS_ROLE=MS_WORKER", "MS_NODE_ID=0"} <= set(environ_of(pid).splitlines())]
        os.kill(rank_0, signal.SIGTERM)
        assert run.wait(timeout=300) == 0
    finally:
        run.kill()
    saved = [saved_checkpoints(tmp_path / "out" / "checkpoint" / f"rank_{r}", "tiny", r)[-1] for r in (0, 1)]
    assert saved[0].step == saved[1].step
    rank_1_log = (tmp_path / "logs" / "worker_1.log").read_text(errors="replace")
    assert f"stopping on signal (another rank's) after step {saved[1].step}" in rank_1_log


def rank_pids(job: Path) -> list[int]:
    """Processes whose command line names this job's config (msrun's ranks and its scheduler)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(job).encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue  # gone meanwhile
    return found


def environ_of(pid: int) -> str:
    return Path(f"/proc/{pid}/environ").read_bytes().replace(b"\0", b"\n").decode(errors="replace")


def parameters(checkpoint: Path):
    return {name: value.asnumpy() for name, value in ms.load_checkpoint(str(checkpoint)).items()}


def test_two_ranks_under_msrun_stay_identical_and_log_loss_lines(tmp_path, corpus):
    job = write_job(tmp_path, "callbacks[0].per_print_times=1")
    done = msrun(tmp_path, corpus, job, steps=12)
    logs = {rank: (tmp_path / "logs" / f"worker_{rank}.log").read_text(errors="replace") for rank in (0, 1)}
    assert done.returncode == 0, (done.stderr[-2000:], logs[0][-3000:], logs[1][-3000:])
    records = {rank: loss_records(text) for rank, text in logs.items()}
    assert [r.step for r in records[0]] == [r.step for r in records[1]] == list(range(1, 13))
    # each rank trains on its own shard of the data...
    assert [r.loss for r in records[0]] != [r.loss for r in records[1]]
    assert "rank 1 of 2" in logs[1]
    # ...and the all-reduced gradients and loads keep every parameter, expert biases included, identical
    final = [saved_checkpoints(tmp_path / "out" / "checkpoint" / f"rank_{rank}", "tiny", rank)[-1]
             for rank in (0, 1)]
    assert final[0].step == final[1].step == 12
    rank_0, rank_1 = parameters(final[0].path), parameters(final[1].path)
    assert rank_0.keys() == rank_1.keys()
    biases = [name for name in rank_0 if name.endswith("router.bias")]
    assert biases and any(np.any(rank_0[name] != 0) for name in biases)
    for name in rank_0:
        np.testing.assert_array_equal(rank_0[name], rank_1[name], err_msg=name)
