"""A client of any OpenAI-compatible endpoint (our `model.serve`, vLLM, vLLM-MindSpore): its models, and
answers streamed as server-sent events, on httpx.

Blocking: run it on a worker thread. Whatever goes wrong on the way is an `EndpointError` whose message
a person can act on (the server refused the request and why, nothing listens there, it went away
mid-answer, it said nothing for too long), never a traceback. Leaving the loop over `stream` early
closes the connection, which tells the server to stop generating.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

DONE = "[DONE]"
ErrorKind = Literal["refused", "failed", "timed out", "gone"]


class EndpointError(Exception):
    """The endpoint refused, failed or could not be reached; the message says which and why."""

    def __init__(self, message: str, *, reachable: bool, code: str | None = None,
                 kind: ErrorKind | None = None) -> None:
        super().__init__(message)
        self.reachable = reachable
        """False: nothing answered (refused, gone, timed out); True: it answered with an error."""
        self.code = code
        """The OpenAI error body's `code` (e.g. context_length_exceeded), when it gave one."""
        self.kind: ErrorKind = kind or ("failed" if reachable else "gone")
        """What a person is told happened: it refused the request (4xx), failed at it (5xx, an error
        mid-answer, an answer that is not OpenAI's), timed out, or is gone (unreachable, or it left)."""


@dataclass(frozen=True)
class ServedModel:
    id: str
    max_model_len: int | None
    warning: str | None
    """What the server says is wrong with it (our server: freshly initialised weights)."""


@dataclass(frozen=True)
class Chunk:
    """One server-sent event of an answer: text (maybe empty), and at the end why it finished and the
    token count, when the server says them."""

    text: str = ""
    finish_reason: str | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class Limits:
    """Every wait the client makes, in seconds."""

    connect: float = 5.0
    read: float = 120.0
    """Between two events of a stream: a request queued behind others waits for its first."""


DEFAULT_LIMITS = Limits()


class ServingClient:
    """One endpoint (`http://host:port`, with or without `/v1`). Close it when done."""

    def __init__(self, url: str, *, limits: Limits = DEFAULT_LIMITS) -> None:
        self.url = base_url(url)
        timeout = httpx.Timeout(limits.read, connect=limits.connect)
        # no proxy from the environment: the console talks to local URLs and its own port forwards, and a
        # proxy would see the prompts (and take bench-serve's load off this machine)
        self._http = httpx.Client(base_url=self.url, timeout=timeout, trust_env=False)
        self._lock = threading.Lock()
        self._open: set[httpx.Response] = set()
        self._interrupted = False

    def __enter__(self) -> ServingClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def interrupt(self) -> None:
        """From any thread: every answer being streamed ends now, and any later one at once. Its
        connection is shut, so a thread blocked reading it wakes with an EndpointError and the server
        sees the client leave (closing the response from another thread would not wake the reader)."""
        with self._lock:
            self._interrupted = True
            responses = list(self._open)
        for response in responses:
            shut(response)

    def models(self) -> list[ServedModel]:
        with translated(self.url, "GET /v1/models"):
            response = self._http.get("/v1/models")
        document = self._checked(response, "GET /v1/models")
        listed = document.get("data")
        if not isinstance(listed, list) or not all(isinstance(m, dict) and "id" in m for m in listed):
            raise EndpointError(f"{self.url}'s answer to GET /v1/models is not an OpenAI /v1/models answer "
                                f"(a list of models with ids): {json.dumps(document)[:200]}", reachable=True)
        return [ServedModel(str(m["id"]), m.get("max_model_len"), m.get("warning")) for m in listed]

    def model(self, named: str | None = None) -> ServedModel:
        """The model `named` (the endpoint judges a name it does not list), else the endpoint's first."""
        models = self.models()
        if named is not None:
            return next((m for m in models if m.id == named), ServedModel(named, None, None))
        if not models:
            raise EndpointError(f"{self.url} serves no model (/v1/models is empty)", reachable=True)
        return models[0]

    def stream(self, route: str, body: dict[str, Any]) -> Iterator[Chunk]:
        """POST `body` (with `stream` set) to `/v1/chat/completions` or `/v1/completions`; its chunks."""
        what = f"POST {route}"
        request = {**body, "stream": True, "stream_options": {"include_usage": True}}
        with translated(self.url, what), self._http.stream("POST", route, json=request) as response:
            with self._lock:
                self._open.add(response)
                if self._interrupted:
                    shut(response)
            try:
                if response.status_code >= 400:
                    response.read()
                    self._checked(response, what)
                yield from self._chunks(response, what)
            finally:
                with self._lock:
                    self._open.discard(response)

    def _chunks(self, response: httpx.Response, what: str) -> Iterator[Chunk]:
        done = False
        for data in sse_data(response.iter_lines()):
            if data == DONE:
                done = True
                break
            yield parsed_chunk(data)
        if not done:
            raise EndpointError(f"{self.url} ended its answer to {what} without [DONE]: it stopped midway",
                                reachable=False)

    def _checked(self, response: httpx.Response, what: str) -> dict[str, Any]:
        if response.status_code >= 400:
            raise EndpointError(f"{what} on {self.url}: {response.status_code} {error_message(response)}",
                                reachable=True, code=error_code(response),
                                kind="refused" if response.status_code < 500 else "failed")
        try:
            document = response.json()
        except ValueError:
            raise EndpointError(f"{what} on {self.url}: not JSON: {response.text[:200]!r}",
                                reachable=True) from None
        if not isinstance(document, dict):
            raise EndpointError(f"{what} on {self.url}: not a JSON object: {response.text[:200]!r}",
                                reachable=True)
        return document


