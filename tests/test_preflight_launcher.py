"""Preflight's `launcher` check without a cluster: what each launch style needs on a node, the verdicts
judged from hand-made readings, and the probe script run by this machine's `sh` (a stand-in `docker`
for a node with a container)."""

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from console.jobs.launchneeds import LaunchNeed, launch_needs
from console.jobs.plan import JobPlan, launch_script, launch_settings, make_plan
from console.jobs.preflight import CHECKS, Readings, judge
from remote.inventory import Cluster, NodeSpec
from remote.needs import Need, NeedsReading, node_command, read_needs
from remote.transport import ErrorKind, RunResult
from tests.recorded_health import health, npu_node

NODES = tuple(NodeSpec(name=f"n{i}", host=f"10.0.0.{i}", cluster_ip=f"192.168.0.{i}", devices=8,
                       python="/opt/ms/bin/python") for i in range(2))
CLUSTER = Cluster(name="lab", nodes=NODES, source="lab.yaml")
HOME = "/home/work/mindformers"


def plan_for(nodes: tuple[NodeSpec, ...] = NODES, **console: Any) -> JobPlan:
    """A plan made as plan_job makes one: the settings read from the config text's `console:`."""
    text = yaml.safe_dump({"seed": 0, "console": console})
    return make_plan(CLUSTER, nodes, template="job.yaml", overrides=[], config_text=text,
                     settings=launch_settings(yaml.safe_load(text), "job.yaml"),
                     job_id="20261128-120000-job", master_port=8118)


def subjects(needs: tuple[LaunchNeed, ...]) -> list[tuple[str, str]]:
    return [(n.need.kind, n.need.subject) for n in needs]


def lacking(node: str, needs: tuple[LaunchNeed, ...], *names: str, detail: str = "") -> NeedsReading:
    return NeedsReading(node, tuple((n.need, detail) for n in needs if n.name in names))


def launcher_verdicts(plan: JobPlan, *readings: NeedsReading, nodes: tuple[NodeSpec, ...] = NODES,
                      force: tuple[str, ...] = (), **more: Any) -> list[tuple[str | None, bool, str]]:
    verdict = judge(plan, Readings(health=more.pop("health", ()), port=8118, bytes_to_copy=0, missing=(),
                                   problems=(), needs=launch_needs(plan, nodes), launcher=readings, **more),
                    force=force)
    return [(v.node, v.ok or v.forced, v.message) for v in verdict.verdicts if v.check == "launcher"]


def test_launcher_is_a_check_that_can_be_forced():
    assert "launcher" in CHECKS


def test_the_mindformers_style_needs_the_checkout_its_launcher_files_the_register_path_msrun_and_mindspore():
    needs = launch_needs(plan_for(style="mindformers"), NODES)
    assert list(needs) == ["n0", "n1"]
    # launch.sh cds into mindformers_home: a relative register_path is read from there
    assert subjects(needs["n1"]) == [
        ("path", HOME), ("path", f"{HOME}/run_mindformer.py"), ("path", f"{HOME}/scripts/msrun_launcher.sh"),
        ("path", f"{HOME}/research/deepseek3"), ("command", "msrun"), ("module", "mindspore")]
    elsewhere = launch_needs(plan_for(style="mindformers", mindformers_home="/opt/mf",
                                      register_path="/opt/ds3"), NODES)["n0"]
    assert subjects(elsewhere)[:4] == [("path", "/opt/mf"), ("path", "/opt/mf/run_mindformer.py"),
                                       ("path", "/opt/mf/scripts/msrun_launcher.sh"), ("path", "/opt/ds3")]


def test_the_model_style_needs_msrun_and_mindspore_and_the_msrun_style_its_absolute_script():
    assert subjects(launch_needs(plan_for(style="model"), NODES)["n0"]) == [
        ("command", "msrun"), ("module", "mindspore")]
    assert subjects(launch_needs(plan_for(style="model", kind="predict", prompts=["hi"]), NODES)["n0"]) == [
        ("command", "msrun"), ("module", "mindspore")]
    assert subjects(launch_needs(plan_for(style="msrun", script="/opt/run.py"), NODES)["n0"]) == [
        ("command", "msrun"), ("path", "/opt/run.py")]
    # a relative script is the job directory's, which is not there before the launch
    assert subjects(launch_needs(plan_for(style="msrun", script="run.py"), NODES)["n0"]) == [
        ("command", "msrun")]


def test_serve_engines_need_what_they_start():
    model = plan_for(NODES[:1], style="model", kind="serve")
    assert subjects(launch_needs(model, NODES[:1])["n0"]) == [("module", "mindspore")]
    vllm = launch_needs(plan_for(kind="serve", serve={"engine": "vllm", "model": "/w"}), NODES)
    toolkit = ("path", "/usr/local/Ascend/ascend-toolkit/set_env.sh")
    assert subjects(vllm["n0"]) == [toolkit, ("command", "vllm-mindspore"), ("path", HOME)]
    assert subjects(vllm["n1"]) == [toolkit, ("command", "ray"), ("path", HOME)]  # Ray's other node
    mindie = launch_needs(plan_for(NODES[:1], kind="serve", serve={"engine": "mindie"}), NODES[:1])["n0"]
    assert subjects(mindie) == [toolkit, ("path", "/usr/local/Ascend/mindie/latest/mindie-service/bin/"
                                                  "mindieservice_daemon")]


