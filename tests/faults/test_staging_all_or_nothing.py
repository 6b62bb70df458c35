"""Fault matrix, staging (issue 16, item 3): a launch is all or nothing at its staging too. A node whose
workdir refuses writes, or that already holds the job's directory, fails the launch at staging naming
the node and the path; what the node held is untouched, the other node keeps nothing of the job (the
directory it staged is removed), nothing runs, and the store says the job failed. A staging interrupted
half-way leaves the job's directory whole or absent, never half-written, and no staging leftover.

Every fault is real and made in the host's own mount namespace: a read-only bind mount over the workdir
(root's writes get EROFS from the kernel: chmod would not stop root), a directory made beforehand at the
job's path, and the node's own `tar` held half-way through the unpack (a stand-in bound over /usr/bin/tar
that unpacks the first half of the archive with the real tar, then waits), then killed, or cut off from
the console by its link going down. A full disk at staging is tests/faults/test_disk_full.py's."""

from __future__ import annotations

import secrets
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from console.jobs.launcher import LaunchResult, run_launch
from console.jobs.request import JobRequest, plan_job
from console.store import Store
from remote.inventory import load_cluster
from remote.pool import NodePool
from tests.cluster_jobs import cli, cluster_file, job
from tests.faults.consoles import wait_for
from tests.faults.faultkit import link_cut, quick_cluster_file
from tests.faults.nodes import JOBS, STORAGE, marked_pids, must
from tests.testcluster import TestCluster
from tests.testcluster.mounts import mounts_at, unmount_to

pytestmark = [pytest.mark.faults, pytest.mark.cluster]

HOSTS = ["h1", "h2"]
"""h2 is the node at fault; h1 stages without trouble."""


def entries(test_cluster: TestCluster, host: str) -> list[str]:
    """What the host's jobs directory holds (hidden entries too: a staging leftover is one)."""
    return must(test_cluster, host, 'mkdir -p "$1" && ls -A "$1"', JOBS).split()


def left_of_job(test_cluster: TestCluster, job_id: str) -> dict[str, Any]:
    """What each host holds of the job: its directory, its processes."""
    return {host: {"dir": job_id in entries(test_cluster, host),
                   "processes": marked_pids(test_cluster, host, job_id)} for host in HOSTS}


NOTHING = {host: {"dir": False, "processes": []} for host in HOSTS}


def files(test_cluster: TestCluster, host: str, directory: str) -> list[str]:
    """Every file below `directory` on the host, by its path relative to it."""
    return must(test_cluster, host, 'cd "$1" && find . -type f | sed "s#^./##"', directory).split()


def job_state(store_dir: Path, job_id: str) -> tuple[str, list[tuple[str, str | None, str]]]:
    """The job's state in the store and its events (kind, node, message)."""
    with Store(store_dir / "console.db") as store:
        return store.job(job_id).state, [(e.kind, e.node, e.message) for e in store.events(job_id)]




# --- a read-only workdir --------------------------------------------------------------------------


@contextmanager
def read_only(test_cluster: TestCluster, host: str, path: str) -> Iterator[None]:
    """`path` on the host bound read-only over itself: every write below it fails with EROFS, root's too."""
    before = mounts_at(test_cluster, host, path)
    try:
        must(test_cluster, host, 'mkdir -p "$1/jobs" && mount --bind "$1" "$1"', path)
        must(test_cluster, host, 'mount -o remount,bind,ro "$1"', path)
        refused = test_cluster.exec(host, ["mkdir", f"{path}/jobs/.probe"])
        assert refused.returncode != 0 and "Read-only file system" in refused.stderr, refused
        yield
    finally:
        unmount_to(test_cluster, host, path, before)  # the bind too when its remount failed


def test_a_node_whose_workdir_is_read_only_fails_the_launch_at_staging_and_no_node_keeps_anything(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys, state: Path):
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, HOSTS)
    before = entries(test_cluster, "h2")
    with read_only(test_cluster, "h2", STORAGE):
        code, outcome = cli(capsys, "-c", str(cluster), "launch", str(job(tmp_path, 80)), "--json")
        on_h2 = entries(test_cluster, "h2")
    job_id = outcome["job_id"]
    try:
        assert code == 1 and not outcome["launched"], outcome
        failure = outcome["failure"]
        assert (failure["node"], failure["stage"]) == ("h2", "stage"), failure
        assert f"could not write the job directory {JOBS}/{job_id}: " in failure["reason"], failure
        assert "Read-only file system" in failure["reason"], failure
        assert on_h2 == before  # no job directory, whole or half, and no staging leftover
        assert left_of_job(test_cluster, job_id) == NOTHING  # h1's staged directory is removed
        recorded, events = job_state(state, job_id)
        assert recorded == "failed"
        assert ("unstaged", "h1", f"removed {JOBS}/{job_id} (the launch failed at staging)") in events
    finally:
        remove_job_dir(test_cluster, job_id)


