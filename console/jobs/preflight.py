"""Go / no-go before a launch, per node: reachable, healthy, NPUs free, the same MindSpore and driver
everywhere, the master port free, room on disk, the paths the config reads present (a training job's
dataset and checkpoint; a predict job's checkpoint, pretrained_model_dir and tokenizer, each named), what
the launch style needs (`launcher`: a MindFormers checkout and its register_path, msrun, MindSpore
importable by the node's python, the node's container running: console/jobs/launchneeds.py), and a
layout valid for these nodes. `judge` is pure (readings in, verdicts out); `preflight` takes the
readings.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from console.jobs.launchneeds import LaunchNeed, launch_needs
from console.jobs.plan import JobPlan
from console.jobs.request import PlannedJob, predict_inputs
from console.jobs.service import job_files
from model.config import JobSpec
from model.validate import ConfigProblem, validate
from remote.checker import ClusterChecker
from remote.health import NodeHealth, Status
from remote.inventory import NodeSpec
from remote.launch import PortCheck, free_port
from remote.needs import NeedsReading, probe_needs
from remote.paths import MissingPath, dataset_files, missing_paths
from remote.pool import NodePool

CHECKS = ("reachable", "health", "npus-free", "versions", "port", "disk", "paths", "launcher", "config")
DISK_MARGIN_BYTES = 1 << 30
"""Room a job needs beyond what is copied: logs and checkpoints of a smoke test."""


@dataclass(frozen=True)
class Verdict:
    check: str
    node: str | None
    """None: about the job as a whole (versions, config)."""
    ok: bool
    message: str
    forced: bool = False
    """Failed, but `--force` named this check."""


@dataclass(frozen=True)
class Readings:
    health: Sequence[NodeHealth]
    port: int | None
    """The free master port found, or None (busy, or not known: see port_failure)."""
    bytes_to_copy: int
    missing: Sequence[MissingPath]
    problems: Sequence[ConfigProblem]
    port_failure: str | None = None
    """Why the master could not be asked about its port."""
    roles: Mapping[str, str] = field(default_factory=dict)
    """What a path checked is (`checkpoint`, `tokenizer`...), said with it when it is missing."""
    needs: Mapping[str, Sequence[LaunchNeed]] = field(default_factory=dict)
    """What each node's launch needs (by node name)."""
    launcher: Sequence[NeedsReading] = ()
    """What the nodes that answered lack of it; an unreachable node is not asked."""
    containers: Mapping[str, str] = field(default_factory=dict)
    """The container each node's launch runs in, by node name."""


@dataclass(frozen=True)
class Preflight:
    verdicts: tuple[Verdict, ...]

    @property
    def go(self) -> bool:
        return all(v.ok or v.forced for v in self.verdicts)

    @property
    def blocking(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if not v.ok and not v.forced)

    def as_json(self) -> dict[str, object]:
        return {"go": self.go, "checks": [{"check": v.check, "node": v.node, "ok": v.ok, "forced": v.forced,
                                           "message": v.message} for v in self.verdicts]}


def judge(plan: JobPlan, readings: Readings, *, force: Collection[str] = ()) -> Preflight:
    verdicts: list[Verdict] = []
    for health in readings.health:
        verdicts += _node_verdicts(health, readings.bytes_to_copy)
    verdicts += _version_verdicts(readings.health)
    verdicts.append(_port_verdict(plan, readings))
    verdicts += [Verdict("paths", node, False, _missing_text(m, node, readings.roles.get(m.path)))
                 for m in readings.missing for node in m.nodes]
    verdicts += _launcher_verdicts(readings)
    verdicts += [Verdict("config", None, p.severity != "error", f"{p.path}: {p.message}")
                 for p in readings.problems]
    return Preflight(tuple(
        Verdict(v.check, v.node, v.ok, v.message, forced=not v.ok and v.check in force) for v in verdicts))


def _missing_text(missing: MissingPath, node: str, role: str | None) -> str:
    if role is None:
        return f"{missing.path} {'not checked' if missing.unchecked else 'missing'}"
    if missing.unchecked:
        return f"{role} {missing.path} not checked on {node}"
    return f"{role} {missing.path} is not on {node}"


def _launcher_verdicts(readings: Readings) -> list[Verdict]:
    gone = {h.node for h in readings.health if h.status is Status.UNREACHABLE or h.stale}
    verdicts: list[Verdict] = []
    for reading in readings.launcher:
        if reading.node not in gone:
            verdicts += _node_launcher_verdicts(reading, readings.needs.get(reading.node, ()),
                                                readings.containers.get(reading.node))
    return verdicts


def _node_launcher_verdicts(reading: NeedsReading, needs: Sequence[LaunchNeed],
                            container: str | None) -> list[Verdict]:
    node = reading.node
    where = f"{node} (in container {container})" if container else node
    if reading.failure is not None:
        return [Verdict("launcher", node, False,
                        f"{where}: what the launch needs was not checked: {reading.failure}")]
    if reading.container_down is not None:
        return [Verdict("launcher", node, False,
                        f"{node}: container {container} is not running ({reading.container_down})")]
    absent = dict(reading.absent)
    said = [Verdict("launcher", node, False, f"{where}: {n.missing}" + (f": {absent[n.need]}"
                                                                       if absent[n.need] else ""))
            for n in needs if n.need in absent and (n.within is None or n.within not in absent)]
    return said or [Verdict("launcher", node, True, f"{where}: {', '.join(n.name for n in needs)} found"
                            if needs else f"{where}: nothing to check for this launch")]


