"""The headless commands end to end on the embedded local cluster (no SSH needed)."""

import json
import os
import subprocess
import sys
from pathlib import Path

CONSOLE = [sys.executable, "-m", "console.cli"]


def console(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": "120", **(env or {})}
    environment.pop("ASCEND_CONSOLE_CLUSTER", None)
    return subprocess.run([*CONSOLE, *args], capture_output=True, text=True, timeout=60, env=environment)


def test_check_on_the_embedded_cluster_reports_two_honest_cpu_nodes():
    done = console("check", "--json", env={"XDG_CONFIG_HOME": "/nonexistent"})
    report = json.loads(done.stdout)
    assert report["cluster"] == "local"
    statuses = [n["status"] for n in report["nodes"]]
    assert [n["name"] for n in report["nodes"]] == ["node0", "node1"]
    # a nearly full disk may warn on a small machine; anything worse is a defect
    assert set(statuses) <= {"OK", "WARN"}, report
    assert done.returncode == (0 if statuses == ["OK", "OK"] else 1), done.stderr
    for node in report["nodes"]:
        assert node["npus"] == [] and node["links"] == []
        assert node["system"]["backend"] == "cpu"
        assert node["system"]["hostname"] == os.uname().nodename
        assert node["system"]["cpus"] == os.cpu_count()


def test_run_labels_each_line_and_exits_1_when_a_command_fails():
    done = console("run", "--", "sh", "-c", "echo hello; exit 3")
    assert done.returncode == 1
    assert "node0: hello" in done.stdout and "node1: hello" in done.stdout
    assert "2 failed" in done.stderr


def test_run_fold_groups_identical_output():
    done = console("run", "--fold", "--sh", "echo same")
    assert done.returncode == 0, done.stderr
    assert "node[0-1] (2)" in done.stdout and done.stdout.count("same") == 1


def test_run_json_is_data():
    done = console("run", "--json", "--nodes", "node1", "--", "printf", "%s", "a b")
    report = json.loads(done.stdout)
    assert report["summary"] == {"nodes": 1, "ok": 1, "failed": 0, "timed_out": 0, "unreachable": 0}
    assert report["results"][0]["stdout"] == "a b"
    assert report["command"] == "printf %s 'a b'"


def test_run_timeout_is_exit_2_with_the_reason():
    done = console("run", "--timeout", "0.5", "--", "sleep", "30")
    assert done.returncode == 2
    assert "did not finish within 0.5s" in done.stderr


def test_bad_cluster_file_exits_78_with_file_and_line(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nnodes:\n  - name: a\n    host: h\n    prot: 22\n")
    done = console("check", "-c", str(bad))
    assert done.returncode == 78
    assert f"{bad}:5: nodes[0].prot: unknown key; did you mean 'port'?" in done.stderr


def test_unknown_node_and_bad_usage():
    done = console("run", "--nodes", "nod1", "--", "true")
    assert done.returncode == 64 and "did you mean 'node1'" in done.stderr
    assert console("run", "--bogus").returncode == 64
    nothing = console("run")
    assert nothing.returncode == 64 and "nothing to run" in nothing.stderr
