"""`logs` and `stop` as commands, on jobs built by hand (tests/handjobs.py) and files here: usage errors,
the bounded queue to the terminal, a run lost without an exit code, what --json and text print."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from console.cli import main
from console.commands.logs import BatchQueue
from console.commands.status import progress_table
from console.jobs.follow import JobFollow
from console.jobs.joblog import JobEvent, JobLogBatch
from console.jobs.logfiles import LogFile
from console.jobs.logprinter import LogPrinter
from console.jobs.logrecord import loss_metric
from console.jobs.logview import rank_progress
from console.jobs.runwatch import RunWatch
from console.records import LaunchRecord
from model.logevents import LogEventParser
from remote.follow import FollowNotice
from tests.handjobs import JOB_ID, NODES, WAIT, Batches, hand_job, losses, node_pool, open_store, write

DOCUMENTED = {"node", "rank", "kind", "severity", "time", "time_inferred", "file", "line"}
"""Keys every `logs --json` object has (docs/logs-json.md)."""


def strict_json(line: str) -> dict[str, object]:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")
    return json.loads(line, parse_constant=refuse)  # type: ignore[no-any-return]


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ASCEND_CONSOLE_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("ASCEND_CONSOLE_CORPUS", str(tmp_path / "corpus"))
    return tmp_path / "state"


def stored_hand_job(tmp_path: Path, state: Path) -> Path:
    """The hand-built job in the store `logs` opens; its cluster file."""
    job = hand_job(tmp_path)
    state.mkdir(parents=True, exist_ok=True)
    open_store(state, job).close()
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text("name: hand\nnodes:\n" + "".join(
        f"  - name: {node}\n    transport: local\n    workdir: {tmp_path / node}\n"
        f"    cluster_ip: 127.0.0.1\n    python: {sys.executable}\n" for node in NODES))
    return cluster


# --- usage errors ----------------------------------------------------------------------------------


def test_a_rank_the_job_does_not_have_is_a_usage_error_naming_the_valid_ones(
        tmp_path: Path, state: Path, capsys: pytest.CaptureFixture[str]):
    cluster = stored_hand_job(tmp_path, state)
    assert main(["-c", str(cluster), "logs", JOB_ID, "--rank", "99"]) == 64
    assert "--rank 99: job 20261206-120000-tiny_local has ranks 0-3" in capsys.readouterr().err


def test_a_node_set_that_does_not_parse_is_a_usage_error(tmp_path: Path, state: Path,
                                                         capsys: pytest.CaptureFixture[str]):
    cluster = stored_hand_job(tmp_path, state)
    assert main(["-c", str(cluster), "logs", JOB_ID, "--nodes", "bad[["]) == 64
    err = capsys.readouterr().err
    assert "--nodes bad[[" in err and "Traceback" not in err


def test_stop_wants_at_least_8_characters_of_an_id(tmp_path: Path, state: Path,
                                                   capsys: pytest.CaptureFixture[str]):
    cluster = stored_hand_job(tmp_path, state)
    assert main(["-c", str(cluster), "stop", "2"]) == 64
    assert "at least 8 characters" in capsys.readouterr().err


# --- the queue to the terminal, the end of a lost run ----------------------------------------------


def test_the_queue_to_the_terminal_is_bounded_and_a_closed_one_lets_followers_go():
    batches = BatchQueue(size=2)
    batches.put(JobLogBatch("node0"))
    batches.put(JobLogBatch("node0"))
    third = threading.Thread(target=batches.put, args=(JobLogBatch("node1"),), daemon=True)
    third.start()
    third.join(0.5)
    assert third.is_alive()  # waits for room: a slow terminal slows the followers
    assert batches.get(0).node == "node0"
    third.join(WAIT)
    assert not third.is_alive()
    fourth = threading.Thread(target=batches.put, args=(JobLogBatch("node1"),), daemon=True)
    fourth.start()
    batches.close()
    fourth.join(WAIT)
    assert not fourth.is_alive()


def test_a_node_whose_run_is_gone_without_an_exit_code_ends_the_follow(tmp_path: Path):
    job = hand_job(tmp_path)
    write(job.log(0), losses(1, 2))
    job.exited("node0", 0)
    gone = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    gone.wait()
    (job.dirs["node1"] / "pid").write_text(f"{gone.pid}\n")  # its group is gone, no exit_code written
    sink = Batches()
    with node_pool(tmp_path) as pool, open_store(tmp_path, job) as store:
        store.put_launches([LaunchRecord(JOB_ID, node, index, str(job.dirs[node]), state="running")
                            for index, node in enumerate(NODES)])
        follow = JobFollow(job.record, pool, sink, store=store)
        follow.start()
        try:
            RunWatch(store, pool, JOB_ID, follow).check()
            assert follow.wait(WAIT)
        finally:
            follow.stop()
    assert follow.lost_nodes == {"node1"} and follow.exit_codes == {"node0": 0}


# --- what is printed -------------------------------------------------------------------------------


def test_a_nan_loss_prints_as_json_with_null_and_its_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    log = tmp_path / "worker_0.log"
    log.write_text("{ step:[    1/   10], loss: 2.5, per_step_time: 5ms }\n"
                   "{ step:[    2/   10], loss: nan, per_step_time: 5ms }\n")
    assert main(["logs", "--file", str(log), "--json"]) == 0
    good, bad = [strict_json(line) for line in capsys.readouterr().out.splitlines()]
    assert (good["loss"], "loss_text" in good) == (2.5, False)
    assert (bad["kind"], bad["loss"], bad["loss_text"]) == ("nan_loss", None, "nan")
    assert bad["message"] == "step 2/10 loss nan" and bad["lines"] == [log.read_text().splitlines()[1]]
    assert good.keys() >= DOCUMENTED and bad.keys() >= DOCUMENTED


def test_every_json_object_of_a_followed_job_has_the_documented_keys(capsys: pytest.CaptureFixture[str]):
    printer = LogPrinter(json=True)
    notice = FollowNotice("/w/console.log", "truncated", "node0:/w/console.log was truncated")
    printer.batch(JobLogBatch("node0", notices=(notice,), exit_code=1))
    printer.batch(JobLogBatch("node1", error="OperationalError: database is locked"))
    documents = [strict_json(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["kind"] for d in documents] == ["follow-truncated", "run-ended", "follow-failed"]
    assert all(d.keys() >= DOCUMENTED for d in documents)


def test_text_output_keeps_a_remote_logs_escape_sequences_off_the_terminal():
    out = StringIO()
    printer = LogPrinter(console=Console(file=out, color_system=None, width=200))
    printer.file("/w/worker_0.log", ["\x1b]0;owned\x07\x1b[2Jplain\ttext"], [])
    assert "\x1b" not in out.getvalue() and "\x07" not in out.getvalue()
    assert "␛[2Jplain" in out.getvalue()  # shown, harmless


def test_status_shows_a_nan_loss_as_nan_not_as_not_last_stage():
    parser = LogEventParser()
    [event] = parser.feed(["{ step:[    2/   10], loss: nan, per_step_time: 5ms }"])
    metric = loss_metric(JOB_ID, JobEvent(LogFile("node0", "/w/worker_0.log", "worker", 0), event, 0, 1.0))
    assert metric is not None and metric.loss is not None and math.isnan(metric.loss)
    stored = type(metric)(**{**metric.__dict__, "loss": None})  # SQLite keeps NaN as NULL
    [progress] = rank_progress([stored])
    out = StringIO()
    Console(file=out, width=120, color_system=None).print(progress_table([progress], finished=False))
    assert " nan " in out.getvalue() and "N/A" not in out.getvalue()


def test_logs_file_summary_leaves_out_each_files_first_step_and_names_the_file_of_each_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    one, two = tmp_path / "worker_0.log", tmp_path / "worker_1.log"
    one.write_text("{ step:[    1/   10], loss: 2.5, per_step_time: 9000ms }\n"
                   "{ step:[    2/   10], loss: 2.4, per_step_time: 100ms }\n")
    two.write_text("{ step:[    1/   10], loss: 2.5, per_step_time: 9000ms }\n"
                   "{ step:[    2/   10], loss: 2.4, per_step_time: 300ms }\n"
                   "\n[ERROR] ME(7:7,python):2026-12-06-21:07:15.174.000 [x.py:1] boom\n")
    assert main(["logs", "--file", str(one), str(two), "--summary", "--json"]) == 0
    summary = strict_json(capsys.readouterr().out)
    assert summary["mean_step_ms"] == 200
    errors = summary["errors"]
    assert isinstance(errors, list) and [e["file"] for e in errors] == [str(two)]
    capsys.readouterr()
    assert main(["logs", "--file", str(one), str(two), "--summary"]) == 0
    assert f"{two}:4: ms_error: boom" in capsys.readouterr().out
