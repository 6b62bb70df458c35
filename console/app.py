"""The Textual app: owns the services and the health feed, switches between the screens (modes), holds
the global keys, and turns any worker's failure into a notice. Screens do the rest
(docs/architecture.md says how to add one)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.dom import DOMNode
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from console.collector import FREEZE_EVERY, freeze_survivors
from console.feeds.health import HealthFeed, HealthSnapshot, HealthSource
from console.feeds.jobs import JobsFeed, JobsSnapshot
from console.jobs.demo import DemoOptions
from console.screens.chat import ChatScreen
from console.screens.dashboard import DashboardScreen
from console.screens.demo import DemoScreen
from console.screens.help import HelpScreen, bindings_of, screen_title
from console.screens.job import JobScreen
from console.screens.jobs import JobsScreen
from console.screens.wizard import WizardScreen
from console.services import ConsoleServices
from console.serving.conversation import ChatSettings
from remote.inventory import Cluster

DEFAULT_REFRESH = 5.0
MODES_SHOWN = {"health": "Health: every node", "jobs": "Jobs: every job in the store",
               "wizard": "Wizard: build and launch a job step by step"}


class AscendConsole(App[None]):
    """ascend-console: the cluster's live health and its jobs."""

    CSS_PATH = "app.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", key_display="?", id="app.help"),
        Binding("h", "switch_mode('health')", "Health", id="app.health"),
        Binding("j", "switch_mode('jobs')", "Jobs", id="app.jobs"),
        Binding("w", "switch_mode('wizard')", "Wizard", id="app.wizard"),
    ]

    health: reactive[HealthSnapshot | None] = reactive(None, always_update=True)
    """The latest round of node health; screens watch it."""
    health_round_began: reactive[float | None] = reactive(None)
    """time.monotonic() when the running round began (None: no round running)."""
    jobs: reactive[JobsSnapshot | None] = reactive(None, always_update=True)
    """Every job in the store, refreshed from the nodes; screens watch it."""

    def __init__(self, services: ConsoleServices, *, mode: str = "health", job_id: str | None = None,
                 demo: DemoOptions | None = None, chat: ChatSettings | None = None) -> None:
        """`mode`: the screen first shown; `job_id`: a job whose screen opens over it; `demo`: the demo
        runs over it (then its job's screen, then the answer); `chat`: the chat pane opens over it."""
        super().__init__()
        self._first_job = job_id
        self._demo = demo
        self._chat = chat
        self.services = services
        self.cluster = services.cluster
        self.title = f"ascend-console · {services.cluster.name}"
        self._first_mode = mode
        self.health_feed = HealthFeed(self, services.health, interval=services.refresh, clock=services.clock)
        self.jobs_feed = JobsFeed(self, services)
        self.add_mode("health", lambda: DashboardScreen(services))
        self.add_mode("jobs", lambda: JobsScreen(services))
        self.add_mode("wizard", lambda: WizardScreen(services))

    def on_mount(self) -> None:
        self.set_interval(FREEZE_EVERY, freeze_survivors)  # log panes keep many long-lived lines
        self.switch_mode(self._first_mode)
        if self._first_job is not None:
            self.push_screen(JobScreen(self.services, self._first_job))
        if self._demo is not None:
            self.push_screen(DemoScreen(self.services, self._demo))
        if self._chat is not None:
            self.push_screen(ChatScreen(self._chat))
        self.health_feed.start()
        if self.services.store is not None:
            self.jobs_feed.start()

    def on_unmount(self) -> None:
        self.health_feed.stop()
        self.jobs_feed.stop()
        self.services.close()

    # --- health, once for every screen -----------------------------------------------------------

    def on_health_feed_round_started(self, _message: HealthFeed.RoundStarted) -> None:
        self.health_round_began = time.monotonic()

    def on_health_feed_checked(self, message: HealthFeed.Checked) -> None:
        self.health_round_began = None
        self.health = message.snapshot

    def action_refresh_health(self) -> None:
        """Start the next health round now."""
        self.health_feed.poll_now()

    # --- jobs, once for every screen ---------------------------------------------------------------

    def on_jobs_feed_listed(self, message: JobsFeed.Listed) -> None:
        self.jobs = message.snapshot

    def on_jobs_feed_refresh_now(self, _message: JobsFeed.RefreshNow) -> None:
        self.jobs_feed.poll_now()

    def action_refresh_jobs(self) -> None:
        """Ask the jobs' nodes now."""
        self.jobs_feed.poll_now()

    # --- any worker's failure ------------------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that raised is a notice naming what failed, never a crash, never silence."""
        if event.state is not WorkerState.ERROR:
            return
        worker = event.worker
        what = worker.description or worker.name or "a background task"
        error = worker.error
        self.notify(f"{what}: {type(error).__name__}: {error}", title="failed", severity="error",
                    timeout=10)
        if worker.group == HealthFeed.GROUP:
            self.set_timer(self.health_feed.interval, self.health_feed.restart)
        elif worker.group == JobsFeed.GROUP:
            self.set_timer(self.jobs_feed.interval, self.jobs_feed.restart)

    # --- keys, help, the command palette ---------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The key to the screen already shown is left out of the footer."""
        return not (action == "switch_mode" and parameters and parameters[0] == self.current_mode)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(bindings_of(self.screen, self), screen_title(self.screen)))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Every screen, and every key in force on this one, searchable by what it does."""
        yield from super().get_system_commands(screen)
        for mode, title in MODES_SHOWN.items():
            yield SystemCommand(title, f"switch to the {mode} screen", _switch(self, mode))
        for key in bindings_of(screen, self):
            if key.action not in ("quit", "help") and not key.action.startswith("switch_mode"):
                yield SystemCommand(key.description, f"key {key.key} · {screen_title(screen)}",
                                    _run(self, key.node, key.action))


def _switch(app: AscendConsole, mode: str) -> Callable[[], object]:
    return partial(app.switch_mode, mode)


def _run(app: App[None], node: DOMNode, action: str) -> Callable[[], Awaitable[bool]]:
    return partial(app.run_action, action, node)


def make_app(cluster: Cluster, source: HealthSource, *, refresh: float = DEFAULT_REFRESH,
             clock: Callable[[], float] = time.time, mode: str = "health",
             chat: ChatSettings | None = None) -> AscendConsole:
    """The app factory for tests: a fixed health source and clock, no node pool, no store."""
    return AscendConsole(ConsoleServices(cluster, source, refresh=refresh, clock=clock), mode=mode, chat=chat)
