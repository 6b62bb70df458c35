"""A real `model.serve` for the tests: the small model (rank_jobs' tenth of tiny_local) with freshly
initialised weights and a tokenizer trained here in a moment, on a free local port, its log in a file."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from model.data.corpus import train_tokenizer
from tests.rank_jobs import REPO, free_port, rank_environment, write_job

READY = "Application startup complete."
START_LIMIT = 300.0
"""Seconds MindSpore may take to import and build the network on a loaded machine."""
TEXTS = ["The quick brown fox jumps over the lazy dog.", "def add(a, b):\n    return a + b\n",
         "Return the number of items in a container.", "Beijing is the capital of China. 北京是中国的首都。"]


@dataclass
class Server:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, line: str, limit: float = 120.0) -> str:
        """The log once it holds `line` (a limit on the wait, not a speed threshold)."""
        return self.wait_for_match(re.escape(line), limit).string

    def wait_for_match(self, pattern: str, limit: float = 120.0, *, start: int = 0) -> re.Match[str]:
        """The first match of `pattern` in the log from character `start` on, once there is one."""
        deadline = time.monotonic() + limit
        while (found := re.compile(pattern).search(text := self.log_text(), start)) is None:
            assert self.process.poll() is None, f"the server exited:\n{text[-3000:]}"
            assert time.monotonic() < deadline, f"never logged {pattern!r}:\n{text[-3000:]}"
            time.sleep(0.1)
        return found


def serve_files(directory: Path) -> tuple[Path, Path]:
    job = write_job(directory)
    tokenizer = directory / "tokenizer.json"
    train_tokenizer(TEXTS * 20, vocab_size=400).save(str(tokenizer))
    return job, tokenizer


@contextmanager
def running_server(directory: Path) -> Iterator[Server]:
    """The small model served, ready; killed when the block ends, however it ends."""
    job, tokenizer = serve_files(directory)
    with serving(directory, ["--config", str(job), "--tokenizer", str(tokenizer),
                             "--served-model-name", "tiny"]) as server:
        yield server


@contextmanager
def serving(directory: Path, arguments: list[str], *, corpus: Path | None = None) -> Iterator[Server]:
    """`python -m model.serve ARGUMENTS` on a free local port, its log in `directory`, ready; killed
    when the block ends, however it ends (bench/serve.py measures through it too). `corpus`: where the
    embedded corpus is (a config without a tokenizer reads its tokenizer there)."""
    port = free_port()
    log = directory / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "model.serve", *arguments, "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, env=rank_environment(corpus or directory / "corpus"), stdout=out,
            stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", log, process)
    try:
        server.wait_for_log(READY, START_LIMIT)
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
        yield server
    finally:
        process.kill()
        process.wait(timeout=30)
