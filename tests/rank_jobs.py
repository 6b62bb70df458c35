"""Small job configs derived from configs/jobs/tiny_local.yaml, and running `model/train.py` for real."""

import os
import socket
import subprocess
import sys
from pathlib import Path

from model.logformat import LossRecord, parse_loss_line
from model.overrides import derive

REPO = Path(__file__).resolve().parent.parent
TINY_LOCAL = REPO / "configs" / "jobs" / "tiny_local.yaml"
TRAIN_SCRIPT = REPO / "model" / "train.py"

SMALLER = [
    "model.model_config.hidden_size=64", "model.model_config.seq_length=64",
    "train_dataset.data_loader.config.seq_length=64", "model.model_config.vocab_size=512",
    "model.model_config.intermediate_size=128", "moe_config.moe_intermediate_size=32",
    "runner_config.batch_size=4",
]
"""A tenth of tiny_local's arithmetic: the same architecture, fast enough for every CI run."""


def write_job(directory: Path, *overrides: str) -> Path:
    path = directory / "job.yaml"
    path.write_text(derive(TINY_LOCAL, [*SMALLER, *overrides]), encoding="utf-8")
    return path


def rank_environment(corpus: Path) -> dict[str, str]:
    """msrun starts `python` from PATH: this interpreter's, with MindSpore."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["ASCEND_CONSOLE_CORPUS"] = str(corpus)
    env["PYTHONPATH"] = str(REPO)
    env.pop("MS_ROLE", None)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def loss_records(text: str) -> list[LossRecord]:
    return [record for line in text.splitlines() if (record := parse_loss_line(line)) is not None]


def run_single_rank(job: Path, corpus: Path, output: Path, *extra: str,
                    timeout: float = 600) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(TRAIN_SCRIPT), "--config", str(job), "--output-dir", str(output), *extra]
    return subprocess.run(command, env=rank_environment(corpus), capture_output=True, text=True,
                          timeout=timeout, check=False)
