"""A local `python -m model.serve` for measuring and testing: on a port the system picks, its log in a
file, ready when it says where it listens; killed when done, however that comes.

bench/serve.py measures through it and tests/serving.py asks it; neither starts a server otherwise.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
LISTENING = r"Uvicorn running on (http://\S+)"
"""uvicorn's line once it listens, with the port it was given (port 0: the system's choice, so no two
servers race for one port)."""
START_LIMIT = 300.0
"""Seconds MindSpore may take to import and build the network on a loaded machine."""


@dataclass
class Server:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return read_log(self.log)

    def wait_for_log(self, line: str, limit: float = 120.0) -> str:
        """The log once it holds `line` (a limit on the wait, not a speed threshold)."""
        return self.wait_for_match(re.escape(line), limit).string

    def wait_for_match(self, pattern: str, limit: float = 120.0, *, start: int = 0) -> re.Match[str]:
        """The first match of `pattern` in the log from character `start` on, once there is one."""
        return logged(self.log, self.process, pattern, limit, start=start)


def read_log(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")


def logged(log: Path, process: subprocess.Popen[bytes], pattern: str, limit: float, *,
           start: int = 0) -> re.Match[str]:
    deadline = time.monotonic() + limit
    while (found := re.compile(pattern).search(text := read_log(log), start)) is None:
        assert process.poll() is None, f"the server exited:\n{text[-3000:]}"
        assert time.monotonic() < deadline, f"never logged {pattern!r}:\n{text[-3000:]}"
        time.sleep(0.1)
    return found


@contextmanager
def serving(directory: Path, arguments: list[str], *, corpus: Path) -> Iterator[Server]:
    """`python -m model.serve ARGUMENTS` on a local port, its log in `directory`, ready. `corpus`: where
    the embedded corpus is (a config without a tokenizer reads its tokenizer there)."""
    log = directory / "serve.log"
    env = {**os.environ, "ASCEND_CONSOLE_CORPUS": str(corpus)}
    env.pop("MS_ROLE", None)  # MindSpore's distributed role, if a job left one: the server runs alone
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "model.serve", *arguments, "--host", "127.0.0.1", "--port", "0"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = logged(log, process, LISTENING, START_LIMIT).group(1)
        server = Server(url, log, process)
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
        yield server
    finally:
        process.kill()
        process.wait(timeout=30)
