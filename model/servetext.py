"""Text for `model.serve`: chat messages made one prompt, and new tokens made text as they come.

Light (no MindSpore, no web framework): the console and the tests read it too. Decoding is incremental
the way streaming servers do it: the whole answer is decoded again after each token and only what is
new and final is sent, so a character split over two byte-level tokens is never sent half, and text
that could still become a stop string is held back until it cannot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

USER = "<｜User｜>"  # noqa: RUF001 - DeepSeek-V3's chat template, character for character
ASSISTANT = "<｜Assistant｜>"  # noqa: RUF001
END = "<｜end▁of▁sentence｜>"  # noqa: RUF001
"""DeepSeek-V3's chat markers. A tokenizer without them as special tokens (the embedded corpus's) reads
them as plain text, which is what a small model trained on it has to go on."""

REPLACEMENT = "\ufffd"
"""What a decoder gives for the first bytes of a character whose last bytes are still to come."""
CHARACTER_TOKENS = 4
"""A UTF-8 character is at most four bytes, so at most four byte-level tokens: text still undecodable
after that many is not a character being completed but bytes that are no character (noise from a model
that learned little), and is sent as it decodes rather than held to the end."""


@dataclass(frozen=True)
class Message:
    role: str
    """system, user or assistant"""
    content: str


def chat_prompt(messages: Sequence[Message]) -> str:
    """DeepSeek-V3's template: system text first, each turn behind its marker, the assistant's turn open."""
    system = "".join(m.content for m in messages if m.role == "system")
    turns = []
    for message in messages:
        if message.role == "user":
            turns.append(f"{USER}{message.content}")
        elif message.role == "assistant":
            turns.append(f"{ASSISTANT}{message.content}{END}")
    return f"{system}{''.join(turns)}{ASSISTANT}"


@dataclass(frozen=True)
class Piece:
    """What one more token made: text to send now (maybe empty) and whether a stop string ended it."""

    text: str
    stopped: bool = False


class TextStream:
    """An answer's tokens become text: `add` each token, send what it returns."""

    def __init__(self, decode: Callable[[list[int]], str], stops: Sequence[str] = ()) -> None:
        self._decode = decode
        self._stops = tuple(s for s in stops if s)
        self._tokens: list[int] = []
        self._undecoded = 0
        """Tokens in a row whose text ended undecodable."""
        self.sent = ""
        """The text sent so far: the answer, once the last piece is taken."""

    def add(self, token: int) -> Piece:
        self._tokens.append(token)
        text = self._decode(self._tokens)
        cut = self._first_stop(text)
        if cut is not None:
            return self._send_up_to(text, cut, stopped=True)
        self._undecoded = self._undecoded + 1 if text.endswith(REPLACEMENT) else 0
        if 0 < self._undecoded < CHARACTER_TOKENS:
            return Piece("")
        return self._send_up_to(text, len(text) - self._held(text))

    def flush(self) -> Piece:
        """The text held back for a stop string that never came, when the answer ends."""
        text = self._decode(self._tokens)
        return self._send_up_to(text, len(text))

    def _send_up_to(self, text: str, end: int, *, stopped: bool = False) -> Piece:
        new = text[len(self.sent):end] if end > len(self.sent) else ""
        self.sent += new
        return Piece(new, stopped)

    def _first_stop(self, text: str) -> int | None:
        """Where the earliest stop string begins; never in text sent, which `_held` kept clear of them."""
        found = [i for s in self._stops if (i := text.find(s, len(self.sent))) >= 0]
        return min(found) if found else None

    def _held(self, text: str) -> int:
        """How many last characters could still begin a stop string."""
        return max((n for s in self._stops for n in range(1, len(s)) if text.endswith(s[:n])), default=0)
