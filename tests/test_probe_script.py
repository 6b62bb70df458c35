"""The probe script itself, run by a real shell: budgets, hung tools, device ids, `~` workdirs, jobs."""

import os
import subprocess
from pathlib import Path

from remote.inventory import NodeSpec
from remote.probe import probe_argv, split_sections
from remote.probes.jobs import JobProcess, parse_job_processes
from tests.conftest import end_process

MARKER = "@@ascend-test"


def run_script(node: NodeSpec, tools: Path, *, budget: float, full: bool = False) -> dict[str, object]:
    argv = probe_argv(node, MARKER, full=full, budget=budget)
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    return {"sections": split_sections(done.stdout, MARKER), "exit": done.returncode}


def fake_tool(folder: Path, name: str, body: str) -> None:
    """A hardware stand-in: this machine has no npu-smi or hccn_tool."""
    folder.mkdir(exist_ok=True)
    tool = folder / name
    tool.write_text(f"#!/bin/sh\n{body}\n")
    tool.chmod(0o755)


def test_a_hung_tool_costs_its_budget_and_the_rest_still_arrives(tmp_path: Path):
    tools = tmp_path / "bin"
    fake_tool(tools, "npu-smi", f"echo $$ > {tmp_path / 'npu-smi.pid'}; exec sleep 60")
    fake_tool(tools, "hccn_tool", "echo 'link status: UP'")
    node = NodeSpec(name="n", host="h", cluster_ip="h", workdir=str(tmp_path), devices=2)
    report = run_script(node, tools, budget=2)
    sections = report["sections"]
    assert isinstance(sections, dict)
    assert {"clock", "meminfo", "loadavg", "df"} <= set(sections)
    assert sections["npu-smi"].exit_code is None  # cut short, kept as it was
    end_process(tmp_path / "npu-smi.pid")


def test_devices_are_probed_and_reported_in_order(tmp_path: Path):
    tools = tmp_path / "bin"
    fake_tool(tools, "npu-smi", "echo table")
    fake_tool(tools, "hccn_tool", 'sleep "0.$((3 - $2))"; echo "link status: UP $2"')
    node = NodeSpec(name="n", host="h", cluster_ip="h", workdir=str(tmp_path), devices=3)
    sections = report_sections(run_script(node, tools, budget=20))
    links = [name for name in sections if name.startswith("link ")]
    assert links == ["link 0", "link 1", "link 2"]
    assert sections["link 2"].text.strip() == "link status: UP 2"
    assert "clock_end" in sections


def test_a_home_relative_workdir_is_measured_in_home(tmp_path: Path):
    node = NodeSpec(name="n", host="h", cluster_ip="h", workdir="~/not-made-yet/jobs", backend="cpu")
    sections = report_sections(run_script(node, tmp_path, budget=20))
    expected = subprocess.run(["df", "-Pk", str(Path.home())], capture_output=True, text=True).stdout
    assert sections["df"].text.split()[-1] == expected.split()[-1]


def report_sections(report: dict[str, object]) -> dict:  # type: ignore[type-arg]
    sections = report["sections"]
    assert isinstance(sections, dict)
    return sections


def test_processes_of_console_jobs_are_reported_with_their_rank(tmp_path: Path):
    marker = {"ASCEND_CONSOLE_JOB": "20261206-101500-probe-test@n"}
    ranked = subprocess.Popen(["sleep", "30"], env={**os.environ, **marker, "RANK_ID": "3"})
    msrun = subprocess.Popen(["sleep", "30"], env={**os.environ, **marker})
    stranger = subprocess.Popen(["sleep", "30"], env={**os.environ, "RANK_ID": "5"})
    try:
        node = NodeSpec(name="n", host="h", cluster_ip="h", workdir=str(tmp_path), backend="cpu")
        found = parse_job_processes(report_sections(run_script(node, tmp_path, budget=20))["jobs"].text)
    finally:
        for process in (ranked, msrun, stranger):
            process.kill()
            process.wait()
    by_pid = {p.pid: p for p in found}
    assert by_pid[ranked.pid] == JobProcess(ranked.pid, "20261206-101500-probe-test", "n", 3)
    assert by_pid[msrun.pid].rank is None
    assert stranger.pid not in by_pid
