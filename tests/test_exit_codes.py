"""Command-line mistakes exit 64 (usage) or 66 (no such input), never 78, which means a cluster or job
file's contents are wrong (issue 15, item 4); `console.exitcodes.code_for` is the one mapping."""

from pathlib import Path

import pytest

from console import exitcodes
from console.cli import main
from model.yamlsource import Problem, SourceError
from remote.inventory import InventoryError

REPO = Path(__file__).resolve().parent.parent
TINY = str(REPO / "configs" / "jobs" / "tiny_local.yaml")
LOCAL = str(REPO / "configs" / "clusters" / "local.yaml")


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["check", "--nodes", "nodeX"], 64, "error: --nodes: no node 'nodeX' in cluster 'local'; did you mean"),
    (["check", "--nodes", "node[0-"], 64, "error: --nodes: unbalanced '[' in node set 'node[0-'"),
    (["plan", TINY, "--nodes", "nodeX"], 64, "error: --nodes: no node 'nodeX'"),
    (["plan", TINY, "--master", "nodeX"], 64, "error: --master: 'nodeX' is not one of the nodes chosen"),
    (["plan", "/tmp/nope-ascend.yaml"], 66, "error: /tmp/nope-ascend.yaml: cannot read: No such file"),
    (["-c", "/tmp/nope-ascend.yaml", "nodes"], 66, "error: /tmp/nope-ascend.yaml: cannot read"),
    (["logs", "--file", "/tmp/nope-ascend.log"], 66, "error: /tmp/nope-ascend.log: No such file"),
    (["distribute", "/tmp", "x", "--from-node", "nodeX"], 64, "error: --from-node: no node 'nodeX'"),
])
def test_a_command_line_mistake_is_usage_or_no_input(argv, code, message, capsys):
    assert main(["-c", LOCAL, *argv] if argv[0] != "-c" else argv) == code
    assert message in capsys.readouterr().err


def test_a_wrong_cluster_file_is_still_a_configuration_error(tmp_path: Path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nnodes:\n  - name: a\n    host: h\n    prot: 22\n")
    assert main(["-c", str(bad), "nodes"]) == exitcodes.CONFIG
    assert f"error: {bad}:5: nodes[0].prot: unknown key" in capsys.readouterr().err


def test_code_for_maps_each_kind_of_mistake():
    option = InventoryError([Problem("--nodes", None, "", "no node 'x'")])
    in_file = InventoryError([Problem("c.yaml", 3, "nodes[0].port", "not a number")])
    try:
        try:
            Path("/nonexistent/c.yaml").read_text()
        except OSError as exc:
            raise SourceError([Problem("/nonexistent/c.yaml", None, "", "cannot read")]) from exc
    except SourceError as missing:
        wrapped = InventoryError(missing.problems)
        wrapped.__cause__ = missing
    assert exitcodes.code_for(option) == exitcodes.USAGE
    assert exitcodes.code_for(in_file) == exitcodes.CONFIG
    assert exitcodes.code_for(wrapped) == exitcodes.NO_INPUT
    assert exitcodes.code_for(exitcodes.UsageError("x")) == exitcodes.USAGE
    # a template read as NODE:/path from a node that did not answer is not a missing file
    unreachable = SourceError([Problem("n0:/t.yaml", None, "", "cannot read: timed out")])
    unreachable.__cause__ = TimeoutError("timed out")
    assert exitcodes.code_for(unreachable) == exitcodes.CONFIG
