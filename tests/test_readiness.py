"""The readiness probe run for real through a local transport against a small HTTP server here: ready
only when the log has the line, /health and then /v1/models answer 200; what it waits for otherwise;
nothing listening said as the connection's error."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from remote.inventory import NodeSpec
from remote.local import LocalTransport
from remote.readiness import probe_server

NODE = NodeSpec(name="node0", host="localhost", cluster_ip="127.0.0.1", transport="local")
LINE = "Application startup complete."


class Routes(BaseHTTPRequestHandler):
    statuses: ClassVar[dict[str, int]] = {}

    def do_GET(self) -> None:
        self.send_response(self.statuses.get(self.path, 404))
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[Routes]]]:
    routes = type("Served", (Routes,), {"statuses": {}})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), routes)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", routes
    finally:
        httpd.shutdown()
        httpd.server_close()


def probe(url: str, log: Path, health: str | None = "/health"):
    return probe_server(LocalTransport(NODE), sys.executable, url=url, health_path=health, log_path=str(log),
                        ready_line=LINE, timeout=30)


def test_ready_needs_the_line_then_health_then_models(server, tmp_path: Path):
    url, routes = server
    log = tmp_path / "console.log"
    log.write_text("loading\n")
    routes.statuses.update({"/health": 503})
    assert probe(url, log).waiting_for() == "/health (503)"
    routes.statuses.update({"/health": 200})
    found = probe(url, log)
    assert (found.ready, found.health, found.models) == (False, 200, 404)
    assert found.waiting_for() == "/v1/models (404)"
    routes.statuses.update({"/v1/models": 200})
    assert probe(url, log).waiting_for() == "the readiness line in the log"
    log.write_text(f"INFO:     {LINE}\n")
    assert probe(url, log).ready
    assert probe(url, log, health=None).ready  # MindIE: no /health asked


def test_nothing_listening_is_said(tmp_path: Path):
    found = probe("http://127.0.0.1:9", tmp_path / "missing.log")
    assert not found.ready and found.line_seen is False
    assert "GET /health" in found.error and "refused" in found.error.lower()
