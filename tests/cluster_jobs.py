"""Running real jobs through the CLI on the test cluster: cluster files, small jobs, what the hosts hold."""

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from console.cli import main
from model.logformat import parse_loss_line
from tests.rank_jobs import write_job
from tests.testcluster import TestCluster

STORAGE = TestCluster.node_storage_path


def cluster_file(test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, names: list[str],
                 **defaults: object) -> Path:
    return test_cluster.cluster_yaml(
        tmp_path / "cluster.yaml", names, known_hosts=known_hosts,
        extra_defaults={"python": sys.executable, "devices": 1, "backend": "cpu", **defaults})


def job(tmp_path: Path, samples: int) -> Path:
    """The small tiny_local: 2 ranks of batch 4, `samples` // 8 steps."""
    return write_job(tmp_path, f"train_dataset.data_loader.sizes=[{samples}, 0, 0]",
                     "callbacks[0].per_print_times=1")


def cli(capsys, *argv: str) -> tuple[int, Any]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith("{") else {}


def node_text(test_cluster: TestCluster, host: str, path: str) -> str:
    return test_cluster.exec(host, ["cat", path]).stdout


def marked_processes(test_cluster: TestCluster, host: str, job_id: str) -> list[str]:
    script = ('for e in /proc/[0-9]*/environ; do tr "\\0" "\\n" < "$e" 2>/dev/null '
              '| grep -qxF "ASCEND_CONSOLE_JOB=$1" && echo "${e%/environ}"; done; true')
    return test_cluster.exec(host, ["sh", "-c", script, "sh", f"{job_id}@{host}"]).stdout.split()


def wait_for_loss_lines(test_cluster: TestCluster, logs: dict[str, str], *, within: float = 300) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        seen = {host: [r for line in node_text(test_cluster, host, path).splitlines()
                       if (r := parse_loss_line(line))] for host, path in logs.items()}
        if all(len(records) >= 2 for records in seen.values()):
            return
        time.sleep(2)
    pytest.fail(f"no loss lines within {within:g} s: " +
                "; ".join(node_text(test_cluster, h, p)[-1500:] for h, p in logs.items()))
