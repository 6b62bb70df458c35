"""remote/launch.py's stage, unstage and start scripts on this machine, through LocalTransport: a job
directory is never made over one that appeared meanwhile, and unstaging removes only a job directory
that `stage` made and that no start began in."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from remote import launch
from remote.inventory import NodeSpec
from remote.local import LocalTransport

NODE = NodeSpec(name="node0", host="localhost", cluster_ip="127.0.0.1", transport="local")
JOB = "20261207-000000-abcd"
ARCHIVE = launch.job_archive({"launch.sh": b"exit 0\n", "config.yaml": b"a: 1\n"}, ["launch.sh"], mtime=0)


def jobs(tmp_path: Path) -> Path:
    made = tmp_path / "work" / "jobs"
    made.mkdir(parents=True)
    return made


def test_a_directory_made_at_the_job_dir_while_unpacking_is_neither_replaced_nor_used(tmp_path: Path):
    """The existence check passed; another process then made an empty directory where the job directory
    goes (here: tar makes it, then unpacks). mv -T alone would rename the staging directory over it."""
    job_dir = jobs(tmp_path) / JOB
    stand_ins = tmp_path / "bin"
    stand_ins.mkdir()
    tar = stand_ins / "tar"
    tar.write_text(f'#!/bin/sh\nmkdir -- "$RACE_DIR"\nexec {shutil.which("tar")} "$@"\n')
    tar.chmod(0o755)
    result = LocalTransport(NODE).run(
        ["sh", "-c", launch.STAGE_SCRIPT, "stage", str(job_dir)], stdin=ARCHIVE, timeout=30,
        env={"PATH": f"{stand_ins}:/usr/bin:/bin", "RACE_DIR": str(job_dir)})
    assert (result.exit_code, result.stderr.strip()) == (3, f"job directory already exists: {job_dir}")
    assert job_dir.is_dir() and list(job_dir.iterdir()) == []  # the other process's, as it made it
    assert [p.name for p in job_dir.parent.iterdir()] == [JOB]  # no .staging.* left beside it


def test_a_job_directory_is_staged_whole_with_its_logs_directory(tmp_path: Path):
    job_dir = jobs(tmp_path) / JOB
    result = launch.stage(LocalTransport(NODE), str(job_dir), ARCHIVE, timeout=30)
    assert (result.exit_code, result.stdout.strip()) == (0, str(job_dir))
    assert sorted(p.name for p in job_dir.iterdir()) == ["config.yaml", "launch.sh", "logs"]
    assert [p.name for p in job_dir.parent.iterdir()] == [JOB]


def test_a_step_after_the_unpack_that_fails_is_said_as_the_unpack_is(tmp_path: Path):
    """The logs directory cannot be made (a file of the job is called `logs`): said with the job
    directory and the cause, like a failed unpack, and nothing is left."""
    job_dir = jobs(tmp_path) / JOB
    archive = launch.job_archive({"launch.sh": b"exit 0\n", "logs": b"a file\n"}, mtime=0)
    result = launch.stage(LocalTransport(NODE), str(job_dir), archive, timeout=30)
    assert result.exit_code == 4, result
    assert result.stderr.startswith(f"could not write the job directory {job_dir}: cannot create directory")
    assert list(job_dir.parent.iterdir()) == []


def staged(tmp_path: Path) -> Path:
    job_dir = jobs(tmp_path) / JOB
    assert launch.stage(LocalTransport(NODE), str(job_dir), ARCHIVE, timeout=30).ok
    return job_dir


def test_unstaging_removes_the_job_directory_staged(tmp_path: Path):
    job_dir = staged(tmp_path)
    result = launch.unstage(LocalTransport(NODE), str(job_dir), JOB, timeout=30)
    assert result.exit_code == 0, result
    assert not job_dir.exists() and job_dir.parent.is_dir()
    # a node that never staged has nothing to remove
    assert launch.unstage(LocalTransport(NODE), str(job_dir), JOB, timeout=30).exit_code == 0


def test_unstaging_refuses_a_path_that_is_not_this_jobs_directory(tmp_path: Path):
    job_dir = staged(tmp_path)
    elsewhere = tmp_path / "work" / "data" / JOB
    elsewhere.mkdir(parents=True)
    workdir = str(tmp_path / "work")
    for path, job_id in [(str(job_dir), "20261207-000000-other"), (str(elsewhere), JOB), (workdir, JOB),
                         (f"{job_dir}/..", ".."), (f"{job_dir}/../../jobs/{JOB}", JOB), (str(job_dir), "")]:
        result = launch.unstage(LocalTransport(NODE), path, job_id, timeout=30)
        assert result.exit_code == 2 and result.stderr.startswith(f"not removed: {path} "), (path, result)
    assert job_dir.is_dir() and elsewhere.is_dir()


def test_unstaging_refuses_a_symbolic_link_at_the_job_directory(tmp_path: Path):
    target = tmp_path / "precious"
    target.mkdir()
    (target / "weights").write_text("keep")
    job_dir = jobs(tmp_path) / JOB
    job_dir.symlink_to(target)
    result = launch.unstage(LocalTransport(NODE), str(job_dir), JOB, timeout=30)
    assert (result.exit_code, result.stderr.strip()) == (2, f"not removed: {job_dir} is a symbolic link")
    assert job_dir.is_symlink() and (target / "weights").read_text() == "keep"


def test_unstaging_refuses_a_directory_a_start_began_in(tmp_path: Path):
    """start_begun is written before the run is started, pid only after: between the two, the run may
    already be there."""
    job_dir = staged(tmp_path)
    (job_dir / "start_begun").touch()
    result = launch.unstage(LocalTransport(NODE), str(job_dir), JOB, timeout=30)
    assert result.exit_code == 3 and "a run was started (or is starting)" in result.stderr, result
    assert (job_dir / "launch.sh").exists()


def test_a_start_says_it_began_before_its_run_is_started(tmp_path: Path):
    job_dir = staged(tmp_path)
    marker = f"test-stage-scripts-{time.time_ns()}"
    result = launch.start(LocalTransport(NODE), str(job_dir), marker, timeout=30)
    assert result.ok, result
    assert (job_dir / "start_begun").exists() and (job_dir / "pid").exists()
    deadline = time.monotonic() + 20
    while not (job_dir / "exit_code").exists():  # launch.sh exits at once: its wrapper is done
        assert time.monotonic() < deadline, "the run's wrapper never wrote exit_code"
        time.sleep(0.1)
    assert launch.unstage(LocalTransport(NODE), str(job_dir), JOB, timeout=30).exit_code == 3
