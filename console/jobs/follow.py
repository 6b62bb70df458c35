"""Following a job's logs on every node: lines and events out, recorded into the store exactly once.

One `NodeFollower` per node (remote/follow.py) reads the job's files there through one session. Each
file gets its own event parser (model/logevents.py); every event is tagged with its node, rank and file,
its time put on the console's clock. With a store, what is read is recorded by a `LogRecorder`
(console/jobs/logrecord.py): each line once however many consoles follow and however often they
restart, the job's first failure kept up to date as errors arrive.

Ranks followed: those asked for (default: rank 0 and the last rank), plus every rank of a node whose
msrun reports a worker's failure or whose run ends non-zero, so the rank that failed is read even when
nobody asked for it. The run of a node is over when its `exit_code` file appears, or when the caller
says it ended without one (`runs_ended`: a rebooted node, a killed wrapper); its files are then read to
their end and its follower stops. Consumers get `JobLogBatch`es on the followers' threads. A failure
while handling a node's batch (the store locked, a bug) ends that node's follow with a batch whose
`error` says so; `wait` counts the node as done and `failures` keeps what went wrong.

A multi-line event (a traceback) is only complete once the next line shows it is over. At the end of a
file that line may never come: once the file has been quiet for QUIET_CLOSE seconds the event is taken as
whole. Reading to the end of a run still going (catch-up), the node is read once more QUIET_CLOSE
seconds later; what is still pending then is shown but not recorded, and the stored position stays
before it, so what is appended to it later is read with it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterable, Sequence

from console.jobs.joblog import BatchSink, FileState, JobEvent, JobLine, JobLogBatch
from console.jobs.logfiles import (
    JobLayout,
    LogFile,
    files_to_follow,
    job_layout,
    msrun_own_line,
)
from console.jobs.logrecord import LogRecorder
from console.records import JobRecord, LogCursor
from console.store import Store
from model.logevents import LAUNCHER_SOURCE, LogEvent, LogEventParser, line_pid, line_severity
from remote.follow import FileCursor, FollowBatch, FollowedLine, NodeFollower
from remote.pool import NodePool

EXPANDING = frozenset({"worker_exit", "job_failed", "scheduler_timeout", "workers_killed"})
"""msrun lines after which every rank of their node is read: one of them failed."""
QUIET_CLOSE = 2.0
"""Seconds a file with a multi-line event pending must stay quiet before the event counts as whole."""


class JobFollow:
    """Follows one job on all its nodes until stopped, or (until_eof) until every file is read."""

    def __init__(self, job: JobRecord, pool: NodePool, sink: BatchSink, *, store: Store | None = None,
                 ranks: Iterable[int] | None = None, nodes: Iterable[str] | None = None,
                 from_start: bool = True, until_eof: bool = False) -> None:
        self.job, self.pool, self.sink, self.store = job, pool, sink, store
        self.layout: JobLayout = job_layout(job.plan, job.config_text)
        self.until_eof = until_eof
        self._from_start = from_start
        wanted = set(nodes) if nodes is not None else None
        self._files = [f for f in files_to_follow(self.layout, ranks)
                       if wanted is None or f.node in wanted]
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], FileState] = {}
        self._followers: dict[str, NodeFollower] = {}
        self._generations: dict[str, int] = {}
        """Per node, which follower is the current one: a replaced follower may still deliver a
        batch while it stops, and its successor reads those lines again from the same cursors."""
        self._zone: dict[str, float] = {}
        self._skew: dict[str, float] = {}
        self._exit_codes: dict[str, int] = {}
        self._lost: set[str] = set()
        self._settled: set[str] = set()
        self._settling: set[str] = set()
        self._timers: dict[str, threading.Timer] = {}
        """Nodes read once more QUIET_CLOSE after their end was reached (see _settle)."""
        self._failures: dict[str, str] = {}
        self._done: set[str] = set()
        self._all_done = threading.Event()
        self._stopped = False
        self._recorder = LogRecorder(store, job.id) if store is not None else None

    # --- control -----------------------------------------------------------------------------

    @property
    def nodes(self) -> list[str]:
        order = [node.node for node in self.layout.nodes]
        return sorted({f.node for f in self._files}, key=order.index)

    @property
    def exit_codes(self) -> dict[str, int]:
        with self._lock:
            return dict(self._exit_codes)

    @property
    def lost_nodes(self) -> set[str]:
        """Nodes whose run ended without an exit code (see runs_ended)."""
        with self._lock:
            return set(self._lost - set(self._exit_codes))

    @property
    def failures(self) -> dict[str, str]:
        """Nodes whose follow ended on a failure, with what failed."""
        with self._lock:
            return dict(self._failures)

    @property
    def done_nodes(self) -> set[str]:
        """Nodes whose files are read to their end (until_eof), or whose run ended and was read."""
        with self._lock:
            return set(self._done)

    def start(self) -> None:
        stored = self._stored_cursors()
        for node in self.nodes:
            files = [f for f in self._files if f.node == node]
            for file in files:
                self._states[(node, file.path)] = self._state(file, stored.get((node, file.path)))
            self._start_node(node, files)

    def _stored_cursors(self) -> dict[tuple[str, str], LogCursor]:
        """The store's position of each file of the job already recorded, by (node, path)."""
        return {(c.node, c.path): c for c in self.store.log_cursors(self.job.id)} if self.store else {}

    def _state(self, file: LogFile, recorded: LogCursor | None) -> FileState:
        start = recorded if recorded is not None and not self._from_start else None
        read = FileCursor(file.path) if start is None else FileCursor(file.path, start.inode, start.offset,
                                                                        start.line)
        parser = LogEventParser(first_line=read.line + 1, last_time=start.last_time if start else None)
        return FileState(file, parser, recorded, read, pid=recorded.pid if recorded else None, fed=read.line)

    def _start_node(self, node: str, files: Sequence[LogFile]) -> None:
        cursors = [self._states[(node, f.path)].read for f in files]
        with self._lock:
            if self._stopped:
                return
            generation = self._generations[node] = self._generations.get(node, 0) + 1
            follower = NodeFollower(self.pool.transport(node), cursors,
                                    lambda batch: self._on_batch(node, batch, generation),
                                    until_eof=self._eof_mode(node))
            self._followers[node] = follower
        follower.start()

    def _eof_mode(self, node: str) -> bool:
        return self.until_eof or node in self._exit_codes or node in self._lost

    def runs_ended(self, nodes: Collection[str]) -> None:
        """These nodes' runs are over though no exit code was written (the node rebooted, the wrapper
        was killed): read their files to the end and count them as ended, lost."""
        with self._lock:
            fresh = [n for n in self.nodes if n in nodes and n not in self._lost
                     and n not in self._exit_codes and n not in self._done]
            self._lost.update(fresh)
        for node in fresh:
            self._restart_node(node)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            followers = list(self._followers.values())
            for timer in self._timers.values():
                timer.cancel()
        for follower in followers:
            follower.stop()
        for follower in followers:
            follower.join(timeout=10)

    def wait(self, timeout: float | None = None) -> bool:
        """True once every node's files are read (until_eof) or every node's run ended and was read."""
        return self._all_done.wait(timeout)

    # --- one batch, on a follower's thread -------------------------------------------------------

    def _on_batch(self, node: str, batch: FollowBatch, generation: int) -> None:
        with self._lock:
            if self._generations.get(node) != generation or node in self._failures:
                return
        try:
            self._take(node, batch)
        except Exception as error:  # noqa: BLE001 - whatever it was ends this node's follow, as a value
            self._fail(node, f"{type(error).__name__}: {error}")

    def _fail(self, node: str, what: str) -> None:
        """Handling `node`'s batch failed: stop its follower, tell the consumer, count it as done."""
        with self._lock:
            self._failures[node] = what
            follower = self._followers.get(node)
        if follower is not None:
            follower.stop()
        try:
            self.sink(JobLogBatch(node, error=what))
        finally:  # should the sink fail too, `failures` still says what happened
            self._node_read(node)

    def _take(self, node: str, batch: FollowBatch) -> None:
        if batch.clock_offset is not None:
            self._skew[node] = batch.clock_offset
        if batch.utc_offset is not None:
            self._zone[node] = batch.utc_offset
        grouped = [(self._states[(node, path)], followed) for path, followed in _by_path(batch.lines).items()
                   if (node, path) in self._states]
        exit_code = next((_exit_code(followed) for state, followed in grouped if state.file.role == "exit"),
                         None)
        whole = batch.finished and (exit_code is not None or node in self._exit_codes or node in self._lost)
        lines, events = self._read_lines(grouped, whole=whole)
        if whole:  # every file of an ended run read to its end: what a parser still holds is complete
            with_lines = {line.path for line in batch.lines}
            events += [e for (n, path), state in list(self._states.items())
                       if n == node and path not in with_lines and state.file.role != "exit"
                       for e in self._feed(state, (), final=True)]
        elif batch.finished and self._settle(node):
            pass  # read again after QUIET_CLOSE: a group pending at the end may be whole by then
        elif batch.finished:
            events += self._close_quiet(node) + self._hold_pending(node)
        elif not self.until_eof:
            events += self._close_quiet(node)
        for path, cursor in batch.cursors.items():
            if (node, path) in self._states:
                self._states[(node, path)].read = cursor
        if self._recorder is not None:
            self._recorder.record([s for (n, _), s in list(self._states.items()) if n == node])
        if lines or events or batch.notices or exit_code is not None:
            self.sink(JobLogBatch(node, tuple(lines), tuple(events), batch.notices, exit_code))
        self._after(node, events, exit_code, finished=batch.finished and node not in self._settling)

    def _read_lines(self, grouped: Sequence[tuple[FileState, list[FollowedLine]]], *, whole: bool
                    ) -> tuple[list[JobLine], list[JobEvent]]:
        """The lines of a batch, file by file (ranks' logs first, so msrun's lines can name their
        pids), and their events; `whole`: the files are read to the end of their run."""
        lines: list[JobLine] = []
        events: list[JobEvent] = []
        for state, followed in sorted(grouped, key=lambda item: item[0].file.role != "worker"):
            if state.file.role == "exit":
                continue
            launcher = state.file.role == "launcher"
            lines += [JobLine(state.file, line.number, line.text, line_severity(line.text),
                              copy=launcher and not msrun_own_line(line.text)) for line in followed]
            state.heard = time.monotonic()
            events += self._parse(state, followed, final=whole)
        return lines, events

    def _close_quiet(self, node: str) -> list[JobEvent]:
        """Events pending in files of `node` quiet for QUIET_CLOSE seconds, taken as whole."""
        now = time.monotonic()
        return [e for (n, _), state in list(self._states.items())
                if n == node and state.parser.pending_from is not None and now - state.heard >= QUIET_CLOSE
                for e in self._feed(state, (), final=True)]

    def _settle(self, node: str) -> bool:
        """A running node read to its end with an event pending in a file: whether to look once more,
        QUIET_CLOSE seconds later (a traceback just written is then closed by a line after it, or
        whole because its file stayed quiet). Only once per node."""
        pending = any(n == node and state.parser.pending_from is not None
                      for (n, _), state in list(self._states.items()))
        with self._lock:
            if not pending or node in self._settled or self._stopped:
                return False
            self._settled.add(node)
            self._settling.add(node)
            timer = self._timers[node] = threading.Timer(QUIET_CLOSE, self._settled_look, args=(node,))
        timer.daemon = True
        timer.start()
        return True

    def _settled_look(self, node: str) -> None:
        with self._lock:
            self._settling.discard(node)
        self._restart_node(node)

    def _hold_pending(self, node: str) -> list[JobEvent]:
        """A running node's files read to their end: what is pending may be half written. Shown as it
        is, not recorded; the stored position stays at its start."""
        events: list[JobEvent] = []
        for (n, _), state in list(self._states.items()):
            start = state.parser.pending_from
            if n == node and start is not None:
                state.held_from = start
                events += [self._job_event(state, e) for e in self._launcher_own(state, state.parser.flush())]
        return events

    def _parse(self, state: FileState, followed: Sequence[FollowedLine], *, final: bool) -> list[JobEvent]:
        """The lines' events, in order; a line numbered out of turn is a truncated or replaced file
        starting over (the follower's notice says which, but not where among the batch's lines)."""
        events: list[JobEvent] = []
        start = 0
        for index, line in enumerate(followed):
            if not line.complete:
                continue
            if line.number != state.fed + 1:
                events += self._feed(state, followed[start:index], final=True)
                self._start_over(state, followed[start:index])
                start = index
            state.fed = line.number
        return events + self._feed(state, followed[start:], final=final)

    def _feed(self, state: FileState, followed: Sequence[FollowedLine], *, final: bool) -> list[JobEvent]:
        complete = [line for line in followed if line.complete]
        for line in complete:
            state.recent.append((line.number, line.offset))
            if state.pid is None and state.file.role == "worker":
                state.pid = line_pid(line.text)
        found = state.parser.feed(line.text for line in complete)
        if final:
            found += state.parser.flush()
        events = [self._job_event(state, event) for event in self._launcher_own(state, found)]
        if self.store is not None:
            state.unrecorded += events
        return events

    @staticmethod
    def _launcher_own(state: FileState, found: list[LogEvent]) -> list[LogEvent]:
        """msrun's output: only msrun's own events; the rest are copies of the ranks' (and the
        scheduler's) lines, which are counted from their own logs."""
        if state.file.role != "launcher":
            return found
        return [e for e in found if e.source == LAUNCHER_SOURCE or msrun_own_line(e.lines[0])]

    def _job_event(self, state: FileState, event: LogEvent) -> JobEvent:
        rank = state.file.rank if state.file.role == "worker" else event.rank
        if rank is None and event.pid is not None:
            rank = self._rank_of_pid(state.file.node, event.pid)
        return JobEvent(state.file, event, rank, self._console_time(state.file.node, event.time))

    def _rank_of_pid(self, node: str, pid: int) -> int | None:
        states = list(self._states.items())
        return next((s.file.rank for (n, _), s in states if n == node and s.pid == pid), None)

    def _console_time(self, node: str, node_time: float | None) -> float:
        """A node's printed local time on the console's clock: its zone and its measured skew removed.
        An event with no time of its own is dated when it arrived."""
        if node_time is None:
            return time.time()
        return node_time - self._zone.get(node, 0.0) - self._skew.get(node, 0.0)

    def _start_over(self, state: FileState, old: Sequence[FollowedLine]) -> None:
        """The file was truncated or replaced: what the old one held (its last lines `old`, read in
        this batch, already parsed to the end) is recorded first; then a new parser, lines from 1."""
        if old:
            state.read = FileCursor(state.file.path, state.read.inode, old[-1].end, old[-1].number)
        if self._recorder is not None:
            self._recorder.record_before_restart(state)
        state.parser = LogEventParser()
        state.recent.clear()
        state.unrecorded.clear()
        state.pid = None
        state.restarted = True

    # --- the end of a node's run, and more ranks to read -------------------------------------------

    def _after(self, node: str, events: Sequence[JobEvent], exit_code: int | None, *, finished: bool) -> None:
        if exit_code is not None:
            with self._lock:
                self._exit_codes[node] = exit_code
        expand = exit_code not in (None, 0) or any(
            e.event.kind in EXPANDING and e.file.role == "launcher" for e in events)
        added = expand and self._follow_all_ranks(node)
        if finished and not added:
            self._node_read(node)
        elif finished or (exit_code is not None and not self.until_eof):
            self._restart_node(node)  # a finished follower reads no files added to it: a new one does

    def _follow_all_ranks(self, node: str) -> bool:
        """Follow every rank's log on `node`; whether any was not followed yet."""
        spec = next((n for n in self.layout.nodes if n.node == node), None)
        return spec is not None and bool(self._add_files(node, spec.ranks))

    def add_ranks(self, ranks: Iterable[int]) -> list[int]:
        """Follow these ranks' logs too (from their start, or the store's position when not from_start);
        the ranks that were not followed yet."""
        wanted = set(ranks)
        added: list[int] = []
        for spec in self.layout.nodes:
            added += self._add_files(spec.node, [r for r in spec.ranks if r in wanted])
        return sorted(added)

    def _add_files(self, node: str, ranks: Sequence[int]) -> list[int]:
        with self._lock:
            added = [f for f in files_to_follow(self.layout, ranks) if f.node == node and f.role == "worker"
                     and (node, f.path) not in self._states]
        if not added:
            return []
        stored = self._stored_cursors()
        with self._lock:
            for file in added:
                self._files.append(file)
                self._states[(node, file.path)] = self._state(file, stored.get((node, file.path)))
            follower = self._followers.get(node)
        if follower is not None:
            follower.add_files([self._states[(node, f.path)].read for f in added])
        return [f.rank for f in added if f.rank is not None]

    def _restart_node(self, node: str) -> None:
        """The run on `node` ended: read its files to their end, then let its follower go."""
        with self._lock:
            old = self._followers.pop(node, None)
        if old is not None:
            threading.Thread(target=old.stop, daemon=True, name=f"follow-stop-{node}").start()
        self._start_node(node, [s.file for (n, _), s in list(self._states.items()) if n == node])

    def _node_read(self, node: str) -> None:
        with self._lock:
            self._done.add(node)
            ended = set(self._exit_codes) | self._lost | set(self._failures)
            over = self.until_eof or ended >= set(self.nodes)
            if over and self._done >= set(self.nodes):
                self._all_done.set()


def catch_up(store: Store, pool: NodePool, job: JobRecord, *, timeout: float) -> list[str]:
    """Record what the job's files gained since the store last read them; the nodes not read in time."""
    follow = JobFollow(job, pool, lambda _: None, store=store, from_start=False, until_eof=True)
    follow.start()
    try:
        follow.wait(timeout)
    finally:
        follow.stop()
    return sorted(set(follow.nodes) - follow.done_nodes)


def _by_path(lines: Sequence[FollowedLine]) -> dict[str, list[FollowedLine]]:
    grouped: dict[str, list[FollowedLine]] = {}
    for line in lines:
        grouped.setdefault(line.path, []).append(line)
    return grouped


def _exit_code(lines: Sequence[FollowedLine]) -> int | None:
    for line in lines:
        text = line.text.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    return None
