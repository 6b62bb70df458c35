"""The job plan, preflight verdicts and stop reports, without nodes."""

import dataclasses
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from console.jobs.plan import (
    JobPlan,
    LaunchSettings,
    PlanError,
    job_id_for,
    launch_settings,
    make_plan,
    msrun_count_text,
    process_marker,
    shared_msrun_note,
)
from console.jobs.preflight import Readings, judge
from console.jobs.service import npu_leftovers
from remote.health import NodeHealth, SystemReport
from remote.inventory import Cluster, NodeSpec
from remote.launch import STOP_SCRIPT, parse_stop_report
from tests.recorded_health import BUSY_PIDS, fleet, health, marked, npu_node

NODES = tuple(NodeSpec(name=f"n{i}", host=f"10.0.0.{i}", cluster_ip=f"192.168.0.{i}", devices=8,
                       python="/opt/ms/bin/python", env_setup=("source /usr/local/Ascend/set_env.sh",))
              for i in range(3))
CLUSTER = Cluster(name="lab", nodes=NODES, source="lab.yaml")


def plan_for(nodes: tuple[NodeSpec, ...] = NODES, **settings: Any) -> JobPlan:
    return make_plan(CLUSTER, nodes, template="job.yaml", overrides=["a=1"], config_text="seed: 0\n",
                     settings=LaunchSettings(**settings), job_id="20261128-120000-job", master_port=8118)


def test_ranks_follow_the_cluster_file_and_the_master_is_rank_0s_cluster_ip():
    plan = plan_for(style="model")
    assert [(n.node, n.node_rank) for n in plan.nodes] == [("n0", 0), ("n1", 1), ("n2", 2)]
    assert plan.master_addr == "192.168.0.0" and plan.workers == 24
    script = plan.nodes[2].script
    assert "--worker_num=24 --local_worker_num=8 --master_addr=192.168.0.0 --master_port=8118 " \
           "--node_rank=2 --log_dir=logs --join=True" in script
    lines = script.splitlines()
    # the node's own environment first, then its interpreter ahead of PATH (msrun starts `python`)
    assert lines.index("source /usr/local/Ascend/set_env.sh") < lines.index('export PATH=/opt/ms/bin:"$PATH"')
    assert f"export ASCEND_CONSOLE_JOB={process_marker(plan.job_id, 'n2')}" in lines
    assert lines[-1].endswith("code/model/train.py --config config.yaml")
    assert plan.ships_code


def test_nodes_sharing_an_address_share_one_msrun():
    local = tuple(dataclasses.replace(n, cluster_ip="127.0.0.1", devices=1) for n in NODES[:2])
    plan = plan_for(local, style="model")
    [only] = plan.nodes
    assert (only.node, only.machines, only.local_workers) == ("n0", ("n0", "n1"), 2)
    # said where a user would wonder (plan, launch, the demo): two nodes, one msrun, and why
    assert msrun_count_text(plan) == "2 node(s) in 1 msrun(s)"
    assert shared_msrun_note(only) == ("one msrun for n0, n1: they share one machine address, and msrun "
                                       "starts a scheduler on every machine that owns the master address")
    real = plan_for(style="model")
    assert msrun_count_text(real) == "3 node(s)"
    assert [shared_msrun_note(n) for n in real.nodes] == [None, None, None]


def test_the_mindformers_style_runs_the_tutorials_launcher_with_its_environment():
    plan = plan_for(style="mindformers", env={"EXTRA": "it's $(id)"})
    script = plan.nodes[1].script
    assert "export HCCL_OP_EXPANSION_MODE=AIV" in script and "export MS_ENABLE_LCCL=off" in script
    assert "export EXTRA='it'\"'\"'s $(id)'" in script
    assert script.splitlines()[-1] == (
        "exec bash /home/work/mindformers/scripts/msrun_launcher.sh 'run_mindformer.py --register_path "
        "research/deepseek3 --config '\"$JOB_DIR\"/config.yaml 24 8 192.168.0.0 8118 1 \"$JOB_DIR\"/logs "
        "True 600")
    assert not plan.ships_code


