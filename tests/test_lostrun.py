"""console/jobs/lostrun.py without nodes: a run lost on a node whose job then ended by itself."""

from __future__ import annotations

from pathlib import Path

from console.jobs.lostrun import LOST_KIND, fail_lost_runs
from console.records import JobRecord, LaunchRecord, LogCursor, LogEventRecord, MetricRecord
from console.store import Store
from remote.inventory import load_cluster

CLUSTER = Path(__file__).resolve().parent.parent / "configs" / "clusters" / "local.yaml"


def test_a_node_lost_before_the_others_timed_out_is_still_named_first(tmp_path: Path):
    """n1 rebooted at t=100 (its last loss line); n0's msrun failed at t=200 on the collective's timeout
    and the refresh read the job failed. The loss is recorded, dated at n1's last sign of life, and n1 is
    the first failure: the timeout was its consequence (review)."""
    with Store(tmp_path / "db") as store:
        store.create_job(JobRecord("j", "j", "local", str(CLUSTER), "cfg", state="failed", exit_code=1), [
            LaunchRecord("j", "n0", 0, "/w/jobs/j", pid=7, state="exited", exit_code=1),
            LaunchRecord("j", "n1", 1, "/w/jobs/j", pid=8, state="lost")])
        store.record_log(None, LogCursor("j", "n1", "/w/jobs/j/logs/worker_1.log", offset=10, line=2), [],
                         [MetricRecord("j", "n1", 1, step=5, time=100.0, loss=2.5)])
        timeout = LogEventRecord("j", "n0", "/w/jobs/j/logs/worker_0.log", 3, "hccl", "error",
                                 "HCCL timeout waiting for rank 1", time=200.0, lines=("HCCL timeout",))
        store.record_log(None, LogCursor("j", "n0", "/w/jobs/j/logs/worker_0.log", offset=10, line=4),
                         [timeout], [])
        assert fail_lost_runs(store, load_cluster(CLUSTER), ["j"], timeout=5) == []  # ended: nothing stops
        lost = [e for e in store.log_events("j") if e.kind == LOST_KIND]
        assert [(e.node, e.time) for e in lost] == [("n1", 100.0)]
        first = store.job("j").first_failure
        assert first is not None and first["node"] == "n1", first
        fail_lost_runs(store, load_cluster(CLUSTER), ["j"], timeout=5)  # asked again: recorded once
        assert len([e for e in store.log_events("j") if e.kind == LOST_KIND]) == 1