def remove_job_dir(test_cluster: TestCluster, job_id: str) -> None:
    for host in HOSTS:
        test_cluster.exec(host, ["rm", "-rf", f"{JOBS}/{job_id}"])


# --- the job's directory already there ------------------------------------------------------------


def test_a_node_that_already_holds_the_job_directory_refuses_it_untouched_and_the_other_keeps_nothing(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, state: Path):
    cluster = load_cluster(cluster_file(test_cluster, tmp_path, known_hosts, HOSTS))
    sentinel = secrets.token_bytes(4096)
    with NodePool(cluster) as pool, Store(state / "console.db") as store:
        planned = plan_job(JobRequest(template=job(tmp_path, 80), name="staging-exists"), pool)
        job_id = planned.plan.job_id  # the id the launch will use, known before it runs
        existing = f"{JOBS}/{job_id}"
        (tmp_path / "sentinel").write_bytes(sentinel)
        must(test_cluster, "h2", 'mkdir -p "$1" && cp "$2" "$1/sentinel"', existing,
             str(tmp_path / "sentinel"))
        try:
            result = run_launch(planned, pool, store, timeout=30)
            failure = result.failure
            assert failure is not None and (failure.node, failure.stage) == ("h2", "stage"), failure
            assert failure.reason == ("copying the job directory exited 3 job directory already exists: "
                                      f"{existing}")
            assert result.stopped == ()
            held = must(test_cluster, "h2", 'ls -A "$1" && cat "$1/sentinel" | od -An -tx1 | tr -d " \\n"',
                        existing).split("\n", 1)
            assert held == ["sentinel", sentinel.hex()]  # nothing added, nothing overwritten
            assert [e for e in entries(test_cluster, "h2") if e.startswith(".staging.")] == []
            assert marked_pids(test_cluster, "h2", job_id) == []
            assert left_of_job(test_cluster, job_id)["h1"] == NOTHING["h1"]
            assert store.job(job_id).state == "failed"
        finally:
            remove_job_dir(test_cluster, job_id)


# --- an unpack interrupted half-way ----------------------------------------------------------------

HELD_TAR = r"""#!/bin/sh
# the stage's unpack held half-way: the first half of the archive's entries unpacked by the real tar,
# then a wait until the test kills this process or writes `go` (then the whole archive) or `stop` (then
# a failed unpack, as if killed: the test's cleanup, which must not let the launch go on)
held={held}
real="$held/tar.real"
[ "$1 $2 $3 $4" = "-x -f - -C" ] || exec "$real" "$@"
cat > "$held/archive.tar"
names=$("$real" -t -f "$held/archive.tar")
half=$(( $(printf '%s\n' "$names" | wc -l) / 2 ))
"$real" -x -f "$held/archive.tar" -C "$5" $(printf '%s\n' "$names" | head -n "$half")
echo $$ > "$held/pid.part" && mv "$held/pid.part" "$held/pid"
while [ ! -e "$held/go" ]; do [ ! -e "$held/stop" ] || exit 1; sleep 0.1; done
exec "$real" -x -f "$held/archive.tar" -C "$5"
"""


@dataclass(frozen=True)
class HeldTar:
    """The host's tar, held half-way through the next stage's unpack."""

    test_cluster: TestCluster
    host: str
    folder: Path
    """Seen the same from the host and from here: the stand-in, the real tar, the archive it was given."""

    def wait_held(self) -> int:
        """The pid of the held unpack, once half the archive is unpacked."""
        pid = self.folder / "pid"
        wait_for("the unpack held half-way", pid.exists, within=60)
        return int(pid.read_text())

    def archive_names(self) -> list[str]:
        listed = must(self.test_cluster, self.host, '"$1/tar.real" -t -f "$1/archive.tar"', str(self.folder))
        return listed.split()

    def go(self) -> None:
        (self.folder / "go").touch()

    def stop(self) -> None:
        """The unpack, held or on its way to the hold, fails instead of going on (unless `go` came first)."""
        (self.folder / "stop").touch()

    def whole_or_absent(self, job_id: str) -> str:
        """"absent", or "whole" when the job's directory holds every file of the archive as it was given
        (content, mode, time) and nothing else but its `logs`; the test fails on anything in between."""
        job_dir = f"{JOBS}/{job_id}"
        if job_id not in entries(self.test_cluster, self.host):
            return "absent"
        found = files(self.test_cluster, self.host, job_dir)
        assert sorted(found) == sorted(self.archive_names()), f"{job_dir} is not whole: {found}"
        compared = self.test_cluster.exec(self.host, [f"{self.folder}/tar.real", "-d", "-f",
                                                      f"{self.folder}/archive.tar", "-C", job_dir])
        assert compared.returncode == 0, f"{job_dir} differs from the archive: {compared.stdout}"
        return "whole"


