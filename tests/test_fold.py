from remote.fanout import FanoutResult, fold_outputs
from remote.transport import ErrorKind, RunResult


def result(node: str, out: str = "x\n", code: int | None = 0, error: ErrorKind | None = None) -> RunResult:
    return RunResult(node, "cmd", code, out, "", 0.1, error, f"{node}-specific reason" if error else "")


def test_identical_outputs_fold_under_their_node_set():
    groups = fold_outputs([result("n0"), result("n1", "y\n"), result("n2"), result("n3", code=1)])
    assert [(g.label, g.stdout, g.status) for g in groups] == [
        ("n[0,2]", "x\n", "ok"), ("n1", "y\n", "ok"), ("n3", "x\n", "failed")]


def test_unreachable_nodes_fold_together_despite_different_reasons():
    groups = fold_outputs([result("n0", "", None, ErrorKind.UNREACHABLE),
                           result("n1", "", None, ErrorKind.UNREACHABLE)])
    assert [(g.label, g.status) for g in groups] == [("n[0-1]", "unreachable")]


def test_fanout_result_sorts_outcomes():
    outcome = FanoutResult((
        result("a"), result("b", code=2), result("c", code=None, error=ErrorKind.TIMEOUT),
        result("d", code=None, error=ErrorKind.UNREACHABLE), result("e", code=None, error=ErrorKind.HOST_KEY),
    ), 1.0)
    assert [r.node for r in outcome.ok] == ["a"]
    assert [r.node for r in outcome.failed] == ["b"]
    assert [r.node for r in outcome.timed_out] == ["c"]
    assert [r.node for r in outcome.unreachable] == ["d", "e"]
    assert outcome.summary() == {"nodes": 5, "ok": 1, "failed": 1, "timed_out": 1, "unreachable": 2}
