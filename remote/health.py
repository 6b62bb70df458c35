"""The health model: probe output in, a status with human reasons per NPU, link and node out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

from remote import nodeset
from remote.inventory import HealthThresholds, NodeSpec
from remote.probe import ProbeOutput
from remote.probes import UNKNOWN
from remote.probes.hccn import LinkStatus, NetHealth, parse_ip, parse_link, parse_net_health
from remote.probes.jobs import JobProcess, parse_job_processes
from remote.probes.npusmi import (
    Npu,
    NpuProcess,
    npu_smi_error,
    parse_npu_smi_detail,
    parse_npu_smi_info,
)
from remote.probes.system import (
    ContainerState,
    DiskUsage,
    parse_df,
    parse_docker_ps,
    parse_loadavg,
    parse_meminfo,
)


class Status(str, Enum):
    OK = "OK"
    UNKNOWN = "UNKNOWN"
    WARN = "WARN"
    FAIL = "FAIL"
    UNREACHABLE = "UNREACHABLE"

    @property
    def rank(self) -> int:
        return list(Status).index(self)


def worst(statuses: Iterable[Status]) -> Status:
    return max(statuses, key=lambda s: s.rank, default=Status.OK)


@dataclass(frozen=True)
class Finding:
    """One reason a node is not simply OK."""

    status: Status
    text: str


@dataclass(frozen=True)
class NpuReport:
    npu: Npu
    status: Status
    reasons: tuple[str, ...]
    processes: tuple[NpuProcess, ...]
    jobs: tuple[JobProcess, ...] = ()
    """The processes above that belong to a console job (they carry its marker): not foreign."""

    def job_of(self, pid: int) -> JobProcess | None:
        return next((p for p in self.jobs if p.pid == pid), None)


@dataclass(frozen=True)
class LinkReport:
    device: int
    link: str
    net_health: str
    ip: str | None
    status: Status


@dataclass(frozen=True)
class SystemReport:
    backend: str
    hostname: str = ""
    kernel: str = ""
    machine: str = ""
    cpus: int | None = None
    memory_total_kb: int | None = None
    memory_available_kb: int | None = None
    load: tuple[float, float, float] | None = None
    disk: DiskUsage | None = None
    driver_version: str | None = None
    firmware_version: str | None = None
    mindspore_version: str | None = None
    container: ContainerState | None = None
    clock_offset_s: float | None = None


@dataclass(frozen=True)
class NodeJob:
    """A console job with processes on the node."""

    id: str
    ranks: tuple[int, ...]
    """The RANK_IDs its processes here carry."""
    npus: tuple[int, ...]
    """The NPUs its processes hold."""


@dataclass(frozen=True)
class NodeHealth:
    """A node's health at one moment. `stale`: the node stopped answering; values are the last good ones."""

    node: str
    host: str
    status: Status
    findings: tuple[Finding, ...]
    npus: tuple[NpuReport, ...] = ()
    links: tuple[LinkReport, ...] = ()
    system: SystemReport | None = None
    raw: dict[str, str] = field(default_factory=dict)
    checked_at: float = 0.0
    elapsed: float = 0.0
    stale: bool = False
    expected_npus: int = 0
    """NPUs the cluster file says the node has: those not seen count as not OK."""
    jobs: tuple[NodeJob, ...] = ()
    """The console jobs running on the node, oldest first."""

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f.text for f in self.findings)


# --- one node ------------------------------------------------------------------------------------


def assess(node: NodeSpec, probe: ProbeOutput, thresholds: HealthThresholds) -> NodeHealth:
    """Judge one node from its probe output. Pure: the same input always gives the same verdict.

    A process on an NPU that carries a console job's marker is that job's, whichever console
    launched it: the node itself says so (the probe's `jobs` section), not this console's memory.
    """
    base = NodeHealth(node.name, node.host, Status.UNREACHABLE, (), checked_at=probe.received_at,
                      elapsed=probe.result.elapsed,
                      expected_npus=node.devices if node.backend == "npu" else 0)
    if probe.result.error is not None:
        return replace(base, findings=(Finding(Status.UNREACHABLE, probe.result.message),))
    if not probe.sections:
        why = _first_line(probe.result.stderr) or _first_line(probe.result.stdout) or "no output"
        failed = Finding(Status.FAIL, f"probe did not run (exit {probe.result.exit_code}): {why}")
        return replace(base, status=Status.FAIL, findings=(failed,))
    findings: list[Finding] = []
    system = _system(node, probe, thresholds, findings)
    npus: tuple[NpuReport, ...] = ()
    links: tuple[LinkReport, ...] = ()
    marked = parse_job_processes(probe.text("jobs"))
    if node.backend == "npu":
        npus, driver = _npus(node, probe, thresholds, {p.pid: p for p in marked}, findings)
        system = replace(system, driver_version=driver)
        links = _links(node, probe, findings)
    raw = {name: section.text for name, section in probe.sections.items()}
    status = worst(f.status for f in findings)
    return replace(base, status=status, findings=tuple(findings), npus=npus, links=links,
                   system=system, raw=raw, jobs=_node_jobs(node, marked, npus))


