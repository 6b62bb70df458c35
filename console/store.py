"""The console's memory: jobs, their per-node launches, events and loss history, in SQLite.

The database lives in the user's state directory (`$XDG_STATE_HOME/ascend-console/console.db`,
`$ASCEND_CONSOLE_STATE` overrides the directory), so the console can be closed and reopened, or
run as the CLI beside the TUI, without losing a job. WAL mode and a busy timeout let two processes
use it at once; every change is one transaction, so a crash loses nothing already reported.
No SQL lives outside this module: callers hand in and get back the frozen records of
console/records.py.
"""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from console.records import (
    JOB_STATES,
    EventRecord,
    JobRecord,
    JobState,
    LaunchRecord,
    LogCursor,
    LogEventRecord,
    MetricRecord,
)
from remote.jobstate import NODE_STATES, NodeState

STATE_ENV = "ASCEND_CONSOLE_STATE"
DB_NAME = "console.db"
# Seconds a writer waits for the other process's transaction before giving up.
BUSY_TIMEOUT = 10.0


class StoreError(Exception):
    """The database cannot be used: the message says which file and why."""


class StoreLocked(StoreError):
    """Another process held the database's write lock for longer than this one would wait."""


class StoreDamaged(StoreError):
    """The file is not a database SQLite can read: the message says how to set it aside."""


class RecordChanged(StoreError):
    """Another console changed the job after it was read: nothing was written."""

    def __init__(self, job: JobRecord, expected: int) -> None:
        super().__init__(f"job {job.id!r} changed meanwhile (now {job.state}, version {job.version}; "
                         f"this write was based on version {expected})")
        self.job = job
        self.expected = expected


class UnknownJob(StoreError):
    """No job has this id."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r} in the store")
        self.job_id = job_id


# --- location ----------------------------------------------------------------------------------


def state_dir() -> Path:
    """$ASCEND_CONSOLE_STATE, else $XDG_STATE_HOME/ascend-console, else ~/.local/state/ascend-console."""
    override = os.environ.get(STATE_ENV)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base).expanduser() / "ascend-console"


def default_store_path() -> Path:
    return state_dir() / DB_NAME


# --- migrations --------------------------------------------------------------------------------


def _v1(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE jobs (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, cluster_name TEXT NOT NULL,
        cluster_file TEXT NOT NULL, template_path TEXT, overrides TEXT NOT NULL,
        config_text TEXT NOT NULL, plan TEXT NOT NULL, state TEXT NOT NULL,
        created_at REAL NOT NULL, updated_at REAL NOT NULL, log_locations TEXT NOT NULL)""")
    db.execute("""CREATE TABLE launches (
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE, node TEXT NOT NULL,
        node_rank INTEGER NOT NULL, job_dir TEXT NOT NULL, pid INTEGER, state TEXT NOT NULL,
        exit_code INTEGER, updated_at REAL NOT NULL, PRIMARY KEY (job_id, node))""")
    db.execute("""CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE, node TEXT,
        time REAL NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL)""")
    db.execute("CREATE INDEX events_by_job ON events (job_id, id)")


def _v2(db: sqlite3.Connection) -> None:
    """The loss history, the job's exit code, and what an unreachable node last reported."""
    db.execute("ALTER TABLE jobs ADD COLUMN exit_code INTEGER")
    db.execute("ALTER TABLE launches ADD COLUMN last_known TEXT")
    db.execute("ALTER TABLE launches ADD COLUMN reason TEXT NOT NULL DEFAULT ''")
    db.execute("""CREATE TABLE metrics (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE, node TEXT NOT NULL,
        rank INTEGER NOT NULL, step INTEGER NOT NULL, loss REAL, extra TEXT NOT NULL,
        time REAL NOT NULL)""")
    db.execute("CREATE INDEX metrics_by_job ON metrics (job_id, node, rank, step)")


