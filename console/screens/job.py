"""The job screen: live log panes, the loss chart, every error (the first failure marked), every rank,
and a predict job's answer.

The screen follows the job through a `JobLogFeed` (its own threads; what it reads is also recorded into
the store), draws the chart and the answer from the store (the loss history, the answer events) so they
survive closing and reopening, and watches the app's jobs snapshot for the nodes' states. Wide terminals
show panes, chart (a predict job: its answer) and errors at once; at 80 columns one view at a time
(1 logs, 2 chart, 3 errors, 4 ranks; a predict job has 5 answer instead of 2 chart).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from contextlib import ExitStack
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from console.feeds.joblogs import JobLogFeed, stop_in_background
from console.feeds.jobs import JobsSnapshot
from console.jobs.answer import ANSWER_KINDS, job_answer
from console.jobs.endpoint import endpoint_for
from console.jobs.joblog import JobLine, JobLogBatch
from console.jobs.logfiles import LogFile, files_to_follow, job_layout, worker_log
from console.jobs.logrecord import loss_metric
from console.jobs.logview import rank_progress
from console.jobs.view import age_text, state_text
from console.records import JobRecord, LaunchRecord, LogEventRecord
from console.screens.chat import ChatScreen
from console.screens.rank_prompt import RankPrompt
from console.screens.stopping import stop_from_screen
from console.services import ConsoleServices
from console.serving.conversation import ChatSettings
from console.store import UnknownJob
from console.widgets.answer_pane import AnswerPane
from console.widgets.job_tables import ErrorTable, RankState, RankTable, error_key, node_states
from console.widgets.log_pane import LogPane
from console.widgets.loss_chart import LossChart

WIDE = 120
"""Columns from which panes, chart and errors are shown side by side."""
KEPT_UNSHOWN = 5000
"""Lines kept per followed file that has no pane (msrun's output): a pane opened later shows them."""
VIEWS = ("logs", "chart", "errors", "ranks", "answer")


class JobScreen(Screen[None]):
    """One job, live. Escape goes back; `s` stops it (after asking)."""

    HELP_TITLE = "job"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="job.back"),
        Binding("1", "view('logs')", "Logs", id="job.logs"),
        Binding("2", "view('chart')", "Chart", id="job.chart"),
        Binding("3", "view('errors')", "Errors", id="job.errors"),
        Binding("4", "view('ranks')", "Ranks", id="job.ranks"),
        Binding("5", "view('answer')", "Answer", tooltip="The predict job's answer, one entry per prompt",
                id="job.answer"),
        Binding("plus", "add_ranks", "Add ranks", key_display="+", show=False, tooltip="Follow more ranks",
                id="job.add-rank"),
        Binding("minus", "remove_pane", "Close pane", key_display="-", show=False,
                tooltip="Close the focused pane",
                id="job.remove-pane"),
        Binding("s", "stop", "Stop", tooltip="Stop the job on every node", id="job.stop"),
        Binding("t", "talk", "Talk", tooltip="Chat with the serve job's model, through a port forward",
                id="job.talk"),
    ]

    def __init__(self, services: ConsoleServices, job_id: str) -> None:
        super().__init__()
        self.services = services
        self.job_id = job_id
        self.job: JobRecord | None = None
        self.launches: tuple[LaunchRecord, ...] = ()
        self.feed: JobLogFeed | None = None
        self.panes: dict[str, LogPane] = {}
        self._files: dict[str, LogFile] = {}
        self._unshown: dict[str, deque[JobLine]] = {}
        self._last_line_at: dict[tuple[str, int], float] = {}
        self._errors: list[LogEventRecord] = []
        self._checkpoints: dict[int, int] = {}
        """Per rank, the checkpoints its log says it saved."""
        self.view = "logs"
        self._chat: ChatScreen | None = None
        """A serve job's chat, kept (installed) so leaving it and coming back keeps the conversation."""
        self._forward = ExitStack()
        """The chat's port forward and the pool it runs over: held until the screen closes."""

    def compose(self) -> ComposeResult:
        yield Static(f"{self.job_id} · opening…", id="job-header", markup=False)
        with Horizontal(id="job-body"):
            yield VerticalScroll(id="log-grid")
            with Vertical(id="job-side"):
                yield LossChart(id="loss-chart")
                yield AnswerPane(id="answer-pane")
                yield ErrorTable(id="error-table")
        yield RankTable(id="rank-table")
        yield Footer(compact=True)

    # --- opening and closing ---------------------------------------------------------------------

    def on_mount(self) -> None:
        store = self.services.store
        if store is None:
            self.notify(f"the store cannot be used: {self.services.store_error}", severity="error")
            return
        try:
            self.job = store.job(self.job_id)
        except UnknownJob:
            self.query_one("#job-header", Static).update(f"{self.job_id}: no such job in the store")
            return
        self.set_class(self.predicting, "-predict")
        self.set_class(self.serving, "-serve")
        self.refresh_bindings()
        layout = job_layout(self.job.plan, self.job.config_text)
        if layout.serving:  # no ranks: its server's log
            for file in files_to_follow(layout):
                if file.role == "server":
                    self._open_pane(file)
        for rank in () if layout.serving else layout.default_ranks:
            spec = layout.node_of(rank)
            if spec is not None:
                self._open_pane(LogFile(spec.node, worker_log(spec.job_dir, rank), "worker", rank))
        self._load_history()
        self.feed = JobLogFeed(self, self.services, self.job)
        self.run_worker(self.feed.start, thread=True, exit_on_error=False, group="job-feed",
                        description=f"following {self.job_id}'s logs")
        self.watch(self.app, "jobs", self._jobs_changed, init=True)
        self.set_interval(2.0, self._show_state)
        self._lay_out(self.size.width)

    def on_unmount(self) -> None:
        if self.feed is not None:
            stop_in_background(self.feed)
        if self._chat is not None and self._chat not in self.app.screen_stack:
            self.app.uninstall_screen(self._chat)  # on the stack: the app is closing, and takes it along
        self._forward.close()

    def _load_history(self) -> None:
        """What the store already holds: the loss history and the errors."""
        store = self.services.store
        assert store is not None and self.job is not None
        loss_ranks = job_layout(self.job.plan, self.job.config_text).loss_ranks
        self.query_one(LossChart).set_series(m for m in store.metrics(self.job_id) if m.rank in loss_ranks)
        self._reload_errors()
        self._reload_answer()
        self._show_state()

    # --- what arrives ----------------------------------------------------------------------------

    def on_job_log_feed_ready(self, _message: JobLogFeed.Ready) -> None:
        if self.feed is None:
            return
        batches = self.feed.take()
        errors = False
        for batch in batches:
            errors |= self._take(batch)
        if errors:
            self._reload_errors()
        if any(e.event.kind in ANSWER_KINDS for batch in batches for e in batch.events):
            self._reload_answer()
        if batches:
            self._show_state()

    def _take(self, batch: JobLogBatch) -> bool:
        """One batch into the panes, the chart and the ranks; whether it held errors."""
        now = self.services.clock()
        by_file: dict[str, list[JobLine]] = {}
        for line in batch.lines:
            by_file.setdefault(line.file.path, []).append(line)
        for path, lines in by_file.items():
            file = lines[0].file
            self._files[path] = file
            if file.rank is not None:
                self._last_line_at[(file.node, file.rank)] = now
            if path not in self.panes and file.role in ("worker", "server"):
                self._open_pane(file)
            if path in self.panes:
                self.panes[path].append(lines)
            else:
                self._unshown.setdefault(path, deque(maxlen=KEPT_UNSHOWN)).extend(lines)
        assert self.job is not None
        loss_ranks = job_layout(self.job.plan, self.job.config_text).loss_ranks
        points = [m for e in batch.events if e.rank in loss_ranks and (m := loss_metric(self.job_id, e))]
        if points:
            self.query_one(LossChart).add_points(points)
        for event in batch.events:
            if event.event.kind == "checkpoint" and event.rank is not None:
                self._checkpoints[event.rank] = self._checkpoints.get(event.rank, 0) + 1
        for notice in batch.notices:
            if notice.kind in ("disconnected", "reconnected", "replaced", "truncated"):
                self.notify(notice.message, title=batch.node, timeout=5,
                            severity="warning" if notice.kind != "reconnected" else "information")
        return any(e.event.severity == "error" for e in batch.events)

    def _reload_errors(self) -> None:
        store = self.services.store
        if store is None:
            return
        job = store.job(self.job_id)  # first: the errors read after it hold the one it names first
        self._errors = store.log_events(self.job_id, severity="error")
        self.job = job
        first = job.first_failure
        marked = next((e for e in self._errors if first and (e.node, e.path, e.line) ==
                       (first["node"], first["file"], first["line"])), None)
        self.query_one(ErrorTable).show(self._errors, marked)

    def _reload_answer(self) -> None:
        """The answer as recorded (the feed records a batch before it announces it)."""
        store = self.services.store
        if store is not None and self.predicting:
            self.query_one(AnswerPane).show(job_answer(store.log_events(self.job_id, severity="info")))

    @property
    def predicting(self) -> bool:
        return self.job is not None and self.job.plan.get("kind") == "predict"

    def _jobs_changed(self, snapshot: JobsSnapshot | None) -> None:
        summary = next((s for s in snapshot.jobs if s.job.id == self.job_id), None) if snapshot else None
        if summary is not None:
            self.job, self.launches = summary.job, summary.launches
            self._show_state()

    # --- what is shown ---------------------------------------------------------------------------

    def _show_state(self) -> None:
        if self.job is None or self.services.store is None:
            return
        if self.services.store.job(self.job_id).first_failure != self.job.first_failure:
            self._reload_errors()  # learnt without a new error: a pid matched to its rank later
        metrics = self.services.store.metrics(self.job_id)
        progress = {(p.node, p.rank): p for p in rank_progress(metrics)}
        states = node_states(self.launches)
        layout = job_layout(self.job.plan, self.job.config_text)
        ranks = []
        for spec in layout.nodes:
            node_state, code = states.get(spec.node, (self.job.state, None))
            for rank in spec.ranks:
                p = progress.get((spec.node, rank))
                quiet_since = self._last_line_at.get((spec.node, rank))
                ranks.append(RankState(spec.node, rank, node_state, code, p.step if p else None,
                                       p.total_steps if p else None, p.loss if p else None,
                                       p.per_step_ms if p else None, quiet_since))
        now = self.services.clock()
        self.query_one(RankTable).show(ranks, now=now)
        lead = max(progress.values(), key=lambda p: (p.step, p.rank in layout.loss_ranks), default=None)
        self.query_one("#job-header", Static).update(header_line(self.job, lead.step if lead else None,
                                                                 lead.total_steps if lead else None,
                                                                 lead.eta_seconds if lead else None,
                                                                 now=now,
                                                                 checkpoints=max(self._checkpoints.values(),
                                                                                 default=0),
                                                                 width=self.size.width - 2,
                                                                 stalled=[r.rank for r in ranks
                                                                          if r.stalled(now)]))

    def _open_pane(self, file: LogFile) -> LogPane:
        pane = LogPane(f"{file.node} · {file.label.split()[-1]} · {file.path.rsplit('/', 1)[-1]}")
        later = [p for path, p in self.panes.items() if _pane_order(self._files[path]) > _pane_order(file)]
        self.panes[file.path] = pane
        self._files[file.path] = file
        grid = self.query_one("#log-grid", VerticalScroll)
        grid.mount(pane, before=min(later, key=grid.children.index) if later else None)
        kept = self._unshown.pop(file.path, None)
        if kept:
            pane.append(list(kept))
        return pane

    def on_resize(self, event: Resize) -> None:
        self._lay_out(event.size.width)
        self._show_state()

    def _lay_out(self, width: int) -> None:
        narrow = width < WIDE
        self.set_class(narrow, "-narrow")
        for view in VIEWS:
            self.set_class(narrow and self.view == view, f"-view-{view}")
        grid = self.query_one("#log-grid", VerticalScroll)
        grid.set_class(not narrow and len(self.panes) > 1, "-two-columns")

    # --- actions ---------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A predict job has an answer instead of a loss chart, a serve job neither; a training job a chart.
        Only a serve job that runs can be talked to."""
        if action == "view" and parameters and parameters[0] == "chart":
            return not (self.predicting or self.serving)  # no loss to chart
        if action == "view" and parameters and parameters[0] == "answer":
            return self.predicting
        if action == "talk":
            return self.serving and self.job is not None and not self.job.finished
        return True

    @property
    def serving(self) -> bool:
        return self.job is not None and self.job.plan.get("kind") == "serve"

    def action_talk(self) -> None:
        if self._chat is not None:
            self.app.push_screen(self._chat)
            return
        self.notify("forwarding a port to the server…", timeout=3)
        self.run_worker(self._open_chat, thread=True, exit_on_error=False, group="job-talk",
                        exclusive=True, description=f"forwarding a port to {self.job_id}'s server")

    def _open_chat(self) -> None:
        """Off the event loop: the forward may first connect to the node."""
        assert self.job is not None
        pool = self._forward.enter_context(self.services.pool_for(self.job))
        url = self._forward.enter_context(endpoint_for(self.job, pool))
        self.app.call_from_thread(self._show_chat, url)

    def _show_chat(self, url: str) -> None:
        if not self.is_mounted:
            return
        self._chat = ChatScreen(ChatSettings(url))
        self.app.install_screen(self._chat, name=f"chat {self.job_id}")
        self.app.push_screen(self._chat)

    def action_view(self, view: str) -> None:
        self.view = view
        self._lay_out(self.size.width)
        first_pane = next(iter(self.panes.values()), None)
        target = {"logs": first_pane.view if first_pane else None, "chart": self.query_one(LossChart),
                  "errors": self.query_one(ErrorTable), "ranks": self.query_one(RankTable),
                  "answer": self.query_one(AnswerPane)}[view]
        if target is not None:
            target.focus()

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        if message.data_table is not self.query_one(ErrorTable):
            return
        event = next((e for e in self._errors if error_key(e) == message.row_key.value), None)
        if event is None:
            return
        file = self._files.get(event.path) or LogFile(event.node, event.path,
                                                        "worker" if event.rank is not None else "launcher",
                                                        event.rank)
        pane = self.panes.get(event.path) or self._open_pane(file)
        if event.path not in self._files and self.feed is not None and event.rank is not None:
            self.feed.add_ranks([event.rank])
        self.action_view("logs")
        pane.view.focus()
        if not pane.jump_to(event.line):
            self.notify(f"line {event.line} of {event.path} is not loaded yet (or no longer kept)", timeout=4)

    def action_add_ranks(self) -> None:
        def chosen(ranks: Sequence[int] | None) -> None:
            if ranks and self.feed is not None and self.job is not None:
                layout = job_layout(self.job.plan, self.job.config_text)
                for rank in ranks:
                    spec = layout.node_of(rank)
                    path = worker_log(spec.job_dir, rank) if spec else None
                    if spec is not None and path is not None and path not in self.panes:
                        self._open_pane(LogFile(spec.node, path, "worker", rank))
                added = self.feed.add_ranks(ranks)
                self._lay_out(self.size.width)
                self.notify(f"following rank(s) {', '.join(map(str, added))}" if added
                            else "already followed", timeout=3)

        world = job_layout(self.job.plan, self.job.config_text).world if self.job else 1
        self.app.push_screen(RankPrompt(world), chosen)

    def action_remove_pane(self) -> None:
        focused = self.focused
        pane = next((p for p in self.panes.values() if focused is not None and
                     (focused is p or p in focused.ancestors)), None)
        if pane is None:
            return
        path = next(path for path, p in self.panes.items() if p is pane)
        del self.panes[path]
        pane.remove()
        self._lay_out(self.size.width)

    def action_stop(self) -> None:
        if self.job is not None:
            stop_from_screen(self, self.services, self.job)


def _pane_order(file: LogFile) -> tuple[int, str, str]:
    """Panes in rank order; msrun's output and the scheduler's log after every rank, by node."""
    return (file.rank if file.rank is not None else 1 << 30, file.node, file.path)


def header_line(job: JobRecord, step: int | None, total: int | None, eta: float | None, *, now: float,
                checkpoints: int = 0, width: int | None = None, stalled: Sequence[int] = ()) -> str:
    """The job in one line; within `width` columns, when given, by saying the parts least needed more
    briefly (checkpoints, then the percentage, then the first failure) rather than wrapping. `stalled`:
    the running ranks silent for many of their step times (model.logsummary.stalled), said beside the
    state: a hung job still reads `running` on its nodes."""
    running_for = (job.updated_at if job.finished else now) - job.created_at
    state = f"{state_text(job)} {age_text(running_for)}"
    parts: list[tuple[str, str, int]] = [(job.id, job.id, 9), (state, state, 9)]  # (long, brief, order)
    if stalled and not job.finished:
        ranks = ",".join(map(str, sorted(stalled)))
        parts.append((f"STALLED: rank{'s' if len(stalled) > 1 else ''} {ranks}", f"stalled r{ranks}", 3))
    if step is not None:
        parts.append((f"step {step}/{total} ({100 * step / total:.0f}%)", f"step {step}/{total}", 1) if total
                     else (f"step {step}", f"step {step}", 9))
    if eta is not None and not job.finished:
        parts.append((f"ETA {age_text(eta)}", f"ETA {age_text(eta)}", 9))
    if checkpoints:
        parts.append((f"{checkpoints} checkpoint{'s' if checkpoints > 1 else ''}", f"{checkpoints} ckpt", 0))
    if job.first_failure:
        node, rank = job.first_failure["node"], job.first_failure["rank"]
        long, brief = (f"{node} rank {rank}", f"{node} r{rank}") if rank is not None else (node, node)
        parts.append((f"first failure: {long}", f"first: {brief}", 2))
    shown = [long for long, _, _ in parts]
    for index in sorted(range(len(parts)), key=lambda i: parts[i][2]):
        if width is None or len(" · ".join(shown)) <= width:
            break
        shown[index] = parts[index][1]
    return " · ".join(shown)
