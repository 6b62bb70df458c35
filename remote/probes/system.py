"""Linux and Docker text -> records: disk, memory, load, driver version, container state.

These formats are stable and well known, so an unreadable one is simply None: the caller says
UNKNOWN and shows the raw text it already holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# `df -P` data line: filesystem, 1024-blocks, used, available, capacity, mount point. The lazy
# filesystem and greedy mount groups let either contain spaces; POSIX mode keeps it on one line.
DF_LINE = re.compile(r"^(.*?)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+%|-)\s+(/.*?)\s*$")
MEMINFO_LINE = re.compile(r"^(\w+):\s+(\d+)(?:\s+kB)?\s*$")
LOADAVG = re.compile(r"^\s*(\d+\.\d+)\s+(\d+\.\d+)\s+(\d+\.\d+)(?:\s|$)")
# docker's `{{.State}}` words; anything else (an old docker's `<no value>`) falls back to Status.
DOCKER_STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")


@dataclass(frozen=True)
class DiskUsage:
    mount: str
    size_kb: int
    used_kb: int
    avail_kb: int
    use_pct: int  # as df prints it: used / (used + available), rounded up


@dataclass(frozen=True)
class Memory:
    total_kb: int
    available_kb: int


@dataclass(frozen=True)
class ContainerState:
    name: str
    running: bool
    status: str  # docker's own words, e.g. `Up 3 hours` or `Exited (137) 2 days ago`


def parse_df(text: str) -> DiskUsage | None:
    """`df -Pk PATH`: the filesystem holding PATH; None when there is no data line."""
    for line in reversed(text.splitlines()):
        row = DF_LINE.match(line)
        if row is not None:
            _, size, used, avail, pct, mount = row.groups()
            return DiskUsage(mount, int(size), int(used), int(avail), _use_pct(pct, int(used), int(avail)))
    return None


def _use_pct(printed: str, used: int, avail: int) -> int:
    if printed != "-":
        return int(printed[:-1])
    # df prints `-` when the filesystem has no size (proc-like mounts): nothing is in use.
    return -(-100 * used // (used + avail)) if used + avail else 0


def parse_meminfo(text: str) -> Memory | None:
    """/proc/meminfo; kernels before 3.14 have no MemAvailable, so it is estimated as they did."""
    fields = {m.group(1): int(m.group(2)) for m in map(MEMINFO_LINE.match, text.splitlines()) if m}
    if "MemTotal" not in fields:
        return None
    available = fields.get("MemAvailable")
    if available is None:
        available = sum(fields.get(key, 0) for key in ("MemFree", "Buffers", "Cached"))
    return Memory(fields["MemTotal"], available)


def parse_loadavg(text: str) -> tuple[float, float, float] | None:
    """/proc/loadavg: `0.52 0.58 0.59 1/467 12345` -> the 1, 5 and 15 minute loads."""
    row = LOADAVG.match(text)
    if row is None:
        return None
    return float(row.group(1)), float(row.group(2)), float(row.group(3))


def parse_driver_version(text: str) -> str | None:
    """/usr/local/Ascend/driver/version.info: `Version=24.1.rc2.2`, ..., `package_version=24.1.rc2.2`.

    package_version is the release people quote; it wins over Version, which some packages may
    use for a component version. Old files have only Version.
    """
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and value.strip():
            values.setdefault(key.strip(), value.strip())
    return values.get("package_version") or values.get("Version")


def parse_docker_ps(text: str) -> ContainerState | None:
    """`docker ps -a --filter name=^X$ --format '{{.Names}}\\t{{.State}}\\t{{.Status}}'`.

    None when no container line is there: the container does not exist, or the text is not this.
    """
    for line in text.splitlines():
        cells = line.strip().split("\t")
        if len(cells) == 3 and all(cell.strip() for cell in (cells[0], cells[2])):
            name, state, status = (cell.strip() for cell in cells)
            return ContainerState(name, _running(state, status), status)
    return None


def _running(state: str, status: str) -> bool:
    if state in DOCKER_STATES:
        return state == "running"
    # Status reads `Up 3 hours (Paused)` for a paused container, which is not running.
    return status.startswith("Up") and "Paused" not in status