@contextmanager
def translated(url: str, what: str) -> Iterator[None]:
    """httpx's transport errors as EndpointErrors that say what a person can do about them."""
    try:
        yield
    except httpx.ConnectError as exc:
        raise EndpointError(f"cannot reach {url}: {exc} (is the server running, on that port?)",
                            reachable=False) from exc
    except httpx.TimeoutException as exc:
        raise EndpointError(f"{url} did not answer {what} in time ({type(exc).__name__})",
                            reachable=False, kind="timed out") from exc
    except httpx.TransportError as exc:
        raise EndpointError(f"{url} went away during {what}: {exc or type(exc).__name__}",
                            reachable=False) from exc


def base_url(url: str) -> str:
    """The server's root: the routes add `/v1/...`, so a URL given with `/v1` (as OpenAI clients take
    it) loses it; without a scheme it is http. A URL that cannot name a server is a ValueError saying
    why."""
    root = url.strip().rstrip("/")
    if "://" not in root:
        root = f"http://{root}"
    parts = urlsplit(root)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{url!r}: an endpoint is http:// or https://, not {parts.scheme}://")
    if not parts.hostname or " " in parts.netloc:
        raise ValueError(f"{url!r}: no host name in it")
    try:
        parts.port  # noqa: B018 - reading it is the check: urlsplit refuses a port out of range here
    except ValueError:
        raise ValueError(f"{url!r}: a port is a number from 1 to 65535") from None
    return root.removesuffix("/v1")


def sse_data(lines: Iterable[str]) -> Iterator[str]:
    """The `data:` payloads of a server-sent event stream, `[DONE]` the last of them; comments and other
    fields (`event:`, `id:`, keep-alive `:` lines) are skipped."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data:
            yield data
        if data == DONE:
            return


def shut(response: httpx.Response) -> None:
    """The response's connection shut both ways, from any thread (a reader blocked on it wakes)."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with suppress(OSError):  # already closed: nothing to wake
            sock.shutdown(socket.SHUT_RDWR)


def parsed_chunk(data: str) -> Chunk:
    """One event's data as a chunk; data that is no chunk is the server's fault, said as such."""
    try:
        return chunk_of(json.loads(data))
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise EndpointError(f"the server sent something that is not an OpenAI chunk ({exc}): {data[:200]!r}",
                            reachable=True) from None


def chunk_of(event: dict[str, Any]) -> Chunk:
    """A chat or completion chunk, a usage-only last chunk, or an error event, as one record."""
    if "error" in event:
        raise EndpointError(f"the server failed mid-answer: {error_text(event)}", reachable=True)
    usage = event.get("usage") or {}
    tokens = usage.get("completion_tokens")
    choices = event.get("choices") or []
    if not choices:
        return Chunk(completion_tokens=tokens)
    choice = choices[0]
    text = choice.get("text") if "text" in choice else (choice.get("delta") or {}).get("content")
    return Chunk(text or "", choice.get("finish_reason"), tokens)


def error_message(response: httpx.Response) -> str:
    """An OpenAI error body's message, else the start of whatever the server sent."""
    try:
        return error_text(response.json())
    except ValueError:
        return response.text[:200] or response.reason_phrase


def error_code(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    code = error.get("code") if isinstance(error, dict) else None
    return str(code) if code is not None else None


def error_text(document: Any) -> str:
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, dict) and "message" in error:
        return str(error["message"])
    if isinstance(error, str):
        return error
    return json.dumps(document)[:200]