def test_launch_script_is_valid_shell_whatever_the_values():
    hostile = dataclasses.replace(NODES[0], python="/opt/my env/bin/python", env_setup=())
    value = "`reboot`; $(rm -rf /) \"\n'"
    plan = plan_for((hostile,), style="msrun", script="train.py", script_args=("--config", "{config}"),
                    env={"A": value})
    script = plan.nodes[0].script
    done = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    # the plan's own script, run with its last line (the exec) swapped for a print: A is the value itself
    body, last = script.rstrip("\n").rsplit("\n", 1)
    assert last.startswith("exec msrun ")
    echoed = subprocess.run(["sh", "-c", body + '\nprintf %s "$A"'], capture_output=True, text=True,
                            check=True)
    assert echoed.stdout == value
    assert plan.nodes[0].argv[-3:] == ("train.py", "--config", "config.yaml")


def test_bad_launch_settings_name_the_key():
    with pytest.raises(PlanError, match=r"console\.launch: must be one of model, mindformers, msrun"):
        launch_settings({"console": {"launch": "slurm"}}, "job.yaml")
    with pytest.raises(PlanError, match="unknown key"):
        launch_settings({"console": {"lanuch": "model"}}, "job.yaml")
    with pytest.raises(PlanError, match=r"needs console\.script"):
        plan_for(style="msrun")
    # launch.sh starts in the job directory, and preflight probes from the login directory
    with pytest.raises(PlanError, match=r"console\.mindformers_home must be an absolute path.*'mindformers'"):
        plan_for(style="mindformers", mindformers_home="mindformers")
    assert launch_settings({}, "job.yaml") == LaunchSettings()


def test_job_ids_are_safe_directory_names():
    hostile = job_id_for("x'; rm -rf / #$(id)", datetime(2026, 11, 28, 12, 0, 0))
    assert hostile == "20261128-120000-x-rm--rf-id"
    assert job_id_for("...", datetime(2026, 11, 28)) == "20261128-000000-job"


def readings(health: list[NodeHealth], port: int | None = 8118) -> Readings:
    return Readings(health=health, port=port, bytes_to_copy=1 << 20, missing=(), problems=())


def test_preflight_refuses_a_cluster_whose_mindspore_versions_differ():
    nodes = fleet(["healthy", "healthy", "healthy"])
    nodes[2] = dataclasses.replace(nodes[2], system=dataclasses.replace(
        nodes[2].system or SystemReport(backend="npu"), mindspore_version="2.9.0"))
    plan = plan_for(style="model")
    verdict = judge(plan, readings(nodes))
    [versions] = [v for v in verdict.blocking if v.check == "versions"]
    assert "MindSpore differs" in versions.message and "2.9.0 on node002" in versions.message
    assert judge(plan, readings(nodes), force=["versions"]).go
    busy_port = judge(plan, readings(fleet(["healthy"]), port=None))
    [busy] = busy_port.blocking
    assert busy.check == "port" and "is in use" in busy.message
    unknown = judge(plan, dataclasses.replace(readings(fleet(["healthy"]), port=None),
                                              port_failure="`python -c <port check>` on n0: exit 127"))
    [unasked] = unknown.blocking
    assert "not checked: `python -c <port check>` on n0: exit 127" in unasked.message


def test_preflight_refuses_npus_held_by_a_running_console_job():
    # Processes of a console job are not foreign (the node is OK), but their NPUs are not free.
    running = marked("20261128-110000-other@node000", dict.fromkeys(BUSY_PIDS[:2], 0))
    node = health(npu_node("node000"), "busy", jobs=running)
    verdict = judge(plan_for(style="model"), readings([node]))
    assert [(v.check, v.ok) for v in verdict.verdicts][:3] == [
        ("reachable", True), ("health", True), ("npus-free", False)]
    [busy] = [v for v in verdict.blocking if v.check == "npus-free"]
    assert "277624" in busy.message and "277626" in busy.message


