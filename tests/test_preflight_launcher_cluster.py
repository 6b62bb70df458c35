"""Preflight's `launcher` check on the real test hosts, over SSH: a MindFormers-style job is refused where
the checkout is missing or incomplete, naming the node and the path, and goes where a (fake, minimal)
checkout is whole; a model-style job passes where the node's python imports MindSpore and is refused,
naming the node, where it does not."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster_jobs import STORAGE, cli, cluster_file, job
from tests.testcluster import TestCluster

pytestmark = pytest.mark.cluster


@pytest.fixture(autouse=True)
def private_store(monkeypatch, tmp_path):
    monkeypatch.setenv("ASCEND_CONSOLE_STATE", str(tmp_path / "state"))


def launcher(verdict: dict[str, Any]) -> list[tuple[str, bool, str]]:
    return [(c["node"], c["ok"], c["message"]) for c in verdict["checks"] if c["check"] == "launcher"]


def mindformers_job(tmp_path: Path, home: str) -> Path:
    path = job(tmp_path, 800)
    document = yaml.safe_load(path.read_text())
    document["console"] = {"style": "mindformers", "mindformers_home": home}
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_mindformers_job_is_refused_where_the_checkout_is_missing_and_goes_where_it_is_whole(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys):
    home = f"{STORAGE}/mindformers-{tmp_path.name}"
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h2", "h3"])
    template = mindformers_job(tmp_path, home)
    code, missing = cli(capsys, "-c", str(cluster), "preflight", str(template), "--json")
    assert code == 1 and not missing["go"]
    assert launcher(missing) == [
        ("h2", False, f"h2: no MindFormers checkout at {home} (console.mindformers_home)"),
        ("h3", False, f"h3: no MindFormers checkout at {home} (console.mindformers_home)")]
    # h2: the few files the launch reads; h3: a checkout without its entry point or the model's folder
    whole = 'mkdir -p "$1/scripts" "$1/research/deepseek3" && touch "$1/run_mindformer.py" ' \
            '"$1/scripts/msrun_launcher.sh"'
    test_cluster.exec("h2", ["sh", "-c", whole, "sh", home])
    test_cluster.exec("h3", ["sh", "-c", 'mkdir -p "$1/scripts" && touch "$1/scripts/msrun_launcher.sh"',
                             "sh", home])
    try:
        code, partial = cli(capsys, "-c", str(cluster), "preflight", str(template), "--json")
        test_cluster.exec("h3", ["sh", "-c", whole, "sh", home])
        code_whole, complete = cli(capsys, "-c", str(cluster), "preflight", str(template), "--json")
    finally:
        for host in ("h2", "h3"):
            test_cluster.exec(host, ["rm", "-rf", home])
    assert code == 1 and launcher(partial) == [
        ("h2", True, f"h2: {home}, run_mindformer.py, scripts/msrun_launcher.sh, research/deepseek3, msrun, "
                     "MindSpore found"),
        ("h3", False, f"h3: MindFormers checkout {home} is missing run_mindformer.py"),
        ("h3", False, f"h3: MindFormers checkout {home} is missing research/deepseek3 "
                      "(console.register_path)")]
    assert all(ok for _, ok, _ in launcher(complete)) and len(launcher(complete)) == 2
    assert code_whole == 0 and complete["go"], [c for c in complete["checks"] if not c["ok"]]


def test_a_model_job_goes_where_python_imports_mindspore_and_is_refused_where_it_does_not(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys):
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h2", "h3"])
    code, fine = cli(capsys, "-c", str(cluster), "preflight", str(job(tmp_path, 800)), "--json")
    assert code == 0 and fine["go"], [c for c in fine["checks"] if not c["ok"]]
    assert launcher(fine) == [("h2", True, "h2: msrun, MindSpore found"),
                              ("h3", True, "h3: msrun, MindSpore found")]
    document = yaml.safe_load(cluster.read_text())
    document["nodes"][1]["python"] = "/usr/bin/python3"  # the system's: no MindSpore, no msrun beside it
    cluster.write_text(yaml.safe_dump(document))
    code, refused = cli(capsys, "-c", str(cluster), "preflight", str(job(tmp_path, 800)), "--json")
    assert code == 1 and not refused["go"]
    assert launcher(refused) == [
        ("h2", True, "h2: msrun, MindSpore found"),
        ("h3", False, "h3: msrun is not on PATH for /usr/bin/python3 (it starts the ranks)"),
        ("h3", False, "h3: MindSpore is not importable by /usr/bin/python3: "
                      "ModuleNotFoundError: No module named 'mindspore'")]
    code, forced = cli(capsys, "-c", str(cluster), "preflight", str(job(tmp_path, 800)), "--json",
                       "--force", "launcher")
    assert code == 0 and forced["go"], [c for c in forced["checks"] if not c["ok"] and not c["forced"]]
