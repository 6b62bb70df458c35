"""Tables at 80 columns (issue 15, item 3): a table gives up short headers, then moves paths under it,
then drops columns, and never cuts a number or a path; a path is printed whole on one line."""

import io
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from console.commands.status import status_view
from console.fittable import Column, FitTable
from console.records import EventRecord, JobRecord, LaunchRecord
from console.transferview import print_distribution
from remote.manifest import Manifest, ManifestEntry
from remote.transfer import DistributionResult, NodeTransfer

REPO = Path(__file__).resolve().parent.parent
DEEP = "/home/work/ascend-console/jobs/20261207-031500-pretrain_deepseek3_1b-with-a-long-name"


def at_80(renderable: object) -> str:
    """What a terminal of 80 columns shows: `renderable`, or what a function of the console prints."""
    out = io.StringIO()
    console = Console(file=out, width=80, soft_wrap=True, highlight=False, color_system=None)
    if callable(renderable):
        renderable(console)
    else:
        console.print(renderable)
    return out.getvalue()


def whole_on_a_line(text: str, *values: str) -> None:
    assert "…" not in text, text
    lines = text.splitlines()
    for value in values:
        assert any(value in line for line in lines), (value, text)


def test_status_prints_job_directories_and_logs_whole_at_80_columns():
    logs = {f"node{i}": f"{DEEP}/node{i}/output/msrun_log" for i in (0, 1)}
    job = JobRecord("20261207-031500-pretrain", "pretrain", "lab", "c.yaml", "", state="running",
                    created_at=1.0, log_locations=logs)
    launches = [LaunchRecord(job.id, f"node{i}", i, f"{DEEP}/node{i}", pid=4_194_301 + i, state="running",
                             reason="" if i else "answered after 14.2 s: the node is slow")
                for i in (0, 1)]
    events = [EventRecord(job.id, "launch", "launched on node[0-1]", 2.0)]
    text = at_80(status_view(job, launches, events, 100.0))
    whole_on_a_line(text, f"{DEEP}/node0", f"{DEEP}/node1/output/msrun_log", "4194301", "4194302")
    assert max(len(line) for line in text.splitlines() if "│" in line) <= 80


def test_nodes_keeps_workdir_and_cluster_ip_whole_at_80_columns(tmp_path: Path):
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text("name: lab\ndefaults: {user: ascend-operator, port: 2222, workdir: "
                       f"{DEEP}}}\nnodes:\n" + "".join(
                           f"  - {{name: atlas-node-{i:02d}, host: atlas-node-{i:02d}.lab.example.com, "
                           f"cluster_ip: 192.168.100.{100 + i}}}\n" for i in range(3)))
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run([sys.executable, "-m", "console.cli", "-c", str(cluster), "nodes"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    whole_on_a_line(done.stdout, DEEP, "192.168.100.102", "atlas-node-01.lab.example.com", str(cluster))
    assert all(len(line) <= 80 for line in done.stdout.splitlines() if "│" in line), done.stdout


def test_distribute_keeps_an_error_whole_on_its_line_at_80_columns():
    error = (f"1 of 2 nodes verified: mv: cannot stat '{DEEP}/weights/.lock': No such file or directory "
             "(the node's copy is incomplete; run distribute again to resume)")
    nodes = tuple(NodeTransfer(f"atlas-node-{i:02d}", "console", "rsync", 1_234_567_890 * (i + 1), 1204, 17,
                               0, not i, error if i else None, 12.5, destination=f"{DEEP}/weights")
                  for i in (0, 1))
    result = DistributionResult("/data/weights/deepseek-v3-671b", f"{DEEP}/weights",
                                Manifest((ManifestEntry("a.safetensors", 1 << 30, "0" * 64),)), nodes, (),
                                1_234_567_890, 30.0)
    text = at_80(lambda console: print_distribution(console, result))
    whole_on_a_line(text, error, "1234.6 MB", "2469.1 MB", "1204", "/data/weights/deepseek-v3-671b")
    assert all(len(line) <= 80 for line in text.splitlines() if "│" in line), text


def test_a_fit_table_gives_up_headers_then_paths_then_columns_in_order():
    columns = (Column("name", kind="number"), Column("address", kind="number", short="ip"),
               Column("user", drop=2), Column("port", kind="number", drop=1), Column("dir", kind="path"))
    rows = [["node0", "192.168.100.100", "operator", "2222", DEEP]]
    console = Console(width=40)
    table = FitTable(columns, rows)
    assert table.layout(console, 200) == ["full"] * 5
    assert table.layout(console, 60) == ["full", "full", "full", "full", "moved"]
    assert table.layout(console, 36) == ["full", "full", "dropped", "full", "moved"]
    assert table.layout(console, 30) == ["full", "full", "dropped", "dropped", "moved"]
    narrow = FitTable((Column("name", kind="number"), Column("devices", kind="number", short="dev")),
                      [["node0", "8"]])
    assert narrow.layout(console, 16) == ["full", "short"] and narrow.layout(console, 19) == ["full", "full"]
    text = at_80(FitTable(columns, [[*rows[0][:4], DEEP * 2]]))
    whole_on_a_line(text, f"node0 dir: {DEEP * 2}", "192.168.100.100", "2222")
