"""remote/jobstate.py: the report parser on recorded and garbage outputs, and the state table."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remote.jobstate import (
    JobDirReport,
    JobProcess,
    NodeJobStates,
    NodeQueryFailure,
    answer_from,
    derive_state,
    jobstate_argv,
    parse_report,
)
from remote.transport import ErrorKind, RunResult
from tests.conftest import IN_CI

M = "@@ascend-0123456789ab"
DIRS = ["/srv/w/jobs/20250101-000000-a", "/srv/w/jobs/20250101-000000-b"]

# recorded from the script on a node: one running job, one that ended with 3
RECORDED = f"""{M} begin 0
exists 1
pid 4242
started_at 1735689600
alive 1
procs listed
proc 4242  Ss bash launch.sh
proc 4250  Sl python -m model.train --config config.yaml
@@ascend-0123456789ab end 0
{M} begin 1
exists 1
pid 5151
exit_code 3
started_at 1735689600
alive 0
procs listed
{M} end 1
"""


def test_recorded_output_parses_into_one_report_per_directory():
    reports = parse_report(RECORDED, M, DIRS)
    assert reports[DIRS[0]] == JobDirReport(
        DIRS[0], True, "4242", None, None, "1735689600", True,
        (JobProcess(4242, "Ss", "bash launch.sh"),
         JobProcess(4250, "Sl", "python -m model.train --config config.yaml")), True)
    assert derive_state(reports[DIRS[0]]).state == "running"
    ended = derive_state(reports[DIRS[1]])
    assert (ended.state, ended.exit_code, ended.pid, ended.started_at) == ("exited", 3, 5151, 1735689600.0)


def report(**fields: object) -> JobDirReport:
    base: dict[str, object] = {"job_dir": "/j", "exists": True}
    return JobDirReport(**{**base, **fields})  # type: ignore[arg-type]


LIVE = (JobProcess(10, "S", "sleep"),)


@pytest.mark.parametrize(("facts", "state", "exit_code"), [
    ({"exists": False}, "missing", None),
    ({}, "starting", None),
    ({"pid_text": ""}, "starting", None),
    ({"pid_text": "10", "alive": True, "processes": LIVE}, "running", None),
    # alive, but ps could not list it (or the group changed in between): still running
    ({"pid_text": "10", "alive": True}, "running", None),
    ({"pid_text": "10", "alive": True, "processes": (JobProcess(10, "Z", "[sh]"),)}, "lost", None),
    ({"pid_text": "10", "alive": False}, "lost", None),
    ({"pid_text": "10", "alive": False, "exit_code_text": "0"}, "exited", 0),
    ({"pid_text": "10", "alive": False, "exit_code_text": "137"}, "exited", 137),
    ({"pid_text": "10", "alive": False, "exit_code_text": "143", "stop_requested_text": "1"}, "stopped", 143),
    # asked to stop and killed before the wrapper could write a code
    ({"pid_text": "10", "alive": False, "stop_requested_text": "1735689600"}, "stopped", None),
    # asked to stop, not yet gone
    ({"pid_text": "10", "alive": True, "stop_requested_text": "1735689600"}, "running", None),
    # the wrapper failed before writing its pid but still wrote a code
    ({"exit_code_text": "127"}, "exited", 127),
    # a pid file that is not a number: nothing was signalled, nothing is known to run
    ({"pid_text": "x; rm -rf /"}, "lost", None),
])
def test_state_table(facts: dict[str, object], state: str, exit_code: int | None):
    derived = derive_state(report(**facts))
    assert (derived.state, derived.exit_code) == (state, exit_code)


def test_oddities_become_notes():
    bad_pid = derive_state(report(pid_text="abc"))
    assert bad_pid.notes == ("the pid file holds 'abc', not a process id",)
    leftover = derive_state(report(pid_text="10", alive=True, processes=LIVE, exit_code_text="0"))
    assert leftover.state == "exited" and leftover.processes == LIVE
    assert "processes of its group are left" in leftover.notes[0]
    bad_code = derive_state(report(pid_text="10", alive=False, exit_code_text="done"))
    assert bad_code.state == "lost" and "not an exit status" in bad_code.notes[0]


@pytest.mark.parametrize("text", [
    "",
    "Welcome to the node!\nlast login: yesterday\n",
    RECORDED[: len(RECORDED) // 2],  # cut short
    RECORDED.replace(M, "@@ascend-ffffffffffff"),  # another run's marker
    f"{M} begin 0\nexists maybe\n{M} end 0\n",
    f"{M} begin 7\nexists 1\n{M} end 7\n",  # an index never asked about
    f"{M} begin 0\nexists 1\n{M} end 1\n",  # frames that do not match
    "\x00\xff\ufffd" * 100,
])
def test_garbage_gives_no_report_for_the_unreadable_directories(text: str):
    # neither directory has a whole, well-formed block of this run's marker: no report for either
    assert parse_report(text, M, DIRS) == {}


def test_a_whole_block_is_kept_when_the_next_one_is_garbage():
    first_block = RECORDED[: RECORDED.index(f"{M} begin 1")]
    reports = parse_report(first_block + f"{M} begin 1\nexists maybe\n", M, DIRS)
    assert list(reports) == [DIRS[0]] and reports[DIRS[0]] == parse_report(RECORDED, M, DIRS)[DIRS[0]]


@given(st.text())
def test_the_parser_never_raises(text: str):
    for job_dir, parsed in parse_report(text, M, DIRS).items():
        assert derive_state(parsed).job_dir == job_dir


@given(st.text(max_size=40), st.text(max_size=40), st.booleans())
def test_derivation_never_raises_on_any_file_content(pid: str, code: str, alive: bool):
    assert derive_state(report(pid_text=pid, exit_code_text=code, alive=alive)).state


def result(stdout: str, *, exit_code: int | None = 0, error: ErrorKind | None = None) -> RunResult:
    return RunResult("n0", "sh -c '...'", exit_code, stdout, "", 0.1, error, "timed out" if error else "")


def test_an_answer_is_states_or_the_reason_there_are_none():
    assert isinstance(answer_from(result(RECORDED), M, DIRS), NodeJobStates)
    cut = answer_from(result(RECORDED[:60]), M, DIRS)
    assert isinstance(cut, NodeQueryFailure) and "no readable report for 2 of 2" in cut.reason
    timeout = answer_from(result("", exit_code=None, error=ErrorKind.TIMEOUT), M, DIRS)
    assert timeout == NodeQueryFailure("n0", "sh -c '...'", "n0: timed out")
    failed = answer_from(result(RECORDED, exit_code=1), M, DIRS)
    assert isinstance(failed, NodeQueryFailure)


def test_the_script_itself_reads_a_directory_of_each_kind(tmp_path: Path):
    """The real script under sh: files of every kind and a hostile directory name."""
    ended = tmp_path / "ended"
    ended.mkdir()
    (ended / "pid").write_text("999999999\n")  # never a live pid (above pid_max)
    (ended / "exit_code").write_text("0")  # no newline: still read
    (ended / "stop_requested").write_text("1735689600\n")
    hostile = str(tmp_path / "$(touch pwned)'\"; touch pwned2 #\nnext")
    argv = jobstate_argv(M, [str(ended), hostile, "~/no/such/dir"])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    reports = parse_report(done.stdout, M, [str(ended), hostile, "~/no/such/dir"])
    assert derive_state(reports[str(ended)]).state == "stopped"
    assert derive_state(reports[str(ended)]).exit_code == 0
    assert not reports[hostile].exists and not reports["~/no/such/dir"].exists
    assert not list(tmp_path.glob("pwned*"))


def test_the_script_never_signals_pid_1_or_a_whole_user(tmp_path: Path):
    for pid in ("1", "0", "-1", "12345678901234"):
        (tmp_path / "pid").write_text(pid)
        done = subprocess.run(jobstate_argv(M, [str(tmp_path)]), capture_output=True, text=True, timeout=30)
        parsed = parse_report(done.stdout, M, [str(tmp_path)])[str(tmp_path)]
        assert parsed.alive is None, pid
        assert derive_state(parsed).pid is None, pid


def test_a_run_of_another_user_reads_as_alive_not_lost(tmp_path: Path):
    """A login that may not signal the run (it is another user's) gets EPERM from `kill -0`: the group
    lives. Read as dead, the node was `lost`, and `jobs` would fail the job and stop its other nodes
    (review). Root runs the group; the script runs as `nobody`, as an operator's own login would."""
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("CI is set but this test needs root, to run the script as another user")
        pytest.skip("needs root, to run the script as another user")
    job_dir = Path(tempfile.mkdtemp(prefix="ascend-other-user-"))
    run = subprocess.Popen(["sleep", "60"], start_new_session=True)  # its own group: pid = pgid
    try:
        job_dir.chmod(0o755)
        (job_dir / "pid").write_text(f"{run.pid}\n")
        (job_dir / "pid").chmod(0o644)
        argv = ["runuser", "-u", "nobody", "--", *jobstate_argv(M, [str(job_dir)])]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd="/")
        assert done.returncode == 0, done.stderr
        report = parse_report(done.stdout, M, [str(job_dir)])[str(job_dir)]
        assert report.alive is True
        assert derive_state(report).state == "running"
    finally:
        run.kill()
        run.wait()
        shutil.rmtree(job_dir)