def _port_verdict(plan: JobPlan, readings: Readings) -> Verdict:
    master, port = plan.nodes[0].node, plan.master_port
    what = "server port" if plan.kind == "serve" else "master port"
    if readings.port == port:
        return Verdict("port", master, True, f"{what} {port} free on {plan.master_addr}")
    if readings.port_failure is not None:
        return Verdict("port", master, False, f"{what} {port} not checked: {readings.port_failure}")
    return Verdict("port", master, False,
                   f"{what} {port} is in use on {plan.master_addr}: choose another with --port")


def _node_verdicts(health: NodeHealth, bytes_to_copy: int) -> list[Verdict]:
    node = health.node
    if health.status is Status.UNREACHABLE or health.stale:
        return [Verdict("reachable", node, False, "; ".join(health.reasons) or "unreachable")]
    verdicts = [Verdict("reachable", node, True, "answered"),
                Verdict("health", node, health.status in (Status.OK, Status.WARN),
                        f"health {health.status.value}" + (f": {'; '.join(health.reasons)}"
                                                           if health.reasons else ""))]
    busy = sorted({p.pid for npu in health.npus for p in npu.processes})
    verdicts.append(Verdict("npus-free", node, not busy,
                            "no process on any NPU" if not busy else
                            f"NPUs busy with process(es) {', '.join(map(str, busy))}"))
    disk = health.system.disk if health.system is not None else None
    if disk is not None:
        needed = bytes_to_copy + DISK_MARGIN_BYTES
        free, wanted = _sizes(disk.avail_kb * 1024, needed)
        verdicts.append(Verdict("disk", node, disk.avail_kb * 1024 >= needed,
                                f"{free} free at {disk.mount}, {wanted} needed"))
    return verdicts


def _sizes(free: int, needed: int) -> tuple[str, str]:
    """Bytes free and needed in GiB to a tenth, or finer where that would print them the same: a refusal
    never reads `1.0 GiB free, 1.0 GiB needed`."""
    for unit, name, digits in ((2**30, "GiB", 1), (2**20, "MiB", 0), (2**10, "KiB", 0)):
        said = f"{free / unit:.{digits}f} {name}", f"{needed / unit:.{digits}f} {name}"
        if said[0] != said[1]:
            return said
    return f"{free} bytes", f"{needed} bytes"


def _version_verdicts(reports: Sequence[NodeHealth]) -> list[Verdict]:
    verdicts = []
    for label, name in (("MindSpore", "mindspore_version"), ("driver", "driver_version")):
        seen: dict[str, list[str]] = {}
        for report in reports:
            value = getattr(report.system, name, None) if report.system is not None else None
            if value:
                seen.setdefault(value, []).append(report.node)
        if len(seen) > 1:
            detail = "; ".join(f"{value} on {', '.join(nodes)}" for value, nodes in sorted(seen.items()))
            verdicts.append(Verdict("versions", None, False, f"{label} differs: {detail}"))
        elif seen:
            verdicts.append(Verdict("versions", None, True, f"{label} {next(iter(seen))} everywhere"))
    return verdicts


def preflight(planned: PlannedJob, pool: NodePool, *, timeout: float = 30.0) -> Preflight:
    """Take the readings for a planned job and judge them, going despite the checks it was asked to."""
    plan = planned.plan
    readings = take_readings(plan, planned.job, pool, planned.nodes,
                             bytes_to_copy=len(job_files(plan, plan.nodes[0])), timeout=timeout)
    return judge(plan, readings, force=planned.request.force)


def take_readings(plan: JobPlan, job: JobSpec, pool: NodePool, nodes: Sequence[NodeSpec], *,
                  bytes_to_copy: int, timeout: float) -> Readings:
    health = ClusterChecker(pool, nodes, timeout=timeout).refresh()
    master = nodes[0]
    check = free_port(pool.transport(master), master.python, plan.master_port, span=1, timeout=timeout) \
        if health[0].status is not Status.UNREACHABLE else PortCheck(None, f"{master.name} is unreachable")
    roles = input_paths(plan, job)
    missing = missing_paths(pool, nodes, list(roles), timeout=timeout)
    needs = launch_needs(plan, nodes)
    answered = {h.node for h in health if h.status is not Status.UNREACHABLE and not h.stale}
    envs = {launch.node: dict(launch.env) for launch in plan.nodes}
    launcher = probe_needs(pool, {node.name: (node, [n.need for n in needs[node.name]]) for node in nodes
                                  if node.name in needs and node.name in answered}, env=envs, timeout=timeout)
    # a server runs as one process per node whatever the training layout says
    problems = [] if plan.kind == "serve" else validate(job, nodes=len(nodes),
                                                        devices_per_node=nodes[0].devices)
    return Readings(health, check.port, bytes_to_copy, missing, problems, port_failure=check.failure,
                    roles=roles, needs=needs, launcher=launcher,
                    containers={node.name: node.container for node in nodes if node.container})


def input_paths(plan: JobPlan, job: JobSpec) -> dict[str, str]:
    """The paths the job reads on every node, with what each is. A predict job's relative paths are read
    from its job directory, which is not there yet: only absolute ones are checked. A serve job reads
    its weights (`serve.model`), and this project's server what a predict job does."""
    if plan.kind in ("predict", "serve"):
        model_reads = plan.serve is None or plan.serve.engine == "model"
        config = predict_inputs(plan.config_text) if model_reads else {}
        paths = {path: role for role, path in config.items() if posixpath.isabs(path)}
        if plan.serve is not None and plan.serve.weights and posixpath.isabs(plan.serve.weights):
            paths[plan.serve.weights] = "weights"
        return paths
    paths = {path: "dataset file" for path in dataset_files(job.training.data_prefixes)}
    if job.training.load_checkpoint:
        paths[job.training.load_checkpoint] = "checkpoint"
    return paths
