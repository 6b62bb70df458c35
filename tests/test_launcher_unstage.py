"""A launch that fails at staging removes what the other nodes staged, and says so even when another
console changed the job meanwhile (its failure then not written). Local nodes, a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.jobs.launcher import LaunchProgress, run_launch
from console.jobs.request import JobRequest, plan_job
from console.store import Store
from tests.rank_jobs import write_job
from tests.test_launcher import local_pool


@pytest.fixture(autouse=True)
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASCEND_CONSOLE_CORPUS", str(tmp_path / "corpus"))


def test_the_unstaging_is_recorded_when_a_stop_wrote_the_job_meanwhile(tmp_path: Path):
    """n1 cannot stage (its job directory is there already); while n0's is being removed, another console
    stops the job. The launcher's `failed` is refused (the stop stands), but the `unstaged` events are
    what happened on n0: they are kept."""
    with Store(tmp_path / "state" / "console.db") as store, local_pool(
            tmp_path, {"name": "n0", "cluster_ip": "127.0.0.1"},
            {"name": "n1", "cluster_ip": "127.0.0.2"}) as pool:
        planned = plan_job(JobRequest(write_job(tmp_path), force=frozenset({"launcher"})), pool)
        job_id = planned.plan.job_id
        in_the_way = tmp_path / "n1" / "jobs" / job_id
        in_the_way.mkdir(parents=True)

        def another_console_stops(event: LaunchProgress) -> None:
            if event.stage == "stop" and event.node is None:  # the removal begins
                store.set_job_state(job_id, "stopping", at=1.0)

        result = run_launch(planned, pool, store, progress=another_console_stops)
        assert result.failure is not None and "another console changed the job" in result.failure.reason
        assert store.job(job_id).state == "stopping"
        staged = tmp_path / "n0" / "jobs" / job_id
        assert not staged.exists() and in_the_way.is_dir()
        unstaged = [(e.node, e.message) for e in store.events(job_id) if e.kind == "unstaged"]
        assert unstaged == [("n0", f"removed {staged} (the launch failed at staging)")]
