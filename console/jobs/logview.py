"""Log lines and events as the headless commands (and the TUI) show them: JSON documents, progress.

The JSON schema is documented in docs/logs-json.md; change both together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from console.jobs.follow import JobEvent
from console.store import MetricRecord
from model.logevents import LogEvent
from remote.follow import FollowNotice

NOTICE_SEVERITY = {"truncated": "warning", "replaced": "warning", "unreadable": "warning",
                   "disconnected": "warning"}


def event_document(event: LogEvent, *, node: str | None, rank: int | None, file: str,
                   time: float | None) -> dict[str, Any]:
    """One event as `logs --json` prints it."""
    document: dict[str, Any] = {
        "node": node, "rank": rank, "kind": event.kind, "severity": event.severity, "time": time,
        "file": file, "line": event.line}
    if event.loss is not None:
        loss = event.loss
        document.update({"step": loss.step, "total_steps": loss.total_steps, "loss": loss.loss, "lr": loss.lr,
                         "per_step_ms": loss.per_step_ms, "global_norm": loss.global_norm,
                         "throughput_tflops": loss.throughput_tflops, "parts": dict(loss.parts)})
    else:
        document.update({"message": event.message, "lines": list(event.lines)})
        for name in ("code", "source", "exit_code", "pid"):
            value = getattr(event, name)
            if value is not None:
                document[name] = value
    return document


def job_event_document(event: JobEvent) -> dict[str, Any]:
    return event_document(event.event, node=event.file.node, rank=event.rank, file=event.file.path,
                          time=event.time)


def notice_document(node: str, notice: FollowNotice, time: float) -> dict[str, Any]:
    return {"node": node, "rank": None, "kind": f"follow-{notice.kind}",
            "severity": NOTICE_SEVERITY.get(notice.kind, "info"), "time": time, "file": notice.path,
            "message": notice.message}


@dataclass(frozen=True)
class RankProgress:
    """Where one rank is, from its recorded loss lines."""

    node: str
    rank: int
    step: int
    total_steps: int | None
    loss: float | None
    per_step_ms: float | None
    """Mean of the last steps' times (the first steps compile and are slow)."""
    time: float

    @property
    def eta_seconds(self) -> float | None:
        if self.total_steps is None or self.per_step_ms is None:
            return None
        return max(0, self.total_steps - self.step) * self.per_step_ms / 1000

    def as_json(self) -> dict[str, Any]:
        return {"node": self.node, "rank": self.rank, "step": self.step, "total_steps": self.total_steps,
                "loss": self.loss, "per_step_ms": self.per_step_ms, "eta_seconds": self.eta_seconds,
                "time": self.time}


RECENT_STEPS = 10


def rank_progress(metrics: Sequence[MetricRecord]) -> list[RankProgress]:
    """Per (node, rank): its last step, loss, mean recent step time and ETA. Metrics in step order."""
    by_rank: dict[tuple[str, int], list[MetricRecord]] = {}
    for metric in metrics:
        by_rank.setdefault((metric.node, metric.rank), []).append(metric)
    found: list[RankProgress] = []
    for (node, rank), series in sorted(by_rank.items(), key=lambda item: item[0][1]):
        last = series[-1]
        times = [m.extra["per_step_ms"] for m in series[-RECENT_STEPS:] if m.extra.get("per_step_ms")]
        mean = sum(times) / len(times) if times else None
        found.append(RankProgress(node, rank, last.step, last.extra.get("total_steps"), last.loss, mean,
                                  last.time))
    return found
