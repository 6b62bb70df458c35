"""`distribute` on the embedded local cluster (issue 15): it failed with "1 of 2 nodes verified ... mv: cannot
stat './.lock'" because both local nodes wrote one path and raced, and a relative DEST landed in the current
directory rather than under each node's workdir, as local.yaml says. A relative DEST is under each node's
workdir (a tree each); an absolute DEST two local nodes share is copied and verified once, for both."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from remote.inventory import NodeSpec
from tests.rank_jobs import REPO


def digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "weights"
    (root / "tokenizer").mkdir(parents=True)
    (root / "config.json").write_text('{"model_type": "deepseek_v3"}\n')
    (root / "tokenizer" / "tokenizer.json").write_bytes(os.urandom(200_000))
    (root / "model-00001-of-00001.safetensors").write_bytes(os.urandom(1_500_000))
    return root


def distribute(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command line on the embedded cluster (no -c, no cluster file of the user's), run elsewhere."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items() if key != "ASCEND_CONSOLE_CLUSTER"}
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_DATA_HOME=str(tmp_path / "data"), ASCEND_CONSOLE_STATE=str(tmp_path / "state"),
               PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "console.cli", "distribute", *args, "--json"], cwd=elsewhere,
                          env=env, capture_output=True, text=True, timeout=300)


def test_a_relative_dest_is_under_each_local_nodes_workdir(tmp_path: Path, source: Path):
    done = distribute(tmp_path, str(source), "weights/ds")
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(done.stdout)
    workdirs = {name: tmp_path / "data" / "ascend-console" / "local" / name for name in ("node0", "node1")}
    assert [(n["node"], n["verified"], n["files_sent"], n["destination"]) for n in document["nodes"]] == [
        (name, True, 3, str(workdir / "weights" / "ds")) for name, workdir in workdirs.items()]
    for workdir in workdirs.values():
        assert digests(workdir / "weights" / "ds") == digests(source)
    assert not any((tmp_path / "elsewhere").iterdir())  # nothing in the directory it was run from


def test_an_absolute_dest_on_one_machine_is_copied_once_and_verified_for_both(tmp_path: Path, source: Path):
    dest = tmp_path / "shared weights"
    done = distribute(tmp_path, str(source), str(dest))
    assert done.returncode == 0, done.stdout + done.stderr
    node0, node1 = json.loads(done.stdout)["nodes"]
    assert (node0["verified"], node0["files_sent"], node0["shares"]) == (True, 3, None)
    shared = (node1["verified"], node1["method"], node1["shares"], node1["upstream"])
    assert shared == (True, "shared", "node0", "node0")
    assert node0["destination"] == node1["destination"] == str(dest)
    assert digests(dest) == digests(source)
    again = distribute(tmp_path, str(source), str(dest))  # whole and verified: nothing is sent again
    assert again.returncode == 0 and [n["files_sent"] for n in json.loads(again.stdout)["nodes"]] == [0, 0]


def test_a_nodes_path_is_under_its_workdir_unless_absolute_or_home():
    ssh = NodeSpec(name="n0", host="10.0.0.1", cluster_ip="10.0.0.1", workdir="/home/work")
    assert ssh.resolve("weights/ds") == "/home/work/weights/ds"
    assert ssh.resolve("./weights/") == "/home/work/weights"
    assert ssh.resolve("/data/ds") == "/data/ds"
    assert ssh.resolve("~/ds") == "~/ds"  # the login's home there, not here
    assert NodeSpec(name="n0", host="h", cluster_ip="h", workdir="~/work").resolve("ds") == "~/work/ds"
    local = NodeSpec(name="n0", host="localhost", cluster_ip="127.0.0.1", transport="local", workdir="~/w")
    assert local.resolve("ds") == os.path.expanduser("~/w/ds")
    assert local.resolve("~/ds") == os.path.expanduser("~/ds")