def _v3(db: sqlite3.Connection) -> None:
    """Followed logs: how far each file is recorded, the events read, the job's first failure."""
    db.execute("ALTER TABLE jobs ADD COLUMN first_failure TEXT")
    db.execute("""CREATE TABLE log_cursors (
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE, node TEXT NOT NULL,
        path TEXT NOT NULL, inode INTEGER, offset INTEGER NOT NULL, line INTEGER NOT NULL,
        rank INTEGER, pid INTEGER, last_time REAL, PRIMARY KEY (job_id, node, path))""")
    db.execute("""CREATE TABLE log_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE, node TEXT NOT NULL,
        path TEXT NOT NULL, line INTEGER NOT NULL, rank INTEGER, kind TEXT NOT NULL,
        severity TEXT NOT NULL, time REAL, message TEXT NOT NULL, lines TEXT NOT NULL, code TEXT,
        source TEXT, pid INTEGER)""")
    db.execute("CREATE INDEX log_events_by_job ON log_events (job_id, severity, id)")


def _v4(db: sqlite3.Connection) -> None:
    """A job's version, for compare-and-set writes, and the console process launching or stopping it."""
    db.execute("ALTER TABLE jobs ADD COLUMN version INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE jobs ADD COLUMN owner TEXT")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2, _v3, _v4)
"""Migration i+1 takes a database from version i to i+1. Append only; never edit one shipped."""
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: sqlite3.Connection) -> int:
    """The database's version, read without taking a lock (0: a new, empty database)."""
    known = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
    if known.fetchone() is None:
        return 0
    row = db.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(db: sqlite3.Connection, *, target: int = SCHEMA_VERSION) -> int:
    """Bring the database to `target` in one transaction; returns the version it had before. A database
    already there is only read, so opening one never waits for another process's writes."""
    if schema_version(db) == target:
        return target
    db.execute("BEGIN IMMEDIATE")  # the other process waits, then sees the migrated schema
    try:
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        found = int(row[0]) if row else 0
        if found > SCHEMA_VERSION:
            raise StoreError(f"the database has schema version {found}, newer than this console's "
                             f"{SCHEMA_VERSION}: upgrade ascend-console")
        for step in MIGRATIONS[found:target]:
            step(db)
        if row is None:
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (max(found, target),))
        else:
            db.execute("UPDATE schema_version SET version = ?", (max(found, target),))
        db.execute("COMMIT")
    except BaseException:
        _roll_back(db)
        raise
    return found


def _roll_back(db: sqlite3.Connection) -> None:
    """ROLLBACK, unless SQLite already rolled the transaction back itself (a full disk, an I/O error):
    then a ROLLBACK would raise and hide the error that matters."""
    if db.in_transaction:
        db.execute("ROLLBACK")


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, foreign keys on."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA synchronous = NORMAL")  # with WAL: durable at each checkpoint, never corrupt
    except sqlite3.Error as exc:
        raise store_failure(path, exc, "open") from exc
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the console's database: {exc}") from exc
    return db