@contextmanager
def held_tar(test_cluster: TestCluster, host: str) -> Iterator[HeldTar]:
    folder = test_cluster.host(host).state_dir / "held-tar"
    # a stand-in still bound there runs the tar.real below: removing it would leave the host without tar
    assert mounts_at(test_cluster, host, "/usr/bin/tar") == 0, f"a stand-in is still over {host}'s tar"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    shutil.copy2("/usr/bin/tar", folder / "tar.real")
    (folder / "tar").write_text(HELD_TAR.format(held=folder))
    (folder / "tar").chmod(0o755)
    held = HeldTar(test_cluster, host, folder)
    try:
        must(test_cluster, host, 'mount --bind "$1/tar" /usr/bin/tar', str(folder))
        yield held
    finally:
        held.stop()
        unmount_to(test_cluster, host, "/usr/bin/tar", 0)


class Launch(threading.Thread):
    """run_launch on its own thread (the test interrupts the staging meanwhile)."""

    def __init__(self, pool: NodePool, store: Store, request: JobRequest) -> None:
        super().__init__(daemon=True)
        self.planned = plan_job(request, pool)
        self.pool, self.store = pool, store
        self.result: LaunchResult | None = None

    def run(self) -> None:
        self.result = run_launch(self.planned, self.pool, self.store, timeout=30)

    def outcome(self) -> LaunchResult:
        self.join(120)
        assert self.result is not None, "the launch did not end within 120 s"
        return self.result


def check_held_half_way(test_cluster: TestCluster, held: HeldTar, job_id: str, before: list[str]) -> None:
    """While held: the job's name does not exist; one staging directory holds part of the archive."""
    now = entries(test_cluster, "h2")
    assert job_id not in now
    staging = [e for e in now if e not in before]
    assert len(staging) == 1 and staging[0].startswith(".staging."), now
    part = files(test_cluster, "h2", f"{JOBS}/{staging[0]}")
    assert part and set(part) < set(held.archive_names()), part  # really half-written


@contextmanager
def held_launch(test_cluster: TestCluster, cluster: Path, tmp_path: Path, state: Path, name: str
                ) -> Iterator[tuple[HeldTar, Launch, list[str]]]:
    """A launch on HOSTS under way, its unpack on h2 about to be held half-way; with what h2's jobs
    directory held before. Whatever the test leaves of the job on the hosts is removed, once the launch
    has ended: however the test ended, the held unpack fails (unless the test let it go on), so the launch
    fails at staging and starts nothing; the store and the pool stay open until it has ended."""
    before = entries(test_cluster, "h2")
    with held_tar(test_cluster, "h2") as held, NodePool(load_cluster(cluster)) as pool, \
            Store(state / "console.db") as store:
        launching = Launch(pool, store, JobRequest(template=job(tmp_path, 80), name=name))
        try:
            launching.start()
            yield held, launching, before
        finally:
            held.stop()
            launching.join(120)
            remove_job_dir(test_cluster, launching.planned.plan.job_id)
            assert not launching.is_alive(), "the launch did not end within 120 s of the unpack's release"


def test_an_unpack_killed_half_way_leaves_no_job_directory_and_no_staging_leftover(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, state: Path):
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, HOSTS)
    with held_launch(test_cluster, cluster, tmp_path, state, "staging-killed") as (held, launching, before):
        job_id = launching.planned.plan.job_id
        pid = held.wait_held()
        check_held_half_way(test_cluster, held, job_id, before)
        must(test_cluster, "h2", 'kill -KILL "$1"', str(pid))
        failure = launching.outcome().failure
        assert failure is not None and (failure.node, failure.stage) == ("h2", "stage"), failure
        assert f"could not write the job directory {JOBS}/{job_id}: tar exited 137" in failure.reason
        assert held.whole_or_absent(job_id) == "absent"
        assert entries(test_cluster, "h2") == before  # the staging directory is removed too
        assert left_of_job(test_cluster, job_id) == NOTHING
        assert launching.store.job(job_id).state == "failed"


def test_a_link_cut_during_the_unpack_leaves_the_job_directory_whole_once_the_unpack_ends(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, state: Path):
    """The console loses h2 mid-unpack and fails the launch (h1's directory removed); the unpack goes on
    alone on h2 and ends in a whole directory, never a half one (its answer lost, it is left whole)."""
    cluster = quick_cluster_file(test_cluster, tmp_path, known_hosts, HOSTS)
    with held_launch(test_cluster, cluster, tmp_path, state, "staging-cut") as (held, launching, before):
        job_id = launching.planned.plan.job_id
        held.wait_held()
        with link_cut(test_cluster, "h2"):
            failure = launching.outcome().failure
            assert failure is not None and (failure.node, failure.stage) == ("h2", "stage"), failure
            check_held_half_way(test_cluster, held, job_id, before)
            assert held.whole_or_absent(job_id) == "absent"
            held.go()
            wait_for("the unpack on h2 ended", lambda: job_id in entries(test_cluster, "h2"), within=30)
            assert held.whole_or_absent(job_id) == "whole"
            assert sorted(entries(test_cluster, "h2")) == sorted([*before, job_id])  # no staging leftover
        assert left_of_job(test_cluster, job_id) == {**NOTHING, "h2": {"dir": True, "processes": []}}
        assert launching.store.job(job_id).state == "failed"
