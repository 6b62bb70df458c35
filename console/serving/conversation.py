"""A chat with an OpenAI-compatible endpoint: the settings, and the history each request carries.

The server keeps nothing between requests, so every question goes with every turn before it; an
answer stopped half-way stays in the history as far as it got (what the person saw is what the model
is told it said).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from console.serving.answer import AnswerClock
from console.serving.client import ServingClient

CHAT_ROUTE = "/v1/chat/completions"
DEFAULT_MAX_TOKENS = 128
DEFAULT_TEMPERATURE = 0.7


@dataclass(frozen=True)
class ChatSettings:
    url: str
    model: str | None = None
    """None: the endpoint's first model."""
    max_tokens: int | None = DEFAULT_MAX_TOKENS
    """None: as many as the server allows."""
    temperature: float = DEFAULT_TEMPERATURE


class Conversation:
    def __init__(self) -> None:
        self.turns: list[dict[str, str]] = []

    def asking(self, question: str) -> list[dict[str, str]]:
        """Every turn so far, then `question`."""
        return [*self.turns, {"role": "user", "content": question}]

    def answered(self, question: str, answer: str) -> None:
        self.turns += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]

    def clear(self) -> None:
        self.turns = []


def chat_body(settings: ChatSettings, model: str, messages: Sequence[dict[str, str]]) -> dict[str, Any]:
    """A chat completion request for `messages` as the settings say."""
    body: dict[str, Any] = {"model": model, "temperature": settings.temperature, "messages": list(messages)}
    if settings.max_tokens is not None:
        body["max_tokens"] = settings.max_tokens
    return body


def stream_answer(client: ServingClient, settings: ChatSettings, model: str,
                  messages: Sequence[dict[str, str]], clock: AnswerClock) -> Iterator[str]:
    """The answer to `messages` (the history, then the question) as its text comes; `clock` hears every
    chunk, for the answer's figures. Leaving the loop early closes the connection."""
    for chunk in client.stream(CHAT_ROUTE, chat_body(settings, model, messages)):
        clock.heard(chunk)
        if chunk.text:
            yield chunk.text
