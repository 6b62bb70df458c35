"""Real health verdicts for the TUI tests: recorded probe output, judged by `remote.health.assess`.

The npu-smi and hccn_tool texts come from tests/standins/recordings/<state>/, replayed with the
stand-ins' rules (a state holds only what differs from `healthy`, `{dev}` is the device id, a
tool listed in `absent` is "not found"). The whole probe stdout is then assembled with markers and
cut by `remote.probe.split_sections`, exactly as a real round trip would be.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from remote.health import NodeHealth, assess, with_drift
from remote.inventory import HealthThresholds, NodeSpec
from remote.probe import ProbeOutput, split_sections
from remote.transport import ErrorKind, RunResult

RECORDINGS = Path(__file__).parent / "standins" / "recordings"
FALLBACK = "healthy"
MARKER = "@@ascend-recorded"
CLOCK = 1_790_000_000.0  # a fixed moment (2026-09-21): tests that show times stay deterministic

UNAME = "{name} 5.15.0-105-generic aarch64"
MEMINFO = "MemTotal:       1584834560 kB\nMemFree:        1400000000 kB\nMemAvailable:   1500000000 kB\n"
LOADAVG = "3.52 3.40 3.31 2/1877 402345"
DF = ("Filesystem     1024-blocks       Used  Available Capacity Mounted on\n"
      "/dev/nvme0n1p1  7500000000 2400000000 5100000000      32% /home\n")


def replay(state: str, tool: str, name: str, device: int = 0) -> tuple[str, int]:
    """What a stand-in prints (stdout and stderr together, as the probe captures) and its exit code."""
    if tool in _absent(state):
        return f"sh: 1: {tool}: not found", 127
    for folder in (RECORDINGS / state, RECORDINGS / FALLBACK):
        recorded = folder / f"{name}.txt"
        if recorded.is_file():
            text = recorded.read_text().replace("{dev}", str(device))
            stderr = folder / f"{name}.stderr"
            if stderr.is_file():
                text += stderr.read_text().replace("{dev}", str(device))
            code = folder / f"{name}.rc"
            return text, int(code.read_text()) if code.is_file() else 0
    return f"{tool} (test stand-in): no recording for {name!r} in state {state!r}", 1


def _absent(state: str) -> set[str]:
    path = RECORDINGS / state / "absent"
    if not path.is_file():
        return set()
    return {line.split("#", 1)[0].strip() for line in path.read_text().splitlines()} - {""}


def probe_sections(node: NodeSpec, state: str, at: float, jobs: str = "") -> list[tuple[str, str, int]]:
    """(section, text, exit code) in the order the probe script runs them; `jobs`: see `marked`."""
    sections = [
        ("clock", f"{at:.9f}", 0), ("uname", UNAME.format(name=node.name), 0), ("nproc", "192", 0),
        ("meminfo", MEMINFO, 0), ("loadavg", LOADAVG, 0), ("df", DF, 0),
    ]
    if node.backend == "npu":
        sections.append(("npu-smi", *replay(state, "npu-smi", "npu-smi-info")))
    sections.append(("jobs", jobs, 0))
    if node.backend == "npu":
        sections.append(("board", *replay(state, "npu-smi", "npu-smi-info-t-board")))
        for device in range(node.devices):
            sections.append((f"link {device}", *replay(state, "hccn_tool", "hccn-link", device)))
            sections.append((f"net_health {device}", *replay(state, "hccn_tool", "hccn-net-health", device)))
            sections.append((f"ip {device}", *replay(state, "hccn_tool", "hccn-ip", device)))
    sections.append(("mindspore", "2.10.0", 0))
    return sections


def probe_output(node: NodeSpec, state: str, at: float = CLOCK, jobs: str = "") -> ProbeOutput:
    """The ProbeOutput `run_probe` would return for a node whose stand-ins report `state`."""
    stdout = "".join(
        f"{MARKER} begin {name}\n{text}\n{MARKER} end {name} {code}\n"
        for name, text, code in probe_sections(node, state, at, jobs)
    )
    result = RunResult(node.name, "sh -c <probe>", 0, stdout, "", 0.25)
    return ProbeOutput(node.name, split_sections(stdout, MARKER), result, at, at)


def unreachable(node: NodeSpec, at: float = CLOCK) -> ProbeOutput:
    message = f"{node.name}: no answer within 10s (host down, link cut or firewalled)"
    result = RunResult(node.name, "sh -c <probe>", None, "", "", 10.0, ErrorKind.UNREACHABLE, message)
    return ProbeOutput(node.name, {}, result, at, at + 10.0)


def npu_node(name: str, host: str = "") -> NodeSpec:
    return NodeSpec(name=name, host=host or name, cluster_ip=host or name, workdir="/home/work")


def cpu_node(name: str) -> NodeSpec:
    return NodeSpec(name=name, host="localhost", cluster_ip="127.0.0.1", transport="local",
                    devices=1, backend="cpu")


THRESHOLDS = HealthThresholds()


def health(node: NodeSpec, state: str, at: float = CLOCK,
           thresholds: HealthThresholds = THRESHOLDS, jobs: str = "") -> NodeHealth:
    """`state` is a recordings folder, or "unreachable" for a node that did not answer."""
    probe = unreachable(node, at) if state == "unreachable" else probe_output(node, state, at, jobs)
    return assess(node, probe, thresholds)


# The pids the `busy` recording's npu-smi lists on NPUs 0-7.
BUSY_PIDS = (277624, 277626, 277628, 277630, 1007953, 1008594, 1008595, 1008596)


def marked(marker: str, ranks: Mapping[int, int | None]) -> str:
    """The probe's `jobs` section for processes (pid -> RANK_ID or None) carrying `marker` (job@node)."""
    lines = []
    for pid, rank in ranks.items():
        lines.append(f"/proc/{pid}/environ:ASCEND_CONSOLE_JOB={marker}")
        if rank is not None:
            lines.append(f"/proc/{pid}/environ:RANK_ID={rank}")
    return "".join(f"{line}\n" for line in lines)


def fleet(states: list[str], prefix: str = "node", at: float = CLOCK) -> list[NodeHealth]:
    """One NPU node per state, named prefix000, prefix001, ..., judged together as `check_nodes` does."""
    width = max(3, len(str(len(states) - 1)))
    reports = []
    for index, state in enumerate(states):
        node = npu_node(f"{prefix}{index:0{width}d}", f"10.0.{index // 250}.{index % 250 + 1}")
        reports.append(health(node, state, at))
    return with_drift(reports)


def renamed(report: NodeHealth, name: str) -> NodeHealth:
    return replace(report, node=name)
