"""Log lines and events as the headless commands (and the TUI) show them: JSON documents, progress.

The JSON schema is documented in docs/logs-json.md; change both together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from console.jobs.joblog import JobEvent
from console.records import MetricRecord
from model.answers import result_texts
from model.logevents import LogEvent, stamped
from remote.follow import FollowNotice

NOTICE_SEVERITY = {"truncated": "warning", "replaced": "warning", "rewritten": "warning",
                   "unreadable": "warning", "disconnected": "warning"}


def log_event_document(event: LogEvent, *, node: str | None, rank: int | None, file: str,
                       time: float | None) -> dict[str, Any]:
    """One event as `logs --json` prints it: plain JSON (a NaN or infinite number is null, the loss's
    also spelled out in `loss_text`)."""
    document: dict[str, Any] = {
        "node": node, "rank": rank, "kind": event.kind, "severity": event.severity, "time": time,
        "time_inferred": time is None or not stamped(event.lines[0]), "file": file, "line": event.line}
    if event.loss is not None:
        loss = event.loss
        document.update({"step": loss.step, "total_steps": loss.total_steps, "loss": _finite(loss.loss),
                         "lr": _finite(loss.lr), "per_step_ms": _finite(loss.per_step_ms),
                         "global_norm": _finite(loss.global_norm),
                         "throughput_tflops": _finite(loss.throughput_tflops),
                         "parts": {name: _finite(value) for name, value in loss.parts.items()}})
        if loss_text(loss.loss) is not None:
            document["loss_text"] = loss_text(loss.loss)
    if event.kind != "loss":
        document.update({"message": event.message, "lines": list(event.lines)})
        for name in ("code", "source", "exit_code", "pid"):
            value = getattr(event, name)
            if value is not None:
                document[name] = value
    if event.kind == "answer":
        document["texts"] = list(result_texts(event.lines[0]) or ())
    return document


def loss_text(value: float | None) -> str | None:
    """`nan`, `inf` or `-inf` for a loss JSON cannot carry; None for a finite one (or none)."""
    return None if value is None or math.isfinite(value) else str(value)


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def job_event_document(event: JobEvent) -> dict[str, Any]:
    return log_event_document(event.event, node=event.file.node, rank=event.rank, file=event.file.path,
                              time=event.time)


def notice_document(node: str, notice: FollowNotice, time: float) -> dict[str, Any]:
    return {"node": node, "rank": None, "kind": f"follow-{notice.kind}",
            "severity": NOTICE_SEVERITY.get(notice.kind, "info"), "time": time, "time_inferred": False,
            "file": notice.path, "line": None, "message": notice.message}


def run_ended_document(node: str, exit_code: int, time: float) -> dict[str, Any]:
    severity = "info" if exit_code == 0 else "error"
    return {"node": node, "rank": None, "kind": "run-ended", "severity": severity, "time": time,
            "time_inferred": False, "file": None, "line": None, "exit_code": exit_code,
            "message": f"{node}: run ended with exit code {exit_code}"}


def failed_document(node: str, what: str, time: float) -> dict[str, Any]:
    return {"node": node, "rank": None, "kind": "follow-failed", "severity": "error", "time": time,
            "time_inferred": False, "file": None, "line": None,
            "message": f"{node}: following its logs failed: {what}"}


@dataclass(frozen=True)
class RankProgress:
    """Where one rank is, from its recorded loss lines."""

    node: str
    rank: int
    step: int
    total_steps: int | None
    loss: float | None
    """None: N/A (not the last pipeline stage), or not finite: then `loss_text` says nan or inf."""
    loss_text: str | None
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
                "loss": self.loss, "loss_text": self.loss_text, "per_step_ms": self.per_step_ms,
                "eta_seconds": self.eta_seconds, "time": self.time}


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
        found.append(RankProgress(node, rank, last.step, last.extra.get("total_steps"), _finite(last.loss),
                                  last.extra.get("loss_text"), mean, last.time))
    return found
