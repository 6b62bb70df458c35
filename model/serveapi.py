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
from pydantic import BaseModel, Field


class StreamOptions(BaseModel):
    include_usage: bool = False
    """A last chunk with the token counts (and no choices), as OpenAI sends it."""


class Sampled(BaseModel):
    """What both generating routes take, with OpenAI's names and ranges."""

    model: str | None = None
    """None: the one model served (vLLM's leniency)."""
    max_tokens: int | None = Field(default=None, ge=1)
    """None: up to the end of the context."""
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    """0: greedy."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    ignore_eos: bool = False
    """vLLM's extension: go on past the end-of-sentence token (load tests want answers of one length)."""
    stream: bool = False
    stream_options: StreamOptions | None = None


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


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