def _node_jobs(
    node: NodeSpec, marked: tuple[JobProcess, ...], npus: tuple[NpuReport, ...]
) -> tuple[NodeJob, ...]:
    """Jobs whose marker names this node, or that hold its NPUs (a console may name the node
    otherwise). A marker naming another node is that node's: nodes may share a process table."""
    holding = {p.pid for n in npus for p in n.jobs}
    by_job: dict[str, list[JobProcess]] = {}
    for process in marked:
        if process.node == node.name or process.pid in holding:
            by_job.setdefault(process.job, []).append(process)
    return tuple(
        NodeJob(job, tuple(sorted({p.rank for p in processes if p.rank is not None})),
                tuple(sorted({n.npu.id for n in npus if any(p.job == job for p in n.jobs)})))
        for job, processes in sorted(by_job.items()))


def _system(
    node: NodeSpec, probe: ProbeOutput, thresholds: HealthThresholds, findings: list[Finding]
) -> SystemReport:
    hostname, kernel, machine = ([*probe.text("uname").split(), "", "", ""])[:3]
    memory = parse_meminfo(probe.text("meminfo"))
    disk = parse_df(probe.text("df"))
    system = SystemReport(
        backend=node.backend, hostname=hostname, kernel=kernel, machine=machine,
        cpus=_int(probe.text("nproc")),
        memory_total_kb=memory.total_kb if memory else None,
        memory_available_kb=memory.available_kb if memory else None,
        load=parse_loadavg(probe.text("loadavg")), disk=disk,
        firmware_version=parse_npu_smi_detail(probe.text("board")).get("Firmware Version"),
        mindspore_version=_first_line(probe.text("mindspore")) if probe.exit_code("mindspore") == 0 else None,
        container=parse_docker_ps(probe.text("docker")) if node.container else None,
        clock_offset_s=_clock_offset(probe),
    )
    _judge_system(node, probe, system, thresholds, findings)
    return system


def _judge_system(
    node: NodeSpec, probe: ProbeOutput, system: SystemReport, thresholds: HealthThresholds,
    findings: list[Finding],
) -> None:
    disk = system.disk
    if disk is not None and disk.avail_kb < thresholds.disk_free_gb * 1024 * 1024:
        findings.append(Finding(Status.WARN, f"disk: {disk.avail_kb / 1024 / 1024:.1f} GiB free on "
                                             f"{disk.mount} (< {thresholds.disk_free_gb:g} GiB)"))
    if node.container and (system.container is None or not system.container.running):
        state = system.container.status if system.container else _first_line(probe.text("docker"))
        findings.append(Finding(Status.WARN, f"container {node.container} not running ({state or 'absent'})"))
    low, high = _clock_bounds(probe)
    if low is not None and high is not None and (
            low > thresholds.clock_offset_s or high < -thresholds.clock_offset_s):
        findings.append(Finding(Status.WARN, f"clock: {(low + high) / 2:+.1f} s from the console's"))


