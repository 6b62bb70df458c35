"""`stop`'s progress on stderr: every node's step as it happens (SIGTERM sent and waiting, ranks gone,
verified) and the checkpoint rank 0 wrote. On a terminal, one live line folded by step with the seconds
waited; otherwise (a pipe, a log, CI) a plain line per step, so nothing is silent for the grace period."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from console.jobs.service import StopProgress, StopStage
from remote import nodeset

STAGE_LABELS: dict[StopStage, str] = {
    "signalled": "SIGTERM sent, waiting for the ranks",
    "exited": "ranks gone",
    "failed": "not stopped",
    "verifying": "checking npu-smi",
    "verified": "verified",
    "checkpoint": "verified",
}


class StopBoard:
    """A progress callback for `stop_job` (called on its thread) and, on a terminal, the live line."""

    def __init__(self, console: Console, nodes: Iterable[str], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.live = console.is_terminal
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._stages: dict[str, StopStage] = dict.fromkeys(nodes, "signalled")

    def __call__(self, event: StopProgress) -> None:
        with self._lock:
            self._stages[event.node] = event.stage
        if event.stage == "checkpoint" or not self.live:
            self.console.print(f"{escape(event.node)}: {escape(event.message)}", soft_wrap=True)

    def __rich__(self) -> Text:
        """Nodes folded by step (`node[0-3]: ranks gone`), and the seconds since the signal."""
        with self._lock:
            by_label: dict[str, list[str]] = {}
            for node, stage in self._stages.items():
                by_label.setdefault(STAGE_LABELS[stage], []).append(node)
        waited = f"stopping, {self._clock() - self._started:.0f} s: "
        parts = [f"{nodeset.fold(nodes)}: {label}" for label, nodes in by_label.items()]
        return Text(waited + "; ".join(parts))
