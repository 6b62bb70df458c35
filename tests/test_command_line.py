"""Remote command lines are built from quoted parts: hostile text arrives verbatim and runs nothing."""

import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remote.transport import quote_remote_path, remote_command_line


def hostile(marker: Path) -> list[str]:
    """Arguments that would create `marker` if any part of them reached a shell unquoted."""
    return [
        "a path/with spaces",
        "it's \"quoted\"",
        f"$(touch {marker})",
        f"`touch {marker}`",
        f"; touch {marker}",
        f"x\ntouch {marker}",
        "$HOME ${PATH} * ? [a] ~ & | > < \\ !",
        "",
        "-n",
    ]


def through_sh(line: str) -> list[str]:
    """What a POSIX shell on a node makes of the line."""
    done = subprocess.run(["sh", "-c", line], capture_output=True, check=True)
    return done.stdout.decode().split("\0")[:-1]


def printf_argv(*args: str) -> list[str]:
    return ["printf", "%s\\0", *args]


def test_hostile_arguments_arrive_verbatim_and_run_nothing(tmp_path):
    args = hostile(tmp_path / "pwned")
    assert through_sh(remote_command_line(printf_argv(*args))) == args
    assert not (tmp_path / "pwned").exists()


def test_cwd_and_env_are_quoted_too(tmp_path):
    odd = tmp_path / "dir with 'quote' and $(x)"
    odd.mkdir()
    line = remote_command_line(
        ["sh", "-c", 'printf "%s\\0" "$PWD" "$ODD"'], cwd=str(odd), env={"ODD": "; rm -rf / $(x)"})
    assert through_sh(line) == [str(odd), "; rm -rf / $(x)"]


def test_env_names_are_checked():
    with pytest.raises(ValueError, match="environment variable name"):
        remote_command_line(["true"], env={"A;B": "x"})


def test_tilde_means_the_remote_home_even_when_quoted():
    assert through_sh(f"printf '%s\\0' {quote_remote_path('~/a b')}") == [
        subprocess.run(["sh", "-c", "printf %s \"$HOME\""], capture_output=True, text=True).stdout + "/a b"]


def test_timeout_wraps_the_command_and_kills_it():
    line = remote_command_line(["sleep", "30"], timeout=0.5)
    done = subprocess.run(["sh", "-c", line], capture_output=True, timeout=20)
    assert done.returncode == 124


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\0")),
                min_size=1))
def test_any_argument_survives_the_shell(args: list[str]):
    assert through_sh(remote_command_line(printf_argv(*args))) == args
