"""A hung rank is told from a slow one by its silence measured in its own step times (model.logsummary),
and the job screen's header says it beside the state, which still reads `running`."""

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from console.records import JobRecord, LaunchRecord, LogCursor, MetricRecord
from console.screens.job import header_line
from console.store import Store
from model.logsummary import STALLED_FACTOR, STALLED_MIN, stalled, stalled_after
from tests.handjobs import hand_job

CLOCK = 1_796_000_000.0


def test_silence_counts_in_step_times_with_a_floor():
    assert stalled_after(None) == STALLED_MIN and stalled_after(1000) == STALLED_MIN
    assert stalled_after(30_000) == 30 * STALLED_FACTOR
    assert not stalled(STALLED_MIN - 1, 1000) and stalled(STALLED_MIN + 1, 1000)
    assert not stalled(299, 30_000) and stalled(301, 30_000)  # a slow step is not a hang


def test_the_header_says_which_ranks_are_stalled_and_a_node_without_a_rank_failed_first(tmp_path: Path):
    job = replace(hand_job(tmp_path).record, state="running", created_at=CLOCK - 469, updated_at=CLOCK)
    assert header_line(job, 173, 200, 54.0, now=CLOCK, stalled=[3]) == (
        f"{job.id} · running 7m49s · STALLED: rank 3 · step 173/200 (86%) · ETA 54s")
    assert header_line(job, 173, 200, 54.0, now=CLOCK, stalled=[3, 1], width=60) == (
        f"{job.id} · running 7m49s · stalled r1,3 · step 173/200 · ETA 54s")
    lost = replace(job, state="failed", first_failure={"node": "node1", "rank": None})
    assert header_line(lost, 173, 200, None, now=CLOCK, stalled=[3]) == (
        f"{job.id} · failed 7m49s · step 173/200 (86%) · first failure: node1")


def test_status_without_a_refresh_judges_no_rank_stalled(tmp_path: Path):
    """Under --no-refresh the store's loss lines are as old as the last read, not the rank's silence:
    every rank would read STALLED after a minute (review)."""
    state = tmp_path / "state"
    with Store(state / "console.db") as store:
        store.create_job(JobRecord("j", "j", "local", str(tmp_path / "c.yaml"), "cfg", state="running"),
                         [LaunchRecord("j", "n0", 0, "/w/jobs/j", pid=7, state="running")])
        store.record_log(None, LogCursor("j", "n0", "/w/jobs/j/logs/worker_0.log", offset=10, line=2), [],
                         [MetricRecord("j", "n0", 0, step=5, time=time.time() - 3600, loss=2.5,
                                       extra={"per_step_ms": 1000.0})])
    done = subprocess.run([sys.executable, "-m", "console.cli", "status", "j", "--no-refresh", "--json"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "ASCEND_CONSOLE_STATE": str(state)})
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["stalled"] == [] and [p["stalled"] for p in document["progress"]] == [False]
