"""Fault matrix, store row: the console's database locked by another process, damaged, or written by an
older console. Each fault is real: a second process holds SQLite's write lock, the file's bytes are
garbage or its pages overwritten, an old schema is built from the migration list itself. The console
runs as a user would run it (`python -m console.cli`), with a state directory of its own."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from console.records import JobRecord, LaunchRecord
from console.store import BUSY_TIMEOUT, MIGRATIONS, SCHEMA_VERSION, Store, StoreLocked, connect, migrate

pytestmark = [pytest.mark.faults]

REPO = Path(__file__).resolve().parents[2]
JOB = JobRecord("20261207-010203-old", "old", "gone", "/nowhere/cluster.yaml", "cfg: 1\n", state="running",
                created_at=5.0, updated_at=5.0)


def console(state: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASCEND_CONSOLE_STATE": str(state)}
    return subprocess.run([sys.executable, "-m", "console.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@contextmanager
def write_lock_held(path: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another process takes the database's write lock (as a console mid-transaction does) and keeps it
    `seconds`, or until the block ends."""
    script = ("import sqlite3, sys, time\n"
              "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
              "db.execute('BEGIN IMMEDIATE')\n"
              "print('held', flush=True)\n"
              "time.sleep(float(sys.argv[2]))\n"
              "db.execute('COMMIT')\n")
    holder = subprocess.Popen([sys.executable, "-c", script, str(path), str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def test_a_locked_store_is_waited_for_and_used_once_free(tmp_path: Path):
    path = tmp_path / "console.db"
    with Store(path) as store:
        store.create_job(JOB)
        with write_lock_held(path, 2.0):
            began = time.monotonic()
            store.set_job_state(JOB.id, "stopping", at=6.0)
            waited = time.monotonic() - began
        assert 1.0 < waited < BUSY_TIMEOUT, waited
        assert store.job(JOB.id).state == "stopping"


def test_a_store_locked_for_too_long_is_named_with_the_file_after_the_wait(tmp_path: Path):
    state = tmp_path / "state"
    with Store(state / "console.db") as store:
        store.create_job(JOB)  # unfinished, with a cluster file that is gone: `jobs` writes its refresh
    path = state / "console.db"
    with write_lock_held(path, 60.0):
        began = time.monotonic()
        listed = console(state, "jobs")
        waited = time.monotonic() - began
        # reading needs no lock: a locked store is still listed
        shown = console(state, "jobs", "--no-refresh")
    assert listed.returncode == 78, listed
    assert waited >= BUSY_TIMEOUT, waited
    error = " ".join(listed.stderr.split())
    assert f"{path} is locked" in error and f"over {BUSY_TIMEOUT:g} s" in error, error
    assert "fuser -v" in error and "Traceback" not in listed.stderr
    assert shown.returncode == 0 and JOB.id in shown.stdout, shown
    with Store(path) as store, pytest.raises(StoreLocked), write_lock_held(path, 60.0):
        store.set_job_state(JOB.id, "stopping", at=6.0)


def way_out(stderr: str) -> str:
    """The command the error says to run: its last part, from `mv --`."""
    text = " ".join(stderr.split())
    return text[text.index("mv -- "):].strip()


def test_a_file_that_is_no_database_is_named_with_a_command_that_sets_it_aside(tmp_path: Path):
    state = tmp_path / "state"
    state.mkdir()
    path = state / "console.db"
    path.write_bytes(b"this is not a database, but a file something else wrote here\n" * 100)
    listed = console(state, "jobs", "--no-refresh")
    assert listed.returncode == 78, listed
    error = " ".join(listed.stderr.split())
    assert f"{path} is damaged" in error and "Traceback" not in listed.stderr, error
    command = way_out(listed.stderr)
    subprocess.run(["sh", "-c", command], check=True)
    assert not path.exists() and len(list(state.glob("console.db.damaged-*"))) == 1
    again = console(state, "jobs", "--no-refresh")
    assert again.returncode == 0 and "no unfinished jobs" in again.stdout, again


def test_a_database_with_damaged_pages_is_named_when_read_and_set_aside_with_its_wal(tmp_path: Path):
    state = tmp_path / "state"
    path = state / "console.db"
    with Store(path) as store:
        store.create_job(JOB, [LaunchRecord(JOB.id, "n0", 0, "/w/jobs/x", pid=7, state="running")])
    page = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    with path.open("r+b") as file:  # the jobs table's root page (2: the first table created) overwritten
        file.seek(page)
        file.write(b"\xa5" * page)
    listed = console(state, "jobs", "--no-refresh", "--all")
    assert listed.returncode == 78, listed
    error = " ".join(listed.stderr.split())
    assert f"{path} is damaged" in error and "malformed" in error, error
    assert "Traceback" not in listed.stderr
    subprocess.run(["sh", "-c", way_out(listed.stderr)], check=True)
    assert not path.exists() and not Path(f"{path}-wal").exists()
    again = console(state, "jobs", "--no-refresh", "--all")
    assert again.returncode == 0, again


def old_store(path: Path, version: int) -> None:
    """A database as a console of schema `version` left it, built by that version's migrations, with a
    running job and its node in the columns that version had."""
    db = connect(path)
    migrate(db, target=version)
    db.execute("INSERT INTO jobs (id, name, cluster_name, cluster_file, template_path, overrides, "
               "config_text, plan, state, created_at, updated_at, log_locations) "
               "VALUES (?, 'old', 'gone', '/nowhere/cluster.yaml', NULL, '{}', 'cfg: 1\n', '{}', "
               "'running', 5.0, 5.0, '{}')", (JOB.id,))
    db.execute("INSERT INTO launches (job_id, node, node_rank, job_dir, pid, state, updated_at) "
               "VALUES (?, 'n0', 0, '/w/jobs/x', 7, 'running', 5.0)", (JOB.id,))
    db.close()


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_a_store_of_an_older_version_is_migrated_and_its_jobs_kept(tmp_path: Path, version: int):
    state = tmp_path / "state"
    state.mkdir()
    path = state / "console.db"
    old_store(path, version)
    assert sqlite3.connect(path).execute("SELECT version FROM schema_version").fetchone() == (version,)
    # two consoles open it at once: one migrates, the other waits and finds it migrated
    openers = [subprocess.Popen([sys.executable, "-m", "console.cli", "jobs", "--no-refresh", "--json"],
                                cwd=REPO, env={**os.environ, "ASCEND_CONSOLE_STATE": str(state)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [opener.communicate(timeout=120) for opener in openers]
    assert [opener.returncode for opener in openers] == [0, 0], outputs
    assert all(f'"{JOB.id}"' in out for out, _ in outputs), outputs
    with Store(path) as store:
        job = store.job(JOB.id)
        assert (job.state, job.version, job.owner) == ("running", 1, None)
        assert [(lr.node, lr.pid, lr.state) for lr in store.launches(JOB.id)] == [("n0", 7, "running")]
        store.set_job_state(JOB.id, "stopping", at=6.0, expected=1)  # the new columns work
        assert store.job(JOB.id).version == 2
    assert sqlite3.connect(path).execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION,)


def test_a_store_of_a_newer_console_is_refused_untouched(tmp_path: Path):
    state = tmp_path / "state"
    state.mkdir()
    path = state / "console.db"
    db = connect(path)
    migrate(db)
    db.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS) + 1,))
    db.close()
    listed = console(state, "jobs", "--no-refresh")
    assert listed.returncode == 78, listed
    error = " ".join(listed.stderr.split())
    assert str(path) in error and f"newer than this console's {SCHEMA_VERSION}: upgrade" in error, error
