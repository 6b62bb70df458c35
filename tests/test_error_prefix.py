"""Every command says what went wrong as `error: ...` on stderr, and nothing else before it (issue 15,
item 6: `status` said `ascend-console status: ...`, argparse `ascend-console check: error: ...`, others
`error: ...`). One helper prints them: console.render.print_error / print_warning."""

from pathlib import Path

import pytest

from console.cli import main

REPO = Path(__file__).resolve().parent.parent
LOCAL = str(REPO / "configs" / "clusters" / "local.yaml")

FAILING = [
    ["status", "nojob"],
    ["stop", "nojob"],
    ["logs"],
    ["run", "--sh", "x", "--", "y"],
    ["check", "--nodes", "nodeX"],
    ["plan", "/tmp/nope-ascend.yaml"],
    ["chat"],
    ["logs", "--file", "/tmp/nope-ascend.log"],
]


@pytest.mark.parametrize("argv", FAILING, ids=" ".join)
def test_a_failing_command_says_error_first(argv: list[str], tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("ASCEND_CONSOLE_STATE", str(tmp_path / "state"))
    assert main(["-c", LOCAL, *argv]) != 0
    said = capsys.readouterr().err.splitlines()
    assert said and said[0].startswith("error: "), said
    assert not any(line.startswith("ascend-console") for line in said)


def test_a_bad_option_says_usage_then_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["check", "--bogus"])
    assert exited.value.code == 64
    said = capsys.readouterr().err.splitlines()
    assert said[0].startswith("usage: ascend-console")
    assert said[-1] == "error: unrecognized arguments: --bogus"