def test_each_missing_part_of_a_checkout_is_its_own_verdict_naming_node_and_path():
    plan = plan_for(style="mindformers")
    needs = launch_needs(plan, NODES)
    verdicts = launcher_verdicts(plan, NeedsReading("n0"),
                                 lacking("n1", needs["n1"], "run_mindformer.py", "research/deepseek3"))
    assert verdicts == [
        ("n0", True, "n0: /home/work/mindformers, run_mindformer.py, scripts/msrun_launcher.sh, "
                     "research/deepseek3, msrun, MindSpore found"),
        ("n1", False, "n1: MindFormers checkout /home/work/mindformers is missing run_mindformer.py"),
        ("n1", False, "n1: MindFormers checkout /home/work/mindformers is missing research/deepseek3 "
                      "(console.register_path)")]


def test_a_missing_checkout_is_said_once_not_once_a_file_in_it():
    plan = plan_for(style="mindformers")
    needs = launch_needs(plan, NODES)["n0"]
    every_path = lacking("n0", needs, HOME, "run_mindformer.py", "scripts/msrun_launcher.sh",
                         "research/deepseek3")
    assert launcher_verdicts(plan, every_path, NeedsReading("n1"))[0] == (
        "n0", False, "n0: no MindFormers checkout at /home/work/mindformers (console.mindformers_home)")
    assert len(launcher_verdicts(plan, every_path, NeedsReading("n1"))) == 2


def test_mindspore_not_importable_names_the_node_its_python_and_the_error():
    plan = plan_for(style="model")
    needs = launch_needs(plan, NODES)["n1"]
    reading = lacking("n1", needs, "MindSpore", detail="ModuleNotFoundError: No module named 'mindspore'")
    [_, (node, ok, message)] = launcher_verdicts(plan, NeedsReading("n0"), reading)
    assert (node, ok) == ("n1", False)
    assert message == ("n1: MindSpore is not importable by /opt/ms/bin/python: "
                       "ModuleNotFoundError: No module named 'mindspore'")
    [_, no_msrun] = launcher_verdicts(plan, NeedsReading("n0"), lacking("n1", needs, "msrun"))
    assert no_msrun[2] == "n1: msrun is not on PATH for /opt/ms/bin/python (it starts the ranks)"
    assert all(ok for _, ok, _ in launcher_verdicts(plan, NeedsReading("n0"), reading, force=("launcher",)))


def test_a_container_that_does_not_run_is_said_alone_and_a_running_one_is_where_the_checks_ran():
    boxed = (NODES[0], dataclasses.replace(NODES[1], container="ms-train"))
    plan = plan_for(boxed, style="mindformers")
    needs = launch_needs(plan, boxed)["n1"]
    containers = {"n1": "ms-train"}
    down = launcher_verdicts(plan, NeedsReading("n0"), NeedsReading("n1", container_down="false"),
                             nodes=boxed, containers=containers)
    assert down[1] == ("n1", False, "n1: container ms-train is not running (false)")
    inside = launcher_verdicts(plan, NeedsReading("n0"), lacking("n1", needs, HOME), nodes=boxed,
                               containers=containers)
    assert inside[1] == ("n1", False, "n1 (in container ms-train): no MindFormers checkout at "
                                      "/home/work/mindformers (console.mindformers_home)")


def test_a_probe_that_did_not_finish_fails_but_an_unreachable_node_is_said_by_reachable_only():
    plan = plan_for(style="model")
    lost = NeedsReading("n1", failure="no answer within 30 s")
    [_, unfinished] = launcher_verdicts(plan, NeedsReading("n0"), lost)
    assert unfinished == ("n1", False, "n1: what the launch needs was not checked: no answer within 30 s")
    reports = [health(npu_node("n0"), "healthy"), health(npu_node("n1"), "unreachable")]
    assert launcher_verdicts(plan, NeedsReading("n0"), lost, health=reports) == [
        ("n0", True, "n0: msrun, MindSpore found")]


def result(stdout: str, *, code: int = 0, stderr: str = "", error: ErrorKind | None = None) -> RunResult:
    return RunResult("n0", "sh -c <needs>", code, stdout, stderr, 0.1, error, "n0: refused" if error else "")