def store_failure(path: Path, exc: sqlite3.Error, doing: str) -> StoreError:
    """What SQLite's error means for the user: locked (waited, then gave up), damaged (with the command
    that sets the file aside), or else the error as it is, each naming the file."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return StoreLocked(
            f"{path} is locked: another process (another ascend-console?) held its write lock for over "
            f"{BUSY_TIMEOUT:g} s, so this one gave up waiting ({text}). Try again once it is done; "
            f"`fuser -v {shlex.quote(str(path))}` names the processes that have it open")
    if type(exc) is sqlite3.DatabaseError or any(sign in text for sign in ("malformed", "not a database",
                                                                             "corrupt")):
        return StoreDamaged(
            f"{path} is damaged ({text}): the console cannot {doing} its database. Move it aside and the "
            f"next command starts an empty one (the runs on the nodes are not touched; their records "
            f"stay in the file moved): {set_aside_command(path)}")
    return StoreError(f"{path}: cannot {doing} the console's database: {text}")


def set_aside_command(path: Path) -> str:
    """The shell command that moves a damaged database and its WAL files aside, under one new name."""
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    moves = [(path, aside)] + [(path.with_name(path.name + tail), aside.with_name(aside.name + tail))
                               for tail in ("-wal", "-shm") if path.with_name(path.name + tail).exists()]
    return " && ".join(f"mv -- {shlex.quote(str(a))} {shlex.quote(str(b))}" for a, b in moves)


# --- rows <-> records --------------------------------------------------------------------------

_JOB_COLUMNS = ("id, name, cluster_name, cluster_file, template_path, overrides, config_text, plan, "
                "state, exit_code, created_at, updated_at, log_locations, first_failure, version, owner")
_LAUNCH_COLUMNS = "job_id, node, node_rank, job_dir, pid, state, exit_code, updated_at, last_known, reason"


def _job(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        id=row["id"], name=row["name"], cluster_name=row["cluster_name"],
        cluster_file=row["cluster_file"], config_text=row["config_text"],
        template_path=row["template_path"], overrides=json.loads(row["overrides"]),
        plan=json.loads(row["plan"]), state=_job_state(row["state"]), exit_code=row["exit_code"],
        created_at=row["created_at"], updated_at=row["updated_at"],
        log_locations=json.loads(row["log_locations"]),
        first_failure=json.loads(row["first_failure"]) if row["first_failure"] else None,
        version=row["version"], owner=row["owner"],
    )


def _job_values(job: JobRecord) -> tuple[Any, ...]:
    return (job.id, job.name, job.cluster_name, job.cluster_file, job.template_path,
            json.dumps(job.overrides), job.config_text, json.dumps(job.plan), job.state, job.exit_code,
            job.created_at, job.updated_at, json.dumps(job.log_locations),
            json.dumps(job.first_failure) if job.first_failure is not None else None, job.version, job.owner)


def _launch(row: sqlite3.Row) -> LaunchRecord:
    last = row["last_known"]
    return LaunchRecord(
        job_id=row["job_id"], node=row["node"], node_rank=row["node_rank"], job_dir=row["job_dir"],
        pid=row["pid"], state=_node_state(row["state"]), exit_code=row["exit_code"],
        updated_at=row["updated_at"], last_known=_node_state(last) if last else None, reason=row["reason"],
    )


def _launch_values(launch: LaunchRecord) -> tuple[Any, ...]:
    return (launch.job_id, launch.node, launch.node_rank, launch.job_dir, launch.pid, launch.state,
            launch.exit_code, launch.updated_at, launch.last_known, launch.reason)


def _event(row: sqlite3.Row) -> EventRecord:
    return EventRecord(job_id=row["job_id"], kind=row["kind"], message=row["message"], time=row["time"],
                       node=row["node"], id=row["id"])


def _metric(row: sqlite3.Row) -> MetricRecord:
    return MetricRecord(job_id=row["job_id"], node=row["node"], rank=row["rank"], step=row["step"],
                        time=row["time"], loss=row["loss"], extra=json.loads(row["extra"]))


def _job_state(text: str) -> JobState:
    if text not in JOB_STATES:
        raise StoreError(f"unknown job state {text!r} in the database")
    return text


def _node_state(text: str) -> NodeState:
    if text not in NODE_STATES:
        raise StoreError(f"unknown node state {text!r} in the database")
    return text


# --- the store ---------------------------------------------------------------------------------


class Store:
    """One open database. Safe to share between threads; other processes may use the same file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = connect(path)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        try:
            migrate(self._db)
        except StoreError as exc:
            self._db.close()
            if str(path) in str(exc):
                raise
            raise StoreError(f"{path}: {exc}") from exc
        except sqlite3.Error as exc:
            self._db.close()
            raise store_failure(path, exc, "prepare") from exc

    @classmethod
    def open_default(cls) -> Store:
        return cls(default_store_path())

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction: all of it lands, or none of it does. Waits up to BUSY_TIMEOUT for another
        process's; SQLite's locked or damaged database is a StoreError naming the file."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise store_failure(self.path, exc, "write to") from exc
            try:
                yield self._db
            except BaseException as exc:
                _roll_back(self._db)
                if type(exc) is sqlite3.DatabaseError or isinstance(exc, sqlite3.OperationalError):
                    raise store_failure(self.path, exc, "write to") from exc
                raise
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                _roll_back(self._db)
                raise store_failure(self.path, exc, "write to") from exc

    def _newest(self, table: str, job_id: str, match: tuple[str, Any], last: int | None) -> list[sqlite3.Row]:
        """A job's rows of an append-only table (events, log_events), oldest first; `match`: a column
        and the value it must have (None: any); `last`: only the latest N. Table and column are ours."""
        column, value = match
        where, params = "job_id = ?", [job_id]
        if value is not None:
            where, params = f"{where} AND {column} = ?", [*params, value]
        limit = f" LIMIT {int(last)}" if last is not None else ""
        return self._read(f"SELECT * FROM (SELECT * FROM {table} WHERE {where} ORDER BY id DESC{limit}) "
                          "ORDER BY id", params)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return list(self._db.execute(sql, params))
            except sqlite3.Error as exc:
                raise store_failure(self.path, exc, "read") from exc

    # jobs ---------------------------------------------------------------------------------------

    def create_job(self, job: JobRecord, launches: Sequence[LaunchRecord] = (),
                   events: Sequence[EventRecord] = ()) -> None:
        """Record a new job with its launches and first events; a job id used before is refused."""
        with self._write() as db:
            try:
                db.execute(f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({_marks(16)})", _job_values(job))
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"job {job.id!r} is already in the store") from exc
            _put_launches(db, launches)
            _add_events(db, events)

    def job(self, job_id: str) -> JobRecord:
        rows = self._read(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            raise UnknownJob(job_id)
        return _job(rows[0])

    def jobs(self, *, unfinished_only: bool = False) -> list[JobRecord]:
        """Newest first."""
        rows = self._read(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY created_at DESC, id DESC")
        records = [_job(row) for row in rows]
        return [j for j in records if not j.finished] if unfinished_only else records

    def set_job_state(self, job_id: str, state: JobState, *, at: float, exit_code: int | None = None,
                      events: Sequence[EventRecord] = (), expected: int | None = None,
                      owner: str | None = None) -> JobRecord:
        """The job's new state (and `owner`: None says nobody acts on it now), with events, as one
        transaction; with `expected`, only while the job is still at that version (else RecordChanged,
        nothing written). Returns the job as written."""
        with self._write() as db:
            _check_version(db, job_id, expected)
            _set_job_state(db, job_id, state, exit_code, at=at, owner=owner)
            _add_events(db, events)
            return _job(db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone())

    # launches -----------------------------------------------------------------------------------

    def put_launches(self, launches: Sequence[LaunchRecord], events: Sequence[EventRecord] = (), *,
                     expected: int | None = None) -> int | None:
        """Insert or replace each node's launch (keyed by job and node), with events, at once; each job
        touched gets a new version. With `expected` (launches of one job): only while the job is still at
        that version, else RecordChanged. Returns that job's new version (None without `expected`)."""
        with self._write() as db:
            jobs = sorted({launch.job_id for launch in launches})
            if expected is not None:
                if len(jobs) != 1:
                    raise StoreError("a compare-and-set write takes the launches of one job")
                _check_version(db, jobs[0], expected)
            _put_launches(db, launches)
            _add_events(db, events)
            db.executemany("UPDATE jobs SET version = version + 1 WHERE id = ?", [(j,) for j in jobs])
        return None if expected is None else expected + 1

    def launches(self, job_id: str) -> list[LaunchRecord]:
        """In node-rank order."""
        rows = self._read(f"SELECT {_LAUNCH_COLUMNS} FROM launches WHERE job_id = ? "
                          "ORDER BY node_rank, node", (job_id,))
        return [_launch(row) for row in rows]

    def record_refresh(self, job_id: str, launches: Sequence[LaunchRecord], state: JobState,
                       exit_code: int | None, events: Sequence[EventRecord], *, at: float,
                       expected: int | None = None, owner: str | None = None) -> None:
        """What a refresh learned about one job, as one transaction; with `expected`, only while the job
        is still the version the refresh read (else RecordChanged: a stop or a launch wrote meanwhile,
        and what the nodes said before it must not overwrite it)."""
        with self._write() as db:
            _check_version(db, job_id, expected)
            _put_launches(db, launches)
            _set_job_state(db, job_id, state, exit_code, at=at, owner=owner)
            _add_events(db, events)

    # events -------------------------------------------------------------------------------------

    def add_events(self, events: Sequence[EventRecord]) -> None:
        with self._write() as db:
            _add_events(db, events)

    def events(self, job_id: str, *, node: str | None = None, last: int | None = None) -> list[EventRecord]:
        """Oldest first; `last`: only the latest N."""
        return [_event(row) for row in self._newest("events", job_id, ("node", node), last)]

    # metrics ------------------------------------------------------------------------------------

    def add_metrics(self, metrics: Sequence[MetricRecord]) -> None:
        with self._write() as db:
            _add_metrics(db, metrics)

    def metrics(self, job_id: str, *, node: str | None = None, after_step: int | None = None
                ) -> list[MetricRecord]:
        """In step order (then node, rank)."""
        where, params = "job_id = ?", list[Any]([job_id])
        if node is not None:
            where, params = where + " AND node = ?", [*params, node]
        if after_step is not None:
            where, params = where + " AND step > ?", [*params, after_step]
        rows = self._read(f"SELECT * FROM metrics WHERE {where} ORDER BY step, node, rank, id", params)
        return [_metric(row) for row in rows]

    # followed logs ------------------------------------------------------------------------------

    def log_cursors(self, job_id: str) -> list[LogCursor]:
        rows = self._read("SELECT * FROM log_cursors WHERE job_id = ? ORDER BY node, path", (job_id,))
        return [LogCursor(**dict(row)) for row in rows]

    def record_log(self, expected: LogCursor | None, cursor: LogCursor, events: Sequence[LogEventRecord],
                   metrics: Sequence[MetricRecord]) -> bool:
        """What was read from one file since `expected`, with the file's new position, as one
        transaction. False (nothing written) when the stored position is no longer `expected`:
        another console recorded that part first, so every line is recorded exactly once."""
        with self._write() as db:
            row = db.execute(
                "SELECT inode, offset FROM log_cursors WHERE job_id = ? AND node = ? AND path = ?",
                (cursor.job_id, cursor.node, cursor.path)).fetchone()
            stored = None if row is None else (row["inode"], row["offset"])
            if stored != (None if expected is None else (expected.inode, expected.offset)):
                return False
            db.execute(f"INSERT OR REPLACE INTO log_cursors ({_CURSOR_COLUMNS}) VALUES ({_marks(9)})",
                       tuple(getattr(cursor, name) for name in _CURSOR_COLUMNS.split(", ")))
            db.executemany(
                "INSERT INTO log_events (job_id, node, path, line, rank, kind, severity, time, message, "
                "lines, code, source, pid) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(e.job_id, e.node, e.path, e.line, e.rank, e.kind, e.severity, e.time, e.message,
                  json.dumps(e.lines), e.code, e.source, e.pid) for e in events])
            _add_metrics(db, metrics)
        return True

    def log_events(self, job_id: str, *, severity: str | None = None, last: int | None = None
                   ) -> list[LogEventRecord]:
        """Oldest first (as recorded); `last`: only the latest N. An msrun line that named a worker by
        its pid before that rank's log told its pid gets its rank now."""
        rows = self._newest("log_events", job_id, ("severity", severity), last)
        with self._lock:
            ranks = _ranks_by_pid(self._db, job_id)
        return [_log_event(row, ranks) for row in rows]

    def update_first_failure(self, job_id: str, choose: FailureChooser) -> dict[str, Any] | None:
        """Set the job's first failure to what `choose` makes of its recorded errors (oldest first) and
        its ranks by (node, pid), read and written in one transaction: several threads or consoles
        updating at once each see every error recorded before, and none writes a stale answer."""
        with self._write() as db:
            rows = db.execute("SELECT * FROM log_events WHERE job_id = ? AND severity = 'error' ORDER BY id",
                              (job_id,)).fetchall()
            events = [_log_event(row) for row in rows]
            failure = choose(events, _ranks_by_pid(db, job_id))
            text = None if failure is None else json.dumps(failure)
            db.execute("UPDATE jobs SET first_failure = ? WHERE id = ? AND first_failure IS NOT ?",
                       (text, job_id, text))
        return failure

    def set_first_failure(self, job_id: str, failure: dict[str, Any] | None) -> None:
        with self._write() as db:
            db.execute("UPDATE jobs SET first_failure = ? WHERE id = ?",
                       (None if failure is None else json.dumps(failure), job_id))


