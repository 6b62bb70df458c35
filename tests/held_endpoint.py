"""An OpenAI-compatible endpoint whose answers wait for the test: each chat answer sends "a", then holds
until the test releases it (then "b" and `[DONE]`) or its client leaves, which it records. What the chat
pane does while an answer is being written is then tested without racing a real model's speed."""

from __future__ import annotations

import json
import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOLD_LIMIT = 120.0
"""Seconds an answer is held at most, so that a test that never releases it still ends."""
MODELS = {"object": "list", "data": [{"id": "held", "object": "model"}]}


class Answer:
    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.left = threading.Event()
        """Its client closed the connection while it was held."""


class HeldEndpoint(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._lock = threading.Lock()
        self._answers: list[Answer] = []

    def answer(self, number: int) -> Answer:
        """Answer `number` (from 1, in the order asked), asked or still to come."""
        with self._lock:
            while len(self._answers) < number:
                self._answers.append(Answer())
            return self._answers[number - 1]

    def release_all(self) -> None:
        with self._lock:
            for answer in self._answers:
                answer.release.set()

    def next_answer(self) -> Answer:
        with self._lock:
            taken = sum(a.started.is_set() for a in self._answers)
        answer = self.answer(taken + 1)
        answer.started.set()
        return answer


class Handler(BaseHTTPRequestHandler):
    server: HeldEndpoint

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test's output is not the place

    def do_GET(self) -> None:
        self._send(json.dumps(MODELS), "application/json")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        answer = self.server.next_answer()
        self._send(event("a"), "text/event-stream")
        if self._held(answer):
            self.wfile.write((event("b") + event(None, "stop") + "data: [DONE]\n\n").encode())
        else:
            answer.left.set()

    def _send(self, text: str, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.end_headers()  # HTTP/1.0: the body ends when the connection closes
        self.wfile.write(text.encode())
        self.wfile.flush()

    def _held(self, answer: Answer) -> bool:
        """True once released; False if the client left first."""
        for _ in range(int(HOLD_LIMIT / 0.05)):
            if answer.release.is_set():
                return True
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable and not peek(self.connection):
                return False
        return True


def peek(connection: socket.socket) -> bytes:
    """What the client sent next, left unread; nothing once it closed the connection."""
    try:
        return connection.recv(1, socket.MSG_PEEK)
    except ConnectionError:
        return b""


def event(text: str | None, finish: str | None = None) -> str:
    delta = {} if text is None else {"content": text}
    return f"data: {json.dumps({'choices': [{'index': 0, 'delta': delta, 'finish_reason': finish}]})}\n\n"


@contextmanager
def held_endpoint() -> Iterator[HeldEndpoint]:
    endpoint = HeldEndpoint()
    thread = threading.Thread(target=endpoint.serve_forever, name="held-endpoint", daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        endpoint.release_all()
        endpoint.shutdown()
        endpoint.server_close()


@contextmanager
def fixed_endpoint(status: int, body: str, kind: str = "application/json") -> Iterator[str]:
    """A server that answers every request with `status` and `body` (then closes): its URL."""

    class Fixed(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.end_headers()
            self.wfile.write(body.encode())

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.do_GET()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Fixed)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="fixed-endpoint", daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
