"""The wizard's data page and master choice without Textual: where a converted dataset goes, where a copy
lands on the nodes and what it will copy, and the chosen master becoming node_rank 0 of the plan (also as
`plan --master`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli import main
from console.jobs.wizard import TEMPLATES
from tests.test_logs_local import local_cluster

TINY = TEMPLATES / "tiny_local.yaml"


@pytest.fixture(autouse=True)
def own_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASCEND_CONSOLE_STATE", str(tmp_path / "state"))


def test_plan_master_makes_that_node_node_rank_0_and_a_node_not_chosen_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    cluster = str(local_cluster(tmp_path))
    assert main(["-c", cluster, "plan", str(TINY), "--master", "n1", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [(n["node"], n["node_rank"]) for n in plan["nodes"]] == [("n1", 0)]
    assert "--node_rank=0" in plan["nodes"][0]["script"]
    assert main(["-c", cluster, "plan", str(TINY), "--nodes", "n0", "--master", "n1"]) != 0
    assert "'n1' is not one of the nodes chosen (n0)" in capsys.readouterr().err
