"""`stop` of a running tiny job on a local cluster (two nodes on this machine, real msrun, real ranks):
every step is said on stderr as it happens, and the checkpoint the ranks saved on SIGTERM is named,
whole, in the output and in `--json` (issue 15, item 5)."""

import json
import time
from pathlib import Path

from rich.console import Console

from console.jobs.service import StopProgress
from console.stopview import StopBoard
from tests.rank_jobs import write_job
from tests.test_logs_local import local_console


def test_stop_of_a_running_job_says_each_step_and_the_checkpoint_written(tmp_path: Path):
    console = local_console(tmp_path)
    job = write_job(tmp_path, "train_dataset.data_loader.sizes=[80000, 0, 0]",
                    "callbacks[0].per_print_times=1")
    launched = console("launch", str(job), "--json")
    assert launched.returncode == 0, launched.stderr[-3000:]
    job_id = json.loads(launched.stdout)["job_id"]
    logs = tmp_path / "n0" / "jobs" / job_id / "logs"
    deadline = time.monotonic() + 300
    while "loss:" not in "".join(p.read_text(errors="replace") for p in logs.glob("worker_*.log")):
        assert time.monotonic() < deadline, "the ranks never trained"
        time.sleep(0.5)
    stopped = console("stop", job_id, "--json", "--timeout", "20", timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    report = json.loads(stopped.stdout)
    checkpoint = report["checkpoint"]
    assert checkpoint["node"] == "n0" and checkpoint["error"] is None
    path = checkpoint["path"]
    assert path.startswith(str(tmp_path / "n0" / "jobs" / job_id)) and path.endswith(".ckpt")
    assert Path(path).is_file()
    lines = stopped.stderr.splitlines()
    for said in ("n0: SIGTERM sent; waiting up to 20 s", "n0: ranks gone",
                 "n0: no process of the job left", f"n0: checkpoint written: {path}"):
        assert any(line.startswith(said) for line in lines), (said, stopped.stderr)
    assert lines.index(next(line for line in lines if line.startswith("n0: SIGTERM"))) < lines.index(
        next(line for line in lines if line.startswith("n0: ranks gone")))


def test_the_live_line_folds_nodes_by_step_and_counts_the_seconds():
    clock = iter([100.0, 107.4]).__next__
    board = StopBoard(Console(width=80, force_terminal=True), ["node0", "node1", "node2"], clock=clock)
    board(StopProgress("node1", "exited", "ranks gone (2 process(es) ended)"))
    assert board.__rich__().plain == ("stopping, 7 s: node[0,2]: SIGTERM sent, waiting for the ranks; "
                                      "node1: ranks gone")
