"""The probe's `jobs` section -> the processes of console jobs on the node: pid, job, node, rank.

Every process of a job the console launched carries `ASCEND_CONSOLE_JOB=<job id>@<node>` (see
console/jobs/plan.py `process_marker`), and msrun gives each rank `RANK_ID`. The probe reads them
with one `grep -z` over /proc/*/environ, which prints `/proc/<pid>/environ:<NAME>=<value>` a line.
A process may vanish, or be unreadable to the probe's user, between the glob and the read: it is
simply not listed. Lines of any other shape are skipped, never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from remote.probes import QUOTE_LIMIT, printable

JOB_VARIABLE = "ASCEND_CONSOLE_JOB"
RANK_VARIABLE = "RANK_ID"
# Bounded digit runs: a pid or rank of thousands of digits is not one (and int() would refuse it).
LINE = re.compile(r"/proc/([0-9]{1,10})/environ:(ASCEND_CONSOLE_JOB|RANK_ID)=(.*)", re.ASCII)
RANK = re.compile(r"[0-9]{1,9}", re.ASCII)


@dataclass(frozen=True)
class JobProcess:
    """A process carrying a job's marker."""

    pid: int
    job: str
    """The job id, as the console that launched it named it."""
    node: str
    """The node the marker names ("" if it names none): nodes may share a process table."""
    rank: int | None
    """RANK_ID: msrun gives it to each rank; msrun itself and launch.sh have none."""

    @property
    def label(self) -> str:
        """`job ID rank R`, or `job ID` for a process that is not a rank."""
        return f"job {self.job}" + (f" rank {self.rank}" if self.rank is not None else "")


def parse_job_processes(text: str) -> tuple[JobProcess, ...]:
    """Every process with a job marker, by pid; a RANK_ID without a marker is not ours."""
    markers: dict[int, str] = {}
    ranks: dict[int, int] = {}
    for line in text.splitlines():
        row = LINE.fullmatch(line)
        if row is None:
            continue
        pid, name, value = int(row.group(1)), row.group(2), row.group(3)
        if name == JOB_VARIABLE and value.strip().partition("@")[0]:
            markers.setdefault(pid, printable(value.strip())[:QUOTE_LIMIT])
        elif name == RANK_VARIABLE and RANK.fullmatch(value):
            ranks.setdefault(pid, int(value))
    return tuple(_process(pid, marker, ranks.get(pid)) for pid, marker in sorted(markers.items()))


def _process(pid: int, marker: str, rank: int | None) -> JobProcess:
    job, _, node = marker.partition("@")  # job ids have no "@" (plan.py keeps them to [A-Za-z0-9_.-])
    return JobProcess(pid, job, node, rank)