def _npus(
    node: NodeSpec, probe: ProbeOutput, thresholds: HealthThresholds, marked: Mapping[int, JobProcess],
    findings: list[Finding],
) -> tuple[tuple[NpuReport, ...], str | None]:
    """Each NPU's report, and the driver version the table's title line names."""
    text = probe.text("npu-smi")
    error = npu_smi_error(text, "", probe.exit_code("npu-smi"))
    if error is not None:
        findings.append(Finding(Status.FAIL, f"npu-smi: {error}"))
        return (), None
    info = parse_npu_smi_info(text)
    if not info.parsed:
        findings.append(Finding(Status.UNKNOWN, f"npu-smi: {info.problem}"))
        return (), None
    findings.extend(Finding(Status.WARN, f"npu-smi: {warning}") for warning in info.warnings)
    reports = tuple(_npu(npu, info.processes, thresholds, marked) for npu in info.npus)
    for report in reports:
        findings.extend(Finding(report.status, f"NPU {report.npu.id}: {r}") for r in report.reasons)
    visible = len({npu.id for npu in info.npus})
    if visible < node.devices:
        findings.append(Finding(Status.FAIL, f"only {visible} of {node.devices} NPUs visible"))
    return reports, info.version


def _npu(
    npu: Npu, processes: tuple[NpuProcess, ...], thresholds: HealthThresholds,
    marked: Mapping[int, JobProcess],
) -> NpuReport:
    mine = tuple(p for p in processes if p.npu_id == npu.id and p.chip == npu.chip)
    found: list[Finding] = []
    if npu.health == "Warning":
        found.append(Finding(Status.WARN, "health Warning"))
    elif npu.health != "OK":
        found.append(Finding(Status.FAIL, f"health {npu.health}"))
    if npu.temp_c is not None and npu.temp_c > thresholds.temperature_c:
        found.append(Finding(Status.WARN, f"{npu.temp_c:g} C (> {thresholds.temperature_c:g} C)"))
    foreign = [p for p in mine if p.pid not in marked]
    if foreign:
        pids = ", ".join(f"{p.pid}{f' {p.name}' if p.name else ''}" for p in foreign)
        found.append(Finding(Status.WARN, f"busy: {len(foreign)} foreign process(es) ({pids})"))
    elif not mine and (npu.hbm_used_mb or 0) > thresholds.hbm_busy_mb:
        found.append(Finding(Status.WARN, f"busy: {npu.hbm_used_mb} MB HBM in use by no visible process"))
    jobs = tuple(marked[p.pid] for p in mine if p.pid in marked)
    return NpuReport(npu, worst(f.status for f in found), tuple(f.text for f in found), mine, jobs)


def _links(node: NodeSpec, probe: ProbeOutput, findings: list[Finding]) -> tuple[LinkReport, ...]:
    devices = sorted(int(name.split()[1]) for name in probe.sections if name.startswith("link "))
    if node.devices and not devices:
        findings.append(Finding(Status.UNKNOWN, "links not read: the probe ran out of time before them"))
        return ()
    if any(probe.exit_code(f"link {d}") == 127 for d in devices):
        findings.append(Finding(Status.FAIL, "hccn_tool not found: links cannot be checked"))
        return ()
    reports = []
    problems: dict[tuple[Status, str], list[int]] = {}
    for device in devices:
        link = parse_link(probe.text(f"link {device}"))
        health = parse_net_health(probe.text(f"net_health {device}"))
        status, problem = _link_problem(link, health)
        if problem:
            problems.setdefault((status, problem), []).append(device)
        ip = parse_ip(probe.text(f"ip {device}")).ip
        reports.append(LinkReport(device, link.state, health.word, ip, status))
    # eight links down on one node is one problem to a person, not eight lines
    findings.extend(Finding(status, f"{_devices(devices)} {problem}")
                    for (status, problem), devices in problems.items())
    return tuple(reports)


def _link_problem(link: LinkStatus, health: NetHealth) -> tuple[Status, str]:
    if link.state == "DOWN":
        return Status.FAIL, "DOWN"
    if link.state != "UP":
        return Status.UNKNOWN, f"state unknown: {link.problem or link.state}"
    if health.word == "Init":
        # the normal state of a NIC whose peer-detect address was never set: cannot be verified
        return Status.WARN, "net_health Init (no detect IP set)"
    if health.word == UNKNOWN:
        return Status.UNKNOWN, f"net_health unknown: {health.problem}"
    if not health.ok:
        return Status.FAIL, f"net_health {health.word}"
    return Status.OK, ""


def _devices(devices: list[int]) -> str:
    """`link 3` or `links 0-3,6`."""
    folded = nodeset.fold(str(d) for d in devices).strip("[]")
    return f"link {folded}" if len(devices) == 1 else f"links {folded}"


