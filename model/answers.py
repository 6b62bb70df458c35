"""What a predict run answered, read from its logs or its result file. Pure, never raising, no I/O.

MindFormers' predict (`mindformers/trainer/base_trainer.py`, serving-and-logs.md §2) logs

    output result is: [{'text_generation_text': ['...']}]
    output result is saved at: text_generation_result.txt
    .........Predict Over!.............

and writes the same Python repr of the list to the result file. With many prompts the list holds one
mapping per prompt (or one mapping holding several texts); either way the texts come out in prompt
order. MindFormers' text generator logs its speed once per generate call (`total time: 1.2 s;
generated tokens: 24 tokens; generate speed: 19.5 tokens/s`); this project's predict logs the same
line, one per prompt, with `; first token: 0.41 s` after it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

RESULT_MARK = "output result is: "
SAVED_MARK = "output result is saved at: "
PREDICT_OVER = ".........Predict Over!............."
RESULT_FILE = "text_generation_result.txt"
"""MindFormers' `<task>_result.txt` for the text-generation task."""
TEXT_KEY = "text_generation_text"
SPEED_MARK = "generated tokens: "
_SPEED = re.compile(
    r"total time: (?P<seconds>[0-9.eE+-]+) s; generated tokens: (?P<tokens>[0-9.]+) tokens; "
    r"generate speed: (?P<rate>[0-9.eE+-]+) tokens/s(?:; first token: (?P<first>[0-9.eE+-]+) s)?",
    re.ASCII)
_SPECIAL_FIRST = re.compile("^<\uff5c[^\uff5c>]*\uff5c>")
"""A DeepSeek special token (the begin-of-sentence one, in full-width bars) decoded before the prompt."""
_READ_ERRORS = (ValueError, SyntaxError, TypeError, MemoryError, RecursionError)
"""What `ast.literal_eval` raises on text that is not a Python literal."""


@dataclass(frozen=True)
class Speed:
    """One generate call's timing, as its log line says it."""

    seconds: float
    tokens: int
    tokens_per_second: float
    first_token_seconds: float | None = None
    """Time to the first new token; only this project's predict says it."""


def result_texts(line: str) -> tuple[str, ...] | None:
    """The generated texts of a result line (prompt included, as MindFormers prints them), in prompt
    order; None when the line is not one, or its list cannot be read."""
    _, mark, rest = line.partition(RESULT_MARK)
    if not mark:
        return None
    return _texts(rest)


def file_texts(text: str) -> tuple[str, ...]:
    """The texts of a result file: MindFormers' repr of the result list; else one text a line. A list
    that cannot be read (cut short, corrupt) gives none: its lines are no answers."""
    found = _texts(text)
    if found is not None:
        return found
    if text.lstrip().startswith("["):
        return ()
    return tuple(line for line in text.splitlines() if line.strip())


def result_line(texts: Sequence[str]) -> str:
    """MindFormers' rendering: the repr of its result list, one mapping per prompt (Python 3 keeps
    CJK characters as they are)."""
    return f"{RESULT_MARK}{result_repr(texts)}"


def result_repr(texts: Sequence[str]) -> str:
    return repr([{TEXT_KEY: [text]} for text in texts])


def speed_line(speed: Speed) -> str:
    """This project's speed line: MindFormers' wording, then the time to the first token."""
    line = (f"total time: {speed.seconds:.3f} s; generated tokens: {speed.tokens} tokens; "
            f"generate speed: {speed.tokens_per_second:.2f} tokens/s")
    if speed.first_token_seconds is None:
        return line
    return f"{line}; first token: {speed.first_token_seconds:.3f} s"


def parse_speed(line: str) -> Speed | None:
    if SPEED_MARK not in line:
        return None
    found = _SPEED.search(line)
    if found is None:
        return None
    try:
        first = found["first"]
        return Speed(float(found["seconds"]), int(float(found["tokens"])), float(found["rate"]),
                     float(first) if first is not None else None)
    except ValueError:
        return None


def shown_text(text: str) -> str:
    """A text as a person reads it: without the special token decoded before the prompt."""
    return _SPECIAL_FIRST.sub("", text)


def _texts(literal: str) -> tuple[str, ...] | None:
    try:
        value = ast.literal_eval(literal.strip())
    except _READ_ERRORS:
        return None
    texts: list[str] = []
    _collect(value, texts, depth=0)
    return tuple(texts) if texts else None


def _collect(value: Any, texts: list[str], *, depth: int) -> None:
    """The texts under TEXT_KEY in a result, in order; plain strings of a list count too."""
    if depth > 4:
        return
    if isinstance(value, dict):
        value = value.get(TEXT_KEY, ())
        if isinstance(value, str):
            texts.append(value)
            return
    if isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, str):
                texts.append(item)
            else:
                _collect(item, texts, depth=depth + 1)