def test_stop_reports_are_read_from_the_script_output():
    report = parse_stop_report("n0", "found: 12 13 14 \nkilled: 14 \nremaining: \n")
    assert (report.found, report.killed, report.remaining, report.ok) == ((12, 13, 14), (14,), (), True)
    assert not parse_stop_report("n0", "found: 1\nkilled: \nremaining: 1\n").ok


def test_a_containerised_node_enters_its_container_with_the_marker():
    boxed = dataclasses.replace(NODES[1], container="ms-train")
    plan = plan_for((NODES[0], boxed), style="mindformers")
    node = plan.nodes[1]
    assert node.container_script is not None and "msrun_launcher.sh" in node.container_script
    assert node.script.splitlines()[-1] == (
        'exec docker exec --workdir "$(pwd)" --env ASCEND_CONSOLE_JOB=20261128-120000-job@n1 ms-train '
        "sh ./launch-in-container.sh")
    assert plan.nodes[0].container_script is None


def test_a_stop_is_not_done_while_npu_smi_still_lists_a_rank():
    [busy] = fleet(["busy"])
    pids = sorted({p.pid for npu in busy.npus for p in npu.processes})
    assert pids
    ours = parse_stop_report(busy.node, f"found: {pids[0]} 999999\nkilled: \nremaining: \n")
    checked = npu_leftovers(ours, busy)
    assert checked.on_npus == (pids[0],) and not checked.ok
    theirs = parse_stop_report(busy.node, "found: 999999\nkilled: \nremaining: \n")
    assert npu_leftovers(theirs, busy).ok


def test_a_stop_is_not_done_while_something_could_not_be_checked():
    hidden = parse_stop_report("n0", "found: \nkilled: \nremaining: \nunreadable: 41 42\n")
    assert not hidden.ok and "processes 41 42" in hidden.unverified[0]
    assert parse_stop_report("n0", "found: 7\nkilled: \nremaining: \nunreadable:\n").ok
    [no_driver] = fleet(["no-driver"])
    unread = npu_leftovers(parse_stop_report("n0", "found: 7\nkilled: \nremaining: \n"), no_driver)
    assert not unread.ok and unread.unverified[0].startswith("npu-smi could not be read: ")
    assert npu_leftovers(unread, None).unverified[-1].endswith("(the node did not answer the probe)")


@pytest.mark.parametrize("name", ["A;touch /tmp/x;B", "1A", "ASCEND_CONSOLE_JOB", "A B"])
def test_environment_names_are_checked_and_the_marker_is_reserved(name: str):
    with pytest.raises(PlanError):
        plan_for(style="model", env={name: "1"})


def test_msruns_of_different_sizes_are_refused():
    uneven = (NODES[0], dataclasses.replace(NODES[1], devices=4))
    with pytest.raises(PlanError, match="same number of ranks"):
        plan_for(uneven, style="model")


def test_script_args_may_be_one_string():
    settings = launch_settings({"console": {"launch": "msrun", "script": "run.py",
                                            "script_args": "--config {config} --x 'a b'"}}, "job.yaml")
    assert settings.script_args == ("--config", "{config}", "--x", "a b")
    with pytest.raises(PlanError, match="script must be a path"):
        launch_settings({"console": {"script": 5}}, "job.yaml")


def test_stop_never_signals_a_group_whose_run_has_ended(tmp_path: Path):
    """A pid file outlives its run; the number may belong to someone else's process group by now."""
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (tmp_path / "pid").write_text(f"{bystander.pid}\n")
        (tmp_path / "exit_code").write_text("0\n")
        done = subprocess.run(["sh", "-c", STOP_SCRIPT, "stop", str(tmp_path), "no-such-job@n0", "1"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert bystander.poll() is None
        assert parse_stop_report("n0", done.stdout).ok
    finally:
        bystander.kill()
        bystander.wait()
