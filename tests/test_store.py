"""console/store.py: records in and out, migrations in place, two processes at once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from console.records import EventRecord, JobRecord, LaunchRecord, MetricRecord
from console.store import SCHEMA_VERSION, Store, StoreError, UnknownJob, default_store_path, migrate

JOB = JobRecord(
    id="20250101-120000-tiny", name="tiny", cluster_name="local", cluster_file="/c/local.yaml",
    config_text="model:\n  layers: 2\n", template_path="/t/tiny.yaml", overrides={"model.layers": 2},
    plan={"nodes": [{"name": "node0", "rank": 0}]}, state="running", created_at=100.0, updated_at=100.0,
    log_locations={"node0": "/w/jobs/20250101-120000-tiny/logs"},
)
LAUNCHES = [
    LaunchRecord(JOB.id, "node1", 1, "/w1/jobs/x", pid=20, state="running", updated_at=100.0),
    LaunchRecord(JOB.id, "node0", 0, "/w0/jobs/x", pid=10, state="running", updated_at=100.0),
]


def test_a_job_comes_back_as_it_went_in(tmp_path: Path):
    with Store(tmp_path / "db") as store:
        store.create_job(JOB, LAUNCHES, [EventRecord(JOB.id, "launched", "on 2 nodes", 100.0)])
        assert store.job(JOB.id) == JOB
        assert store.jobs() == [JOB]
        assert [launch.node for launch in store.launches(JOB.id)] == ["node0", "node1"]
        assert store.launches(JOB.id)[0] == LAUNCHES[1]
        [event] = store.events(JOB.id)
        assert (event.kind, event.message, event.node) == ("launched", "on 2 nodes", None)


def test_state_changes_and_events_land_together(tmp_path: Path):
    with Store(tmp_path / "db") as store:
        store.create_job(JOB, LAUNCHES)
        gone = LaunchRecord(JOB.id, "node0", 0, "/w0/jobs/x", pid=10, state="exited", exit_code=1,
                            updated_at=200.0)
        store.record_refresh(JOB.id, [gone], "failed", 1,
                             [EventRecord(JOB.id, "state", "running -> exited (1)", 200.0, node="node0")],
                             at=200.0)
        job = store.job(JOB.id)
        assert (job.state, job.exit_code, job.updated_at, job.finished) == ("failed", 1, 200.0, True)
        assert store.launches(JOB.id)[0] == gone
        assert store.jobs(unfinished_only=True) == []
        assert store.events(JOB.id, node="node0")[0].message == "running -> exited (1)"


def test_a_failed_transaction_leaves_nothing_behind(tmp_path: Path):
    with Store(tmp_path / "db") as store:
        store.create_job(JOB, LAUNCHES)
        with pytest.raises(UnknownJob):
            store.record_refresh("no-such-job", [LAUNCHES[0]], "exited", 0,
                                 [EventRecord(JOB.id, "state", "never", 1.0)], at=1.0)
        assert store.events(JOB.id) == []
        with pytest.raises(StoreError, match="already in the store"):
            store.create_job(JOB)
        with pytest.raises(sqlite3.IntegrityError):  # foreign keys are on
            store.put_launches([LaunchRecord("ghost", "n", 0, "/d")])


def test_unknown_job_is_a_clear_error(tmp_path: Path):
    with Store(tmp_path / "db") as store, pytest.raises(UnknownJob, match="no job 'nope'"):
        store.job("nope")


def test_events_last_n_oldest_first_and_metrics_in_step_order(tmp_path: Path):
    with Store(tmp_path / "db") as store:
        store.create_job(JOB)
        store.add_events([EventRecord(JOB.id, "note", f"e{i}", float(i)) for i in range(5)])
        assert [e.message for e in store.events(JOB.id, last=2)] == ["e3", "e4"]
        store.add_metrics([MetricRecord(JOB.id, "node0", 0, step, float(step), loss=10.0 - step,
                                        extra={"lr": 1e-4}) for step in (3, 1, 2)])
        assert [m.step for m in store.metrics(JOB.id)] == [1, 2, 3]
        assert [m.loss for m in store.metrics(JOB.id, after_step=1)] == [8.0, 7.0]
        assert store.metrics(JOB.id)[0].extra == {"lr": 1e-4}


def test_wal_and_foreign_keys_are_on(tmp_path: Path):
    with Store(tmp_path / "db"):
        pass
    db = sqlite3.connect(tmp_path / "db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def test_a_version_1_database_is_upgraded_in_place_without_losing_rows(tmp_path: Path):
    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    assert migrate(old, target=1) == 0
    # rows as the version-1 console wrote them
    old.execute("INSERT INTO jobs VALUES ('j1', 'tiny', 'local', '/c.yaml', NULL, '{}', 'cfg', '{}', "
                "'running', 1.0, 2.0, '{}')")
    old.execute("INSERT INTO launches VALUES ('j1', 'node0', 0, '/w/jobs/j1', 42, 'running', NULL, 2.0)")
    old.execute("INSERT INTO events (job_id, node, time, kind, message) VALUES ('j1', NULL, 2.0, 'x', 'y')")
    old.close()
    with Store(path) as store:
        job = store.job("j1")
        assert (job.state, job.exit_code, job.config_text) == ("running", None, "cfg")
        [launch] = store.launches("j1")
        assert (launch.pid, launch.state, launch.last_known, launch.reason) == (42, "running", None, "")
        assert store.events("j1")[0].message == "y"
        store.add_metrics([MetricRecord("j1", "node0", 0, 1, 3.0, loss=2.5)])
        assert store.metrics("j1")[0].loss == 2.5


def test_a_database_from_a_newer_console_is_refused(tmp_path: Path):
    with Store(tmp_path / "db"):
        pass
    db = sqlite3.connect(tmp_path / "db", isolation_level=None)
    db.execute("UPDATE schema_version SET version = 99")
    db.close()
    with pytest.raises(StoreError, match="schema version 99, newer"):
        Store(tmp_path / "db")


WRITER = """
import sys
from pathlib import Path
from console.records import EventRecord
from console.store import Store
with Store(Path(sys.argv[1])) as store:
    for i in range(200):
        store.add_events([EventRecord("j", "note", f"{sys.argv[2]}{i}", float(i))])
"""


def test_two_processes_write_at_once_and_nothing_is_lost(tmp_path: Path):
    path = tmp_path / "db"
    with Store(path) as store:
        store.create_job(JobRecord("j", "j", "c", "/c", "cfg"))
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag]) for tag in "ab"]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    with Store(path) as store:
        messages = {e.message for e in store.events("j")}
    assert messages == {f"{tag}{i}" for tag in "ab" for i in range(200)}


def test_the_state_directory_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv("ASCEND_CONSOLE_STATE", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_store_path() == tmp_path / "xdg" / "ascend-console" / "console.db"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_store_path() == tmp_path / "home" / ".local" / "state" / "ascend-console" / "console.db"
    monkeypatch.setenv("ASCEND_CONSOLE_STATE", str(tmp_path / "override"))
    assert default_store_path() == tmp_path / "override" / "console.db"


def test_a_store_that_cannot_be_made_is_a_store_error(tmp_path: Path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreError, match="cannot open the console's database"):
        Store(tmp_path / "file" / "console.db")
    (tmp_path / "garbage.db").write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(StoreError, match=r"garbage\.db"):
        Store(tmp_path / "garbage.db")
