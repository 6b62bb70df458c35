"""Test-cluster facilities the fault tests need beyond tests/testcluster: a host's own /etc (a second
user that can log in, a clock that reads differently), a full disk at a host's path, and hand runs
started on a host exactly as the launcher starts a run (its wrapper, pid file and marker).

Every facility is a context manager that undoes itself: a test that breaks a host repairs it.
"""

from __future__ import annotations

import shlex
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from console.jobs.plan import process_marker
from console.records import JobRecord, LaunchRecord
from console.store import Store
from remote import launch
from tests.faults.faultkit import HandRun
from tests.testcluster import TestCluster
from tests.testcluster.mounts import mounts_at, unmount_to

STORAGE = TestCluster.node_storage_path
JOBS = f"{STORAGE}/jobs"
USER = "acjob"
"""The second user (another login than the root the cluster files use)."""
USER_ID = 4987


def must(cluster: TestCluster, host: str, script: str, *args: str, timeout: float = 30,
         env: Mapping[str, str] | None = None) -> str:
    """Run a shell script as root on the host (not over SSH), with `env` added to its environment; its
    stdout, or the test fails."""
    added = [f"{name}={value}" for name, value in (env or {}).items()]
    done = cluster.exec(host, ["env", *added, "sh", "-c", script, "sh", *args], timeout=timeout)
    assert done.returncode == 0, f"{host}: {script!r}: {done.stderr}"
    return done.stdout


# --- the host's own /etc ------------------------------------------------------------------------


@contextmanager
def private_etc(cluster: TestCluster, host: str) -> Iterator[Path]:
    """A copy of /etc that the host (and only it) sees at /etc, for the test to change; yields its path
    in the root namespace. Processes started on the host afterwards (SSH sessions) read it."""
    copy = cluster.host(host).state_dir / "etc"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree("/etc", copy, symlinks=True)
    before = mounts_at(cluster, host, "/etc")
    try:
        must(cluster, host, 'mount --bind "$1" /etc', str(copy))
        yield copy
    finally:
        unmount_to(cluster, host, "/etc", before)
        shutil.rmtree(copy, ignore_errors=True)


@contextmanager
def second_user(cluster: TestCluster, host: str) -> Iterator[str]:
    """USER exists on the host and logs in with the cluster's client key (as root does); yields its name.
    sshd reads authorized_keys as the user: the host sees a way to it open to others meanwhile."""
    with private_etc(cluster, host) as etc, _traversable(cluster, host):
        with (etc / "passwd").open("a") as passwd:
            passwd.write(f"{USER}:x:{USER_ID}:{USER_ID}::/tmp:/bin/sh\n")
        with (etc / "group").open("a") as group:
            group.write(f"{USER}:x:{USER_ID}:\n")
        with (etc / "shadow").open("a") as shadow:
            shadow.write(f"{USER}:*:20000:0:99999:7:::\n")
        yield USER


# Seen from the host, over the topmost directory on the way to its state dir that others may not enter
# (pytest keeps /tmp/pytest-of-root 0700, and resets it): a tmpfs holding only that way, open to all,
# with the state dir bound back at its place. The root namespace is not touched.
_OPEN_WAY = r"""
set -e
mkdir -p /mnt
mount --bind "$1" /mnt
mount -t tmpfs -o mode=755 ascend-way "$2"
mkdir -p "$1"
mount --bind /mnt "$1"
umount /mnt
"""


@contextmanager
def _traversable(cluster: TestCluster, host: str) -> Iterator[None]:
    state = cluster.host(host).state_dir
    closed = [d for d in state.parents if d != Path("/") and not d.stat().st_mode & 0o001]
    if not closed:
        yield
        return
    top = closed[-1]
    before = mounts_at(cluster, host, str(top))
    try:
        must(cluster, host, _OPEN_WAY, str(state), str(top))
        yield
    finally:
        unmount_to(cluster, host, str(top), before)


def faketime_library() -> Path | None:
    """libfaketime (Debian's `faketime` package; scripts/setup.sh --test installs it), or None."""
    return next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))), None)


@contextmanager
def skewed_clock(cluster: TestCluster, host: str, seconds: int) -> Iterator[dict[str, str]]:
    """The host's clock reads `seconds` off for every command the console runs there: root's ~/.bashrc
    on the host (bash sources it for sshd's commands) preloads libfaketime, so `date` in the health
    probe, the follow agent's Python and the runs started over SSH all read the wrong time. Yields the
    same environment, for what a test starts on the host itself (hand runs: `must(..., env=...)`).
    sshd itself is left alone: its sandboxed pre-auth child dies of a preloaded library."""
    library = faketime_library()
    assert library is not None, "libfaketime is not installed (apt-get install faketime)"
    env = {"LD_PRELOAD": str(library), "FAKETIME": f"{seconds:+d}"}
    bashrc = cluster.host(host).state_dir / "home" / ".bashrc"
    assert not bashrc.exists(), f"{bashrc} exists: the test would lose it"
    bashrc.write_text("".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items()))
    try:
        yield env
    finally:
        bashrc.unlink()


@contextmanager
def hidden_processes(cluster: TestCluster, host: str) -> Iterator[None]:
    """The host's /proc mounted anew with `hidepid=invisible`: a user sees only their own processes
    there (root still sees all). Other hosts and this machine keep their /proc."""
    before = mounts_at(cluster, host, "/proc")
    try:
        must(cluster, host, "mount -t proc -o hidepid=invisible ascend-hidepid /proc")
        yield
    finally:
        unmount_to(cluster, host, "/proc", before)


# --- a full disk --------------------------------------------------------------------------------


