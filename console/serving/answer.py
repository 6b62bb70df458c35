"""One answer's figures as its chunks arrive: the time to the first token, tokens, tokens a second.

Pure apart from the clock, which is given: the chat pane, `chat --prompt` and `bench-serve` all time
answers this way, so their figures mean the same thing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from console.serving.client import Chunk


@dataclass(frozen=True)
class AnswerStats:
    text: str
    tokens: int
    """The server's count when it gives one (`usage`), else the chunks that carried text."""
    seconds: float
    """From sending the request to the last chunk."""
    first_token_seconds: float | None
    """From sending the request to the first chunk with text (None: no text came)."""
    finish_reason: str | None

    @property
    def tokens_per_second(self) -> float:
        """Over the whole answer, the wait for the first token included (as predict's speed line)."""
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        first = "-" if self.first_token_seconds is None else f"{self.first_token_seconds:.2f} s"
        finish = f" · {self.finish_reason}" if self.finish_reason else ""
        return (f"first token {first} · {self.tokens} tokens in {self.seconds:.2f} s · "
                f"{self.tokens_per_second:.1f} tokens/s{finish}")


class AnswerClock:
    """Started when made (just before the request is sent); `heard` every chunk, then `stats`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started = clock()
        self._first: float | None = None
        self._last = self._started
        self._pieces: list[str] = []
        self._counted: int | None = None
        self._finish: str | None = None

    def heard(self, chunk: Chunk) -> None:
        self._last = self._clock()
        if chunk.text:
            if self._first is None:
                self._first = self._last - self._started
            self._pieces.append(chunk.text)
        self._finish = chunk.finish_reason or self._finish
        self._counted = chunk.completion_tokens if chunk.completion_tokens is not None else self._counted

    def stats(self) -> AnswerStats:
        tokens = self._counted if self._counted is not None else len(self._pieces)
        return AnswerStats("".join(self._pieces), tokens, self._last - self._started, self._first,
                           self._finish)
