"""A predict job's answer as the console shows it: the texts of the lowest rank that printed a result
line (its latest), one entry per prompt, with that rank's generation speeds. Read from the events the
follow path recorded (`answer`, `generation`: model/loglines.py), or from the result file the run left
in its job directory when no log said it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from console.records import LogEventRecord
from model.answers import Speed, file_texts, parse_speed, result_texts, shown_text

ANSWER_KINDS = ("answer", "generation")


@dataclass(frozen=True)
class JobAnswer:
    node: str
    rank: int | None
    texts: tuple[str, ...]
    """One a prompt, the prompt included, as the model decoded it (a leading special token removed)."""
    speeds: tuple[Speed, ...] = ()
    """The rank's generate calls in order: one a prompt (this project's predict), or one a batch."""
    source: str = ""
    """The file the answer was read from (a rank's log, or the result file)."""

    def speed_of(self, index: int) -> Speed | None:
        """The timing of prompt `index`, when the log has one a prompt."""
        return self.speeds[index] if len(self.speeds) == len(self.texts) else None

    def as_json(self) -> dict[str, Any]:
        return {"node": self.node, "rank": self.rank, "source": self.source,
                "answers": [{"prompt": i, "text": text, **_speed_document(self.speed_of(i))}
                            for i, text in enumerate(self.texts)],
                "generation": [_speed_document(s) for s in self.speeds]}


def job_answer(events: Sequence[LogEventRecord]) -> JobAnswer | None:
    """The answer among a job's recorded events (oldest first), or None when no rank printed one."""
    answers = [(e, texts) for e in events if e.kind == "answer"
               and (texts := result_texts(e.lines[0] if e.lines else "")) is not None]
    if not answers:
        return None
    lowest = min(_rank_order(e) for e, _ in answers)
    event, texts = [(e, t) for e, t in answers if _rank_order(e) == lowest][-1]
    speeds = tuple(s for e in events if e.kind == "generation"
                   and (e.node, e.rank) == (event.node, event.rank)
                   and (s := parse_speed(e.lines[0] if e.lines else "")) is not None)
    return JobAnswer(event.node, event.rank, tuple(shown_text(t) for t in texts), speeds, event.path)


def file_answer(node: str, path: str, text: str) -> JobAnswer | None:
    """The answer a result file holds, or None when it holds none."""
    texts = file_texts(text)
    return JobAnswer(node, None, tuple(shown_text(t) for t in texts), source=path) if texts else None


def _rank_order(event: LogEventRecord) -> tuple[int, str]:
    return (event.rank if event.rank is not None else 1 << 30, event.node)


def _speed_document(speed: Speed | None) -> dict[str, Any]:
    if speed is None:
        return {}
    return {"seconds": speed.seconds, "tokens": speed.tokens, "tokens_per_second": speed.tokens_per_second,
            "first_token_seconds": speed.first_token_seconds}


def speed_text(speed: Speed) -> str:
    """`first token 0.41 s · 24 tokens at 18.3 tokens/s`."""
    first = "" if speed.first_token_seconds is None else f"first token {speed.first_token_seconds:.2f} s · "
    return f"{first}{speed.tokens} tokens at {speed.tokens_per_second:.1f} tokens/s"
