"""From a command line's job arguments to a plan: template + overrides rendered, the nodes chosen,
the launch style settled, a free master port found. Shared by plan, preflight and launch."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import yaml
from rich.markup import escape

from console import exitcodes
from console.jobs.plan import (
    STYLES,
    JobPlan,
    LaunchSettings,
    PlanError,
    check_env,
    job_id_for,
    launch_settings,
    make_plan,
)
from console.render import stderr_console
from model.config import JobSpec, parse_spec
from model.overrides import derive
from model.yamlsource import SourceError
from remote.inventory import Cluster, InventoryError, NodeSpec
from remote.launch import free_port
from remote.pool import NodePool


@dataclass(frozen=True)
class JobRequest:
    plan: JobPlan
    job: JobSpec
    nodes: tuple[NodeSpec, ...]
    port_note: str
    """How the master port was chosen (free on the master, or not checked and why)."""


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("template", type=Path, help="the job config (MindFormers YAML)")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                        help="override a field of the job config (repeatable)")
    parser.add_argument("--nodes", metavar="SET", help="node set to run on (default: every node)")
    parser.add_argument("--style", choices=STYLES,
                        help="model: this project's model/train.py; mindformers: MindFormers' launcher; "
                             "msrun: msrun around console.script (default: the job file's, else model on "
                             "CPU clusters, mindformers on NPU ones)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="export this in every rank's environment (repeatable)")
    parser.add_argument("--port", type=int, help="msrun master port (default: the job file's or 8118, "
                                                 "the next free one if taken)")
    parser.add_argument("--name", help="job name (default: the template's file name)")


def build_request(args: argparse.Namespace, cluster: Cluster, pool: NodePool, *,
                  timeout: float = 20.0) -> JobRequest:
    """Raises SourceError (config), PlanError (layout) or ValueError (arguments)."""
    text = derive(args.template, args.set)
    job = parse_spec(text, str(args.template))
    settings = _settings(args, launch_settings(yaml.safe_load(text), str(args.template)))
    nodes = cluster.select(args.nodes)
    port, note = _master_port(pool, nodes[0], settings.master_port, fixed=args.port is not None,
                              timeout=timeout)
    job_id = job_id_for(args.name or args.template.stem, datetime.now())
    plan = make_plan(cluster, nodes, template=str(args.template), overrides=args.set, config_text=text,
                     settings=settings, job_id=job_id, master_port=port)
    return JobRequest(plan, job, tuple(nodes), note)


def _settings(args: argparse.Namespace, settings: LaunchSettings) -> LaunchSettings:
    env = dict(settings.env)
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise PlanError(f"--env {item!r}: expected NAME=VALUE")
        env[name] = value
    check_env(env)
    return replace(settings, style=args.style or settings.style, env=env,
                   master_port=args.port if args.port is not None else settings.master_port)


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


def report_request_error(exc: Exception) -> int:
    """Print why a job could not be planned, file and line first; the exit code to return."""
    err = stderr_console()
    if isinstance(exc, SourceError):
        for problem in exc.problems:
            err.print(f"[red]error[/]: {escape(str(problem))}")
        return exitcodes.CONFIG
    if isinstance(exc, InventoryError):
        for problem in exc.problems:
            err.print(f"[red]error[/]: {escape(str(problem))}")
        return exitcodes.USAGE
    err.print(f"[red]error[/]: {escape(str(exc))}")
    return exitcodes.CONFIG


REQUEST_ERRORS = (SourceError, PlanError, InventoryError)


def request_or_exit_code(args: argparse.Namespace, cluster: Cluster, pool: NodePool) -> JobRequest | int:
    """The plan the command line asks for, or (said on stderr) the exit code for why there is none."""
    try:
        return build_request(args, cluster, pool)
    except REQUEST_ERRORS as exc:
        return report_request_error(exc)
