"""`launch --follow` on a local cluster (two nodes on this machine, no SSH): a real msrun, real ranks, and
every loss step of each rank arriving once, then the run's end."""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.rank_jobs import REPO, write_job


def local_cluster(tmp_path: Path) -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({
        "name": "here", "health": {"disk_free_gb": 1},
        "defaults": {"transport": "local", "devices": 1, "command_timeout": 600, "python": sys.executable},
        "nodes": [{"name": name, "workdir": str(tmp_path / name), "cluster_ip": "127.0.0.1"}
                  for name in ("n0", "n1")],
    }))
    return path


Console = Callable[..., subprocess.CompletedProcess[str]]
"""`console("launch", ...)`: the console's command line on a local cluster, its own state and corpus."""


def local_console(directory: Path) -> Console:
    """The command line on a local cluster of two nodes under `directory`, with their own state and corpus."""
    cluster = local_cluster(directory)
    env = {**os.environ, "ASCEND_CONSOLE_STATE": str(directory / "state"),
           "ASCEND_CONSOLE_CORPUS": str(directory / "corpus")}

    def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "console.cli", "-c", str(cluster), *args], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return run


def test_launch_follow_json_prints_the_launch_then_every_step_of_both_ranks_once(tmp_path: Path):
    job = write_job(tmp_path, "train_dataset.data_loader.sizes=[80, 0, 0]", "callbacks[0].per_print_times=1")
    env = {**os.environ, "ASCEND_CONSOLE_STATE": str(tmp_path / "state"),
           "ASCEND_CONSOLE_CORPUS": str(tmp_path / "corpus")}
    done = subprocess.run([sys.executable, "-m", "console.cli", "-c", str(local_cluster(tmp_path)), "launch",
                           str(job), "--follow", "--json"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    launched, *events = [json.loads(line) for line in done.stdout.splitlines()]
    assert launched["launched"] and launched["job_id"], launched
    steps = {rank: [e["step"] for e in events if e["kind"] == "loss" and e["rank"] == rank]
             for rank in (0, 1)}
    assert steps == {0: list(range(1, 11)), 1: list(range(1, 11))}
    assert [(e["node"], e["exit_code"]) for e in events if e["kind"] == "run-ended"] == [("n0", 0)]
    assert not [e for e in events if e["severity"] == "error"]
