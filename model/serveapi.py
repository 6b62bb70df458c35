"""The OpenAI API as `model.serve` speaks it: the requests it takes (validated by pydantic, with OpenAI's
names and ranges), the error body it refuses them with, and how chat and completions word an answer.

No MindSpore here; the routes and the generation are in model/serve.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator


class StreamOptions(BaseModel):
    include_usage: bool = False
    """A last chunk with the token counts (and no choices), as OpenAI sends it."""


class Sampled(BaseModel):
    """What both generating routes take, with OpenAI's names and ranges."""

    model: str | None = None
    """None: the one model served (vLLM's leniency)."""
    max_tokens: int | None = Field(default=None, ge=1)
    """None: up to the end of the context."""
    max_completion_tokens: int | None = Field(default=None, ge=1)
    """OpenAI's newer name for max_tokens, and the one read when both are given (as vLLM does)."""
    n: int = 1
    """Choices an answer: one only (a refusal says so rather than one choice for three asked)."""
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    """0: greedy."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    ignore_eos: bool = False
    """vLLM's extension: go on past the end-of-sentence token (load tests want answers of one length)."""
    stream: bool = False
    stream_options: StreamOptions | None = None

    @field_validator("n")
    @classmethod
    def one_choice(cls, n: int) -> int:
        if n != 1:
            raise ValueError(f"this server makes one choice an answer (n = 1), not {n}")
        return n

    @property
    def token_limit(self) -> int | None:
        """The most new tokens asked, by either name; None: up to the end of the context."""
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    """developer: OpenAI's newer name for system."""
    content: str | list[TextPart]
    """Text, or parts of text (images and audio are refused: this model reads text)."""

    @property
    def template_role(self) -> str:
        return "system" if self.role == "developer" else self.role

    @property
    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class ChatRequest(Sampled):
    messages: list[ChatMessage] = Field(min_length=1)


class CompletionRequest(Sampled):
    prompt: str


class RefusedError(Exception):
    """A request the server will not run: its OpenAI-style error."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.param, self.code = status, param, code


def error_body(message: str, *, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """OpenAI's form, which clients show: `type` is invalid_request_error for every refusal, 404s included,
    and server_error for a failure of ours."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(status: int, message: str, *, param: str | None = None,
                   code: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, param=param, code=code), status_code=status)


def failure_message(exc: Exception) -> str:
    return f"the server failed to answer: {type(exc).__name__}: {exc}"


def validation_message(errors: Sequence[Any]) -> tuple[str, str | None]:
    """FastAPI's list of problems as one sentence, and the field of the first."""
    first = errors[0]
    if first["type"] == "json_invalid":
        return f"the body is not valid JSON: {first.get('ctx', {}).get('error', first['msg'])}", None
    fields = [".".join(str(p) for p in e["loc"] if p != "body") or "body" for e in errors]
    said = "; ".join(f"{name}: {e['msg']}" for name, e in zip(fields, errors, strict=True))
    return said, fields[0]


@dataclass(frozen=True)
class Shape:
    """How one route words its answers: OpenAI's chat and (legacy) completions differ only in this."""

    object: str
    id_prefix: str
    chat: bool

    def choice(self, text: str | None, finish: str | None, *, chunk: bool) -> dict[str, Any]:
        if not self.chat:
            return {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        if not chunk:
            return {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
        return {"index": 0, "delta": {} if text is None else {"content": text}, "finish_reason": finish}


CHAT = Shape("chat.completion", "chatcmpl", chat=True)
COMPLETION = Shape("text_completion", "cmpl", chat=False)


def sse(document: dict[str, Any]) -> str:
    return f"data: {json.dumps(document, ensure_ascii=False)}\n\n"
