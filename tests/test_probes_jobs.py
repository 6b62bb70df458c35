"""The `jobs` section parser on the probe command's recorded output, edge lines, and mangled copies."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from console.jobs.plan import JOB_MARKER, process_marker
from remote.probes.jobs import JOB_VARIABLE, JobProcess, parse_job_processes
from tests.probes_samples import mangled, sample

RECORDED = sample("jobs/shared-table-local.txt")


def test_the_recorded_table_gives_every_marked_process_with_its_rank():
    processes = parse_job_processes(RECORDED)
    assert len(processes) == 21  # 22 pids printed; the last carries RANK_ID only: not ours
    by_pid = {p.pid: p for p in processes}
    # msrun carries the marker and no rank; its workers, their log tails and the scheduler carry both
    assert by_pid[17882] == JobProcess(17882, "20261206-214024-tiny_local", "node0", None)
    assert by_pid[17934] == JobProcess(17934, "20261206-214024-tiny_local", "node0", 1)
    assert by_pid[25835] == JobProcess(25835, "20261206-214451-job", "h1", 1)
    assert by_pid[26909] == JobProcess(26909, "20260921-101500-smoke", "node0", 3)
    assert 26911 not in by_pid
    assert {p.node for p in processes} == {"node0", "h0", "h1", "n0"}
    assert [p.pid for p in processes] == sorted(by_pid)


def test_the_label_names_the_job_and_the_rank_when_there_is_one():
    assert JobProcess(1, "20261206-214024-tiny", "n0", 3).label == "job 20261206-214024-tiny rank 3"
    assert JobProcess(1, "20261206-214024-tiny", "n0", None).label == "job 20261206-214024-tiny"


def test_the_variable_and_the_marker_are_those_launch_sets():
    assert JOB_VARIABLE == JOB_MARKER
    text = f"/proc/7/environ:{JOB_VARIABLE}={process_marker('20261206-214024-a.b_c', 'gpu-01')}\n"
    assert parse_job_processes(text) == (JobProcess(7, "20261206-214024-a.b_c", "gpu-01", None),)


def test_odd_lines_are_skipped_and_odd_values_kept_harmless():
    text = "\n".join([
        "grep: /proc/99/environ: Permission denied",  # as printed without -s
        "/proc/5/environ:RANK_ID=1",
        "/proc/5/environ:ASCEND_CONSOLE_JOB=nomarker",  # a marker naming no node
        "/proc/6/environ:ASCEND_CONSOLE_JOB=",  # empty: not a job
        "/proc/6/environ:ASCEND_CONSOLE_JOB=@n",  # nor one with no id
        "/proc/6/environ:RANK_ID=2",
        "/proc/8/environ:ASCEND_CONSOLE_JOB=j\x1b[2J@n",  # control characters never reach a screen
        "/proc/8/environ:RANK_ID=" + "9" * 5000,  # no rank, and no int() of 5,000 digits
        "/proc/" + "1" * 40 + "/environ:ASCEND_CONSOLE_JOB=j@n",
        "/proc/9/environ:ASCEND_CONSOLE_JOB=j@n@m",
        "/proc/9/environ:ASCEND_CONSOLE_JOB=other@n",  # environ has one value per name: the first wins
    ])
    assert parse_job_processes(text) == (
        JobProcess(5, "nomarker", "", 1),
        JobProcess(8, "j?[2J", "n", None),
        JobProcess(9, "j", "n@m", None),
    )


def test_nothing_marked_is_nothing():
    assert parse_job_processes("") == ()
    assert parse_job_processes("/proc/1/environ:RANK_ID=0\n") == ()


@settings(max_examples=150, deadline=None)
@given(mangled([RECORDED]) | st.text())
def test_mangled_or_arbitrary_text_never_raises(text: str):
    for process in parse_job_processes(text):
        assert process.pid >= 0 and process.job
