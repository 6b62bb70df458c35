"""Finding, killing and reaping processes through /proc, with bounded waits."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

KILL_TIMEOUT = 5.0


def all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def kill_and_wait(pids: Iterable[int]) -> None:
    """SIGKILL, then wait (bounded) until each is gone or a zombie."""
    pending = set(pids)
    for pid in pending:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + KILL_TIMEOUT
    while pending and time.monotonic() < deadline:
        pending = {pid for pid in pending if _alive(pid)}
        time.sleep(0.01)


def kill_tree(root_pid: int) -> None:
    """SIGKILL a process and all its descendants.

    Stop them first, until no new child appears, then kill: killing a parent first would
    re-parent its children to init, and they would escape.
    """
    stopped: set[int] = set()
    for _ in range(100):
        parents = {pid: info[0] for pid in all_pids() if (info := _parent_and_state(pid))}
        tree = {root_pid} | _descendants(root_pid, parents)
        new = tree - stopped
        if not new:
            break
        for pid in new:
            _signal(pid, signal.SIGSTOP)
        stopped |= new
    kill_and_wait(stopped)


def reap(proc: subprocess.Popen[bytes]) -> None:
    """Wait for a child we started (so it leaves no zombie); kill it if it lingers."""
    try:
        proc.wait(timeout=KILL_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):  # stuck in the kernel: give up
            proc.wait(timeout=KILL_TIMEOUT)


def _parent_and_state(pid: int) -> tuple[int, str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
    return int(fields[1]), fields[0]


def _alive(pid: int) -> bool:
    info = _parent_and_state(pid)
    return info is not None and info[1] not in ("Z", "X")


def _descendants(root_pid: int, parents: dict[int, int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), [root_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.kill(pid, signum)