_CURSOR_COLUMNS = "job_id, node, path, inode, offset, line, rank, pid, last_time"
FailureChooser = Callable[[list[LogEventRecord], dict[tuple[str, int], int]], "dict[str, Any] | None"]
"""Errors of a job (oldest first) and its ranks by (node, pid) -> its first failure as a document."""


def _log_event(row: sqlite3.Row, ranks_by_pid: dict[tuple[str, int], int] | None = None) -> LogEventRecord:
    rank = row["rank"]
    if rank is None and row["pid"] is not None and ranks_by_pid:
        rank = ranks_by_pid.get((row["node"], row["pid"]))
    return LogEventRecord(**{**dict(row), "rank": rank, "lines": tuple(json.loads(row["lines"]))})


def _ranks_by_pid(db: sqlite3.Connection, job_id: str) -> dict[tuple[str, int], int]:
    """(node, pid) -> rank, as the ranks' own logs told."""
    return {(row["node"], row["pid"]): row["rank"] for row in db.execute(
        "SELECT node, pid, rank FROM log_cursors WHERE job_id = ? AND pid IS NOT NULL AND rank IS NOT NULL",
        (job_id,))}


def _add_metrics(db: sqlite3.Connection, metrics: Sequence[MetricRecord]) -> None:
    db.executemany(
        "INSERT INTO metrics (job_id, node, rank, step, loss, extra, time) VALUES (?,?,?,?,?,?,?)",
        [(m.job_id, m.node, m.rank, m.step, m.loss, json.dumps(m.extra), m.time) for m in metrics])


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _put_launches(db: sqlite3.Connection, launches: Sequence[LaunchRecord]) -> None:
    db.executemany(f"INSERT OR REPLACE INTO launches ({_LAUNCH_COLUMNS}) VALUES ({_marks(10)})",
                   [_launch_values(launch) for launch in launches])


def _set_job_state(db: sqlite3.Connection, job_id: str, state: JobState, exit_code: int | None, *,
                   at: float, owner: str | None) -> None:
    done = db.execute("UPDATE jobs SET state = ?, exit_code = ?, updated_at = ?, owner = ?, "
                      "version = version + 1 WHERE id = ?", (state, exit_code, at, owner, job_id))
    if done.rowcount == 0:
        raise UnknownJob(job_id)


def _check_version(db: sqlite3.Connection, job_id: str, expected: int | None) -> None:
    """Inside a write transaction: the job is still at version `expected` (None: not asked)."""
    if expected is None:
        return
    row = db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise UnknownJob(job_id)
    if row["version"] != expected:
        raise RecordChanged(_job(row), expected)


def _add_events(db: sqlite3.Connection, events: Sequence[EventRecord]) -> None:
    db.executemany("INSERT INTO events (job_id, node, time, kind, message) VALUES (?, ?, ?, ?, ?)",
                   [(e.job_id, e.node, e.time, e.kind, e.message) for e in events])

