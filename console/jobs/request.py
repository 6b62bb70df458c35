"""What a user asks to run (`JobRequest`: typed, from the CLI's flags or a screen's fields) and the plan it
comes to on a cluster (`PlannedJob`): template + overrides rendered, the nodes chosen, the launch style
settled, a free master port found. Shared by plan, preflight and launch."""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import yaml

from console.jobs.plan import (
    JobPlan,
    Kind,
    LaunchSettings,
    PlanError,
    Style,
    check_env,
    default_style,
    job_id_for,
    launch_settings,
    make_plan,
)
from console.jobs.pretrained import parse_job
from console.jobs.serveplan import engine_for, serve_port
from model.config import JobSpec
from model.overrides import derive
from model.yamlsource import Problem, SourceError
from remote import nodeset
from remote.inventory import InventoryError, NodeSpec
from remote.launch import free_port
from remote.pool import NodePool

SETTLE_SECONDS = 5.0
"""How long a launch watches the nodes after starting them: a node whose msrun dies at once
(missing, misconfigured) fails the launch; later failures are msrun's own business."""

REQUEST_ERRORS = (SourceError, PlanError, InventoryError)
"""Why a request has no plan: the config (SourceError, with file and line), the layout or environment
(PlanError), the node set (InventoryError)."""


@dataclass(frozen=True)
class JobRequest:
    """A job as the user asked for it, before it meets the cluster."""

    template: Path
    """The job config (MindFormers YAML)."""
    overrides: tuple[str, ...] = ()
    """`PATH=VALUE` overrides of the job config's fields, applied in order."""
    nodes: str | None = None
    """The node set to run on (`n[0-3]`); None: every node of the cluster."""
    master: str | None = None
    """The node that is node_rank 0 (the master address is its `cluster_ip`); None: the first of `nodes`."""
    style: Style | None = None
    """None: the job file's `console.style`, else the cluster's default."""
    env: tuple[tuple[str, str], ...] = ()
    """Exported in every rank's environment, over the job file's `console.env`."""
    port: int | None = None
    """msrun's master port (a serve job: its server's), taken as given; None: the job file's or 8118
    (8000), the next free one if taken."""
    name: str | None = None
    """The job's name; None: the template's file name."""
    force: frozenset[str] = field(default_factory=frozenset)
    """Preflight checks (`console.jobs.preflight.CHECKS`) that may fail without stopping the launch."""
    settle: float = SETTLE_SECONDS
    """Seconds a launch watches the started nodes; a node whose run ends in them fails the launch."""
    kind: Kind | None = None
    """None: the job file's `console.kind`, else train. `serve`: a server, `console.serve:`."""
    prompts: tuple[str, ...] = ()
    """A predict job's prompts, over the job file's `console.prompts`."""
    checkpoint: str | None = None
    """A predict job's checkpoint (absolute, on the nodes): rendered into the config's load_checkpoint."""
    max_new_tokens: int | None = None
    """None: the job file's `console.max_new_tokens`, else 64."""


@dataclass(frozen=True)
class PlannedJob:
    """A request resolved on a cluster: what every node will run."""

    request: JobRequest
    plan: JobPlan
    job: JobSpec
    nodes: tuple[NodeSpec, ...]
    port_note: str
    """How the master port was chosen (free on the master, or not checked and why)."""


def plan_job(request: JobRequest, pool: NodePool, *, timeout: float = 20.0) -> PlannedJob:
    """Render, choose the nodes and ask the master for a free port. Raises one of REQUEST_ERRORS."""
    template = str(request.template)
    overrides = request.overrides + checkpoint_override(request.checkpoint)
    text = derive(request.template, overrides)
    job = parse_job(text, template, pool.cluster, pool=pool)
    settings = _settings(request, launch_settings(yaml.safe_load(text), template))
    if settings.kind == "predict":
        check_checkpoint(predict_inputs(text))
    nodes = master_first(pool.cluster.select(request.nodes), request.master)
    wanted, fixed = settings.master_port, request.port is not None
    if settings.kind == "serve":
        engine = engine_for(settings.serve, settings.style or default_style(nodes))
        # MindIE's port is its config.json's: the console cannot move it
        wanted, fixed = serve_port(settings.serve, engine), fixed or engine == "mindie"
    port, note = _master_port(pool, nodes[0], wanted, fixed=fixed, timeout=timeout)
    job_id = job_id_for(request.name or request.template.stem, datetime.now())
    plan = make_plan(pool.cluster, nodes, template=template, overrides=overrides, config_text=text,
                     settings=settings, job_id=job_id, master_port=port)
    return PlannedJob(request, plan, job, tuple(nodes), note)