@contextmanager
def full_disk(cluster: TestCluster, host: str, path: str, *, size_kb: int = 256) -> Iterator[str]:
    """A small tmpfs mounted over `path` on the host (made if missing), then filled: a real full disk,
    ENOSPC for every write below it. Unmounted (and what was below it seen again) at the end."""
    must(cluster, host, 'mkdir -p "$1"', path)
    before = mounts_at(cluster, host, path)
    try:
        must(cluster, host, 'mount -t tmpfs -o "size=$2k" ascend-full "$1" && '
                            '(dd if=/dev/zero of="$1/.filler" bs=4k 2>/dev/null; true)', path, str(size_kb))
        yield path
    finally:
        unmount_to(cluster, host, path, before)


# --- a reboot, as far as a namespace can show it ------------------------------------------------


_HOST_PROCESSES = r"""
mine=$(readlink /proc/$$/ns/mnt)
for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = "$$" ] && continue
    [ "$(readlink "$d/ns/mnt" 2>/dev/null)" = "$mine" ] || continue
    case "$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null)" in "sleep infinity "*|"") continue ;; esac
    echo "$p"
done
"""
"""Every process living in the host's mount namespace but its anchor (and this script)."""


def reboot(cluster: TestCluster, host: str) -> list[int]:
    """Every process of the host dies at once, sshd included, then sshd comes back: what a reboot does
    to the processes (the host's storage stays, as a disk does). Returns the pids killed."""
    cluster.kill_sshd(host)
    killed = [int(p) for p in must(cluster, host, _HOST_PROCESSES).split()]
    if killed:
        cluster.exec(host, ["kill", "-s", "KILL", *map(str, killed)])
    deadline = time.monotonic() + 10
    while must(cluster, host, _HOST_PROCESSES).split():
        assert time.monotonic() < deadline, f"{host}: processes outlived the reboot"
        time.sleep(0.1)
    cluster.start_sshd(host)
    return killed


# --- hand runs, started as the launcher starts them ----------------------------------------------


RANK_LOOP = r"""
rank=$1 every=$2
step=0
while :; do
    step=$((step + 1))
    line="$(date '+%Y-%m-%d %H:%M:%S,000') - mindformers[train.py:86] - INFO - { Epoch:[  1/  1], "
    line="${line}step:[$step/ 9999], loss: $(( 10 - step % 5 )).5, per_step_time: $(( every * 1000 ))ms, "
    printf '%s%s\n' "$line" "lr: 0.0001, overflow cond: False, loss_scale: 1.0, global_norm: [0.9], \
train_throughput_per_npu: 0.015T" >> "logs/worker_$rank.log"
    sleep "$every"
done
"""
"""A hand "rank": a loss line in MindFormers' format every `every` seconds, stamped by the node's clock."""


def launch_script(marker: str, ranks: tuple[int, ...], every: int) -> str:
    """launch.sh of a hand run: the marker exported as the console's launch.sh does, one rank loop per
    rank, and a wait (the run lasts while its ranks do)."""
    loops = "".join(f"sh ./rank.sh {rank} {every} &\n" for rank in ranks)
    return f"export ASCEND_CONSOLE_JOB={shlex.quote(marker)}\n{loops}wait\n"


def start_hand_run(cluster: TestCluster, host: str, job_id: str, ranks: tuple[int, ...], *,
                   every: int = 1, env: Mapping[str, str] | None = None) -> HandRun:
    """Write and start a hand run on the host as root, through the launcher's own start script."""
    marker = process_marker(job_id, host)
    job_dir = f"{JOBS}/{job_id}"
    write = 'mkdir -p "$1/logs" && printf "%s" "$2" > "$1/launch.sh" && printf "%s" "$3" > "$1/rank.sh"'
    must(cluster, host, write, job_dir, launch_script(marker, ranks, every), RANK_LOOP)
    pid = must(cluster, host, launch.START_SCRIPT, job_dir, marker, env=env).strip()
    deadline = time.monotonic() + 10
    while not marked_pids(cluster, host, job_id):  # its ranks carry the marker: they have started
        assert time.monotonic() < deadline, f"{host}: the hand run {job_id} did not start"
        time.sleep(0.1)
    return HandRun(host, job_dir, int(pid), ranks)


def marked_pids(cluster: TestCluster, host: str, job_id: str) -> list[int]:
    """Every process on the host that carries the job's marker for it (read as root)."""
    script = ('for e in /proc/[0-9]*/environ; do tr "\\0" "\\n" < "$e" 2>/dev/null '
              '| grep -qxF "ASCEND_CONSOLE_JOB=$1" && echo "${e%/environ}"; done; true')
    found = must(cluster, host, script, process_marker(job_id, host))
    return sorted(int(p.removeprefix("/proc/")) for p in found.split())


def record_job(state: Path, cluster_file: Path, job_id: str, runs: list[HandRun]) -> None:
    """The job as the launcher records it once every node has started: running, one launch per node,
    and a plan naming each node's job directory and ranks (for the log readers)."""
    plan = {"job_id": job_id, "name": "hand", "workers": sum(len(r.ranks) for r in runs),
            "nodes": [{"node": r.host, "node_rank": index, "job_dir": r.job_dir,
                       "local_workers": len(r.ranks)} for index, r in enumerate(runs)]}
    with Store(state / "console.db") as store:
        store.create_job(
            JobRecord(job_id, "hand", "hand", str(cluster_file), "config", plan=plan, state="running",
                      created_at=1.0, updated_at=1.0),
            [LaunchRecord(job_id, r.host, index, r.job_dir, pid=r.pid, state="running", updated_at=1.0)
             for index, r in enumerate(runs)])
