"""A real `model.serve` for the tests: the small model (rank_jobs' tenth of tiny_local) with freshly
initialised weights and a tokenizer trained here in a moment, on a local port, its log in a file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.served import Server, serving
from model.data.corpus import train_tokenizer
from tests.rank_jobs import write_job

TEXTS = ["The quick brown fox jumps over the lazy dog.", "def add(a, b):\n    return a + b\n",
         "Return the number of items in a container.", "Beijing is the capital of China. 北京是中国的首都。"]


def serve_files(directory: Path) -> tuple[Path, Path]:
    job = write_job(directory)
    tokenizer = directory / "tokenizer.json"
    train_tokenizer(TEXTS * 20, vocab_size=400).save(str(tokenizer))
    return job, tokenizer


@contextmanager
def running_server(directory: Path) -> Iterator[Server]:
    """The small model served, ready; killed when the block ends, however it ends."""
    job, tokenizer = serve_files(directory)
    arguments = ["--config", str(job), "--tokenizer", str(tokenizer), "--served-model-name", "tiny"]
    with serving(directory, arguments, corpus=directory / "corpus") as server:
        yield server