def _clock_bounds(probe: ProbeOutput) -> tuple[float | None, float | None]:
    """The node's clock read when the probe began and when it ended: the offset lies in [low, high].

    The first reading happened after we sent, the last before we received; a probe cut short by
    its budget has no last reading, and the bound is looser.
    """
    start, end = _seconds(probe.text("clock")), _seconds(probe.text("clock_end"))
    if start is None:
        return None, None
    return (end if end is not None else start) - probe.received_at, start - probe.sent_at


def _seconds(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


def _clock_offset(probe: ProbeOutput) -> float | None:
    low, high = _clock_bounds(probe)
    return None if low is None or high is None else (low + high) / 2


def _int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


# --- the fleet -----------------------------------------------------------------------------------


def with_drift(reports: Sequence[NodeHealth]) -> list[NodeHealth]:
    """Nodes whose driver, firmware or MindSpore differ from the majority get a WARN "drift"."""
    fields = ("driver_version", "firmware_version", "mindspore_version")
    majorities = {name: _majority(reports, name) for name in fields}
    result = []
    for report in reports:
        extra = [
            Finding(Status.WARN, f"drift: {name.replace('_version', '')} {value} "
                                 f"(most nodes: {majorities[name]})")
            for name in fields
            if majorities[name] is not None and report.system is not None and not report.stale
            and (value := getattr(report.system, name)) is not None and value != majorities[name]
        ]
        findings = report.findings + tuple(extra)
        result.append(replace(report, findings=findings, status=worst(f.status for f in findings))
                      if extra else report)
    return result


def _majority(reports: Sequence[NodeHealth], name: str) -> str | None:
    values = Counter(getattr(r.system, name) for r in reports if r.system is not None and not r.stale)
    values.pop(None, None)
    if not values:
        return None
    [(value, count)] = values.most_common(1)
    # a majority of the nodes that report a version at all: a broken driver is not a vote
    return value if count > values.total() / 2 else None


STATIC_SYSTEM_FIELDS = ("hostname", "kernel", "machine", "cpus", "memory_total_kb", "firmware_version",
                        "mindspore_version")


def carry_static(previous: NodeHealth | None, current: NodeHealth) -> NodeHealth:
    """A quick probe skips what rarely changes (versions, NIC addresses): take those from before."""
    if previous is None or previous.system is None or current.system is None:
        return current
    system = replace(current.system, **{
        name: getattr(previous.system, name) for name in STATIC_SYSTEM_FIELDS
        if getattr(current.system, name) in (None, "")
    })
    addresses = {link.device: link.ip for link in previous.links}
    links = tuple(replace(link, ip=link.ip or addresses.get(link.device)) for link in current.links)
    return replace(current, system=system, links=links)


def keep_last_good(previous: NodeHealth | None, current: NodeHealth) -> NodeHealth:
    """A node that stops answering keeps its last good readings, marked stale."""
    if current.status is not Status.UNREACHABLE or previous is None or previous.system is None:
        return current
    return replace(previous, status=Status.UNREACHABLE, findings=current.findings,
                   stale=True, elapsed=current.elapsed)


@dataclass(frozen=True)
class FleetSummary:
    nodes: int
    nodes_ok: int
    npus: int
    npus_ok: int
    links: int
    links_down: int
    unreachable: int

    @property
    def text(self) -> str:
        parts = [f"{self.nodes_ok}/{self.nodes} nodes OK"]
        if self.npus:
            parts.append(f"{self.npus_ok}/{self.npus} NPUs")
        if self.links_down:
            parts.append(f"{self.links_down} link{'s' if self.links_down > 1 else ''} down")
        if self.unreachable:
            parts.append(f"{self.unreachable} unreachable")
        return " · ".join(parts)


def summarize(reports: Sequence[NodeHealth]) -> FleetSummary:
    links = [link for r in reports for link in r.links]
    return FleetSummary(
        nodes=len(reports),
        nodes_ok=sum(r.status is Status.OK for r in reports),
        npus=sum(max(r.expected_npus, len(r.npus)) for r in reports),
        npus_ok=sum(n.status is Status.OK for r in reports if not r.stale for n in r.npus),
        links=len(links),
        links_down=sum(link.link == "DOWN" for link in links),
        unreachable=sum(r.status is Status.UNREACHABLE for r in reports),
    )
