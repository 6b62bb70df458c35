"""The Textual app: composes the screens and holds the global keys. Nothing else lives here."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen

from console.health_poller import HealthSource
from console.screens.dashboard import DashboardScreen
from console.screens.help import HelpScreen, bindings_of
from remote.inventory import Cluster

DEFAULT_REFRESH = 5.0


class AscendConsole(App[None]):
    """ascend-console: the cluster's live health (and, later, its jobs)."""

    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", key_display="?", id="app.help"),
    ]

    def __init__(self, cluster: Cluster, source: HealthSource, *, refresh: float = DEFAULT_REFRESH,
                 clock: Callable[[], float] = time.time) -> None:
        """The app owns `source` from here on: it is closed when the dashboard goes away."""
        super().__init__()
        self.cluster = cluster
        self._source = source
        self._refresh = refresh
        self._clock = clock
        self.title = f"ascend-console · {cluster.name}"

    def get_default_screen(self) -> Screen[None]:
        return DashboardScreen(self.cluster, self._source, interval=self._refresh, clock=self._clock)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        where = "dashboard" if isinstance(self.screen, DashboardScreen) else "node detail"
        self.push_screen(HelpScreen(bindings_of(self.screen, self), where))


def make_app(cluster: Cluster, source: HealthSource, *, refresh: float = DEFAULT_REFRESH,
             clock: Callable[[], float] = time.time) -> AscendConsole:
    """The app factory (tests feed it a fixed source and clock)."""
    return AscendConsole(cluster, source, refresh=refresh, clock=clock)
