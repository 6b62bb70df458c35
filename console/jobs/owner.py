"""Which console process is launching or stopping a job, and whether it still lives.

The store keeps it beside a job in `launching` or `stopping` (JobRecord.owner), so another console can
tell a launch or a stop that is under way from one whose console was killed: the first is left alone,
the second adopted at once (console/jobs/refresh.py). A process is named by host, pid and its start
time (from /proc), so a pid reused by another program does not pass for the console. Another host's
process cannot be looked at: then it is unknown, and a lease decides.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Role = Literal["launch", "stop"]


@dataclass(frozen=True)
class Owner:
    role: Role
    host: str
    pid: int
    start: str
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22); "" if unknown."""

    def text(self) -> str:
        """`the console launching it (pid 4242 on head)`."""
        doing = "launching" if self.role == "launch" else "stopping"
        return f"the console {doing} it (pid {self.pid} on {self.host})"

    def dump(self) -> str:
        return json.dumps({"role": self.role, "host": self.host, "pid": self.pid, "start": self.start})


def this_process(role: Role) -> Owner:
    pid = os.getpid()
    return Owner(role, socket.gethostname(), pid, _start_time(pid) or "")


def parse_owner(text: str | None) -> Owner | None:
    """The owner a store holds, or None (none kept, or not readable)."""
    if not text:
        return None
    try:
        data = json.loads(text)
        role: Role = "stop" if data["role"] == "stop" else "launch"
        return Owner(role, str(data["host"]), int(data["pid"]), str(data["start"]))
    except (ValueError, KeyError, TypeError):
        return None


def owner_alive(owner: Owner | None) -> bool | None:
    """True: the process still runs; False: it is gone (or there is none); None: it is on another host."""
    if owner is None:
        return False
    if owner.host != socket.gethostname():
        return None
    start = _start_time(owner.pid)
    return start is not None and (not owner.start or start == owner.start)


def _start_time(pid: int) -> str | None:
    """The process's start time from /proc, None when there is no such process (a zombie, killed and
    not yet reaped, is none), or no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: count fields after its end
    fields = stat[stat.rfind(")") + 2:].split()
    if len(fields) <= 19 or fields[0] in ("Z", "X"):
        return None
    return fields[19]