def test_the_probe_output_is_read_into_what_the_node_lacks():
    needs = [Need("path", "/a"), Need("module", "mindspore")]
    text = ("env_setup says hello\nASCEND_NEED_ABSENT 1 ModuleNotFoundError: No module named 'mindspore'\n"
            "ASCEND_NEEDS_DONE\n")
    assert read_needs(result(text), needs, timeout=30) == NeedsReading(
        "n0", ((needs[1], "ModuleNotFoundError: No module named 'mindspore'"),))
    assert read_needs(result("ASCEND_NEED_CONTAINER false\n"), needs, timeout=30) == NeedsReading(
        "n0", container_down="false")
    early = read_needs(result("", code=1, stderr="set_env.sh: no such file\n"), needs, timeout=30)
    assert early.failure == "the check ended early: set_env.sh: no such file"
    timed_out = read_needs(result("", error=ErrorKind.TIMEOUT), needs, timeout=30)
    assert timed_out.failure == "no answer within 30 s"
    assert read_needs(result("", error=ErrorKind.REFUSED), needs, timeout=30).failure == "n0: refused"


PROBED = [Need("path", "/"), Need("path", "/no where/it's $(id)"), Need("command", "sh"),
          Need("command", "no-such-command"), Need("module", "json"), Need("module", "no_such_module")]


def run_probe(node: NodeSpec, path: str | None = None) -> NeedsReading:
    env = None if path is None else {"PATH": path}
    done = subprocess.run(node_command(node, PROBED, limit=20), capture_output=True, text=True, timeout=60,
                          env=env, check=False)
    return read_needs(RunResult(node.name, "probe", done.returncode, done.stdout, done.stderr, 0.0), PROBED,
                      timeout=60)


def test_the_probe_script_finds_what_is_absent_here_after_the_nodes_env_setup():
    node = NodeSpec(name="n0", host="localhost", cluster_ip="127.0.0.1", transport="local",
                    python=sys.executable, env_setup=("echo set up; NOTHING_HERE=1",))
    reading = run_probe(node)
    assert reading.absent == ((PROBED[1], ""), (PROBED[3], ""),
                              (PROBED[5], "ModuleNotFoundError: No module named 'no_such_module'"))
    broken = run_probe(dataclasses.replace(node, env_setup=("exit 3",)))
    assert broken.failure is not None and "ended early" in broken.failure
    gone = run_probe(dataclasses.replace(node, python="/nowhere/bin/python"))
    assert [need.subject for need, _ in gone.absent] == [PROBED[1].subject, "no-such-command", "json",
                                                          "no_such_module"]
    assert "/nowhere/bin/python" in dict(gone.absent)[PROBED[4]]


def stand_in_docker(folder: Path, running: str) -> str:
    """A `docker` that answers `inspect` with `running` and runs `exec NAME sh -c TEXT` here."""
    script = folder / "docker"
    script.write_text("#!/bin/sh\n"
                      'if [ "$1" = exec ]; then shift 2; touch "$(dirname "$0")/entered"; exec "$@"; fi\n'
                      f'[ "$4" = ms-train ] && echo {running} && exit 0\n'
                      'echo "Error: No such object: $4" >&2; exit 1\n')
    script.chmod(0o755)
    return f"{folder}:/usr/bin:/bin"


def test_a_node_with_a_container_is_probed_inside_it_once_it_runs(tmp_path: Path):
    node = NodeSpec(name="n0", host="localhost", cluster_ip="127.0.0.1", transport="local",
                    python=sys.executable, container="ms-train")
    reading = run_probe(node, stand_in_docker(tmp_path, "true"))
    assert reading.checked and (tmp_path / "entered").is_file()
    assert [need.subject for need, _ in reading.absent] == [PROBED[1].subject, "no-such-command",
                                                            "no_such_module"]
    (tmp_path / "entered").unlink()
    assert run_probe(node, stand_in_docker(tmp_path, "false")).container_down == "false"
    absent = run_probe(dataclasses.replace(node, container="other"), stand_in_docker(tmp_path, "true"))
    assert absent.container_down == "Error: No such object: other"
    assert not (tmp_path / "entered").exists()


def test_the_probe_runs_in_the_environment_launch_sh_exports(tmp_path: Path):
    """A module found only through the job's own PYTHONPATH (MindFormers' checkout, console.env) is found
    by the probe too: it sets up what launch.sh sets up (remote.nodeenv), not only env_setup."""
    (tmp_path / "only_in_the_jobs_path.py").write_text("")
    node = NodeSpec(name="n0", host="localhost", cluster_ip="127.0.0.1", transport="local",
                    python=sys.executable)
    wanted = [Need("module", "only_in_the_jobs_path")]

    def probe(env: dict[str, str]) -> NeedsReading:
        done = subprocess.run(node_command(node, wanted, limit=20, env=env), capture_output=True, text=True,
                              timeout=60, check=False)
        return read_needs(RunResult("n0", "probe", done.returncode, done.stdout, done.stderr, 0.0), wanted,
                          timeout=60)

    assert probe({}).absent and probe({"PYTHONPATH": str(tmp_path)}).absent == ()
    script = launch_script(node, job_id="j", rank=0, argv=["true"], env={"PYTHONPATH": str(tmp_path)})
    assert f"export PYTHONPATH={tmp_path}" in script  # the same line launch.sh carries