def master_first(nodes: tuple[NodeSpec, ...], master: str | None) -> tuple[NodeSpec, ...]:
    """`nodes` with `master` first, the rest in their order: make_plan gives the first node node_rank 0."""
    if master is None:
        return nodes
    if master not in {n.name for n in nodes}:
        chosen = nodeset.fold([n.name for n in nodes])
        raise InventoryError([Problem("--master", None, "", f"{master!r} is not one of the nodes chosen "
                                      f"({chosen})")])
    return tuple(sorted(nodes, key=lambda n: n.name != master))


def checkpoint_override(checkpoint: str | None) -> tuple[str, ...]:
    """The `--set` that renders a checkpoint into the config (a JSON string is a YAML string)."""
    return () if checkpoint is None else (f"load_checkpoint={json.dumps(checkpoint)}",)


PREDICT_INPUTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("checkpoint", ("load_checkpoint",)),
    ("pretrained_model_dir", ("pretrained_model_dir",)),
    ("tokenizer", ("processor", "tokenizer", "tokenizer_file")),
    ("tokenizer", ("processor", "tokenizer", "vocab_file")),
)
"""What a predict job reads from the nodes, by the config field that names it."""


def predict_inputs(config_text: str) -> dict[str, str]:
    """The paths a predict job reads (checkpoint, pretrained_model_dir, tokenizer) that its config sets,
    by what they are."""
    try:
        document = yaml.safe_load(config_text)
    except yaml.YAMLError:
        return {}
    found: dict[str, str] = {}
    for role, path in PREDICT_INPUTS:
        value = document
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and value and role not in found:
            found[role] = value
    return found


def check_checkpoint(inputs: dict[str, str]) -> None:
    """A predict job reads a checkpoint (or MindFormers' pretrained_model_dir) at an absolute path: it
    runs in a new job directory of its own."""
    weights = [(role, inputs[role]) for role in ("checkpoint", "pretrained_model_dir") if role in inputs]
    if not weights:
        raise PlanError("a predict job needs a checkpoint: --checkpoint PATH, or load_checkpoint (or "
                        "pretrained_model_dir) in the job file; `ascend-console predict JOB` finds a "
                        "training job's last one")
    for role, path in weights:
        if not posixpath.isabs(path):
            raise PlanError(f"{role} {path!r}: give its absolute path on the nodes (a predict job runs in a "
                            f"new job directory of its own)")


def _settings(request: JobRequest, settings: LaunchSettings) -> LaunchSettings:
    env = {**settings.env, **dict(request.env)}
    check_env(env)
    return replace(settings, style=request.style or settings.style, env=env,
                   master_port=request.port if request.port is not None else settings.master_port,
                   serve=settings.serve if request.port is None else replace(settings.serve,
                                                                             port=request.port),
                   kind=request.kind or settings.kind, prompts=request.prompts or settings.prompts,
                   max_new_tokens=request.max_new_tokens or settings.max_new_tokens)


def _master_port(pool: NodePool, master: NodeSpec, wanted: int, *, fixed: bool,
                 timeout: float) -> tuple[int, str]:
    try:
        check = free_port(pool.transport(master), master.python, wanted, span=1 if fixed else 50,
                          timeout=timeout)
    except OSError as exc:
        return wanted, f"not checked: {master.name} could not be asked ({exc})"
    if check.failure is not None:
        return wanted, f"not checked: {check.failure}"
    if check.port is None:
        return wanted, f"port {wanted}{'' if fixed else ' and the 49 after it'} in use on {master.name}"
    return check.port, f"free on {master.name}" + ("" if check.port == wanted else f" ({wanted} was taken)")
