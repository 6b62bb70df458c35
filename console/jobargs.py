"""Arguments the job-config commands share: overrides, the devices a job is checked against, and the
job a plan, preflight or launch asks for (read into a typed `JobRequest`, here and nowhere else)."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from pathlib import Path

from console import exitcodes
from console.arguments import positive_int
from console.jobs.plan import KINDS, STYLES, PlanError
from console.jobs.request import REQUEST_ERRORS, SETTLE_SECONDS, JobRequest, PlannedJob, plan_job
from console.render import print_error
from model.config import JobSpec
from model.validate import ConfigProblem
from remote import nodeset
from remote.inventory import Cluster
from remote.paths import dataset_files, missing_paths
from remote.pool import NodePool


def add_layout_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", action="append", metavar="PATH=VALUE",
                        help="override a field by its dotted path, e.g. model.model_config.num_layers=3 "
                             "(repeatable)")
    parser.add_argument("--nodes", type=positive_int, metavar="N",
                        help="servers the job runs on (default: the cluster's node count)")
    parser.add_argument("--devices-per-node", type=positive_int, metavar="N",
                        help="NPUs per server (default: the cluster's `devices`)")


def job_layout(args: argparse.Namespace, cluster: Cluster) -> tuple[int, int]:
    """(servers, devices per server) the job is judged against."""
    nodes = args.nodes or len(cluster.nodes)
    per_node = args.devices_per_node or min(n.devices for n in cluster.nodes)
    return nodes, per_node


def add_path_check_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check-paths", action="store_true",
                        help="also check on every node of the cluster that the dataset and "
                             "checkpoint paths exist")


def path_problems(job: JobSpec, cluster: Cluster) -> list[ConfigProblem]:
    """The job's dataset files and checkpoint, looked for on every node of the cluster."""
    wanted = dataset_files(job.training.data_prefixes)
    if job.training.load_checkpoint:
        wanted.append(job.training.load_checkpoint)
    with NodePool(cluster) as pool:
        missing = missing_paths(pool, cluster.nodes, wanted)
    return [
        ConfigProblem(
            _field_for(job, item.path), "error",
            f"{item.path} {'could not be checked' if item.unchecked else 'is missing'} on "
            f"{nodeset.fold(item.nodes)}")
        for item in missing
    ]


def _field_for(job: JobSpec, path: str) -> str:
    field = "training.load_checkpoint" if path == job.training.load_checkpoint else "training.data_path"
    location = job.location(field)
    return location.path if location else field


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("template", type=Path, help="the job config (MindFormers YAML)")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                        help="override a field of the job config (repeatable)")
    parser.add_argument("--nodes", metavar="SET", help="node set to run on (default: every node)")
    parser.add_argument("--master", metavar="NODE",
                        help="the node that is node_rank 0, its cluster_ip the master address (default: the "
                             "first of --nodes in cluster order)")
    parser.add_argument("--style", choices=STYLES,
                        help="model: this project's model/train.py; mindformers: MindFormers' launcher; "
                             "msrun: msrun around console.script (default: the job file's, else model on "
                             "CPU clusters, mindformers on NPU ones)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="export this in every rank's environment (repeatable)")
    parser.add_argument("--port", type=int,
                        help="msrun master port, or a serve job's server port (default: the job file's, "
                             "else 8118 / 8000, the next free one if taken)")
    parser.add_argument("--name", help="job name (default: the template's file name)")
    parser.add_argument("--kind", choices=KINDS,
                        help="train; predict: answer prompts from a checkpoint; serve: a server on the "
                             "nodes, console.serve: in the job file (default: the job file's console.kind, "
                             "else train)")
    parser.add_argument("--checkpoint", metavar="PATH",
                        help="predict: the checkpoint, absolute on the nodes (rendered into the config's "
                             "load_checkpoint and checked on every node in preflight)")
    add_prompt_arguments(parser)


def add_prompt_arguments(parser: argparse.ArgumentParser) -> None:
    """What a predict job is asked (`launch --kind predict`, and `predict JOB`)."""
    parser.add_argument("--prompt", action="append", default=[], metavar="TEXT",
                        help="predict: a prompt to continue (repeatable)")
    parser.add_argument("--prompts", type=Path, metavar="FILE",
                        help="predict: a file of prompts, one a line (after any --prompt)")
    parser.add_argument("--max-new-tokens", type=positive_int, metavar="N",
                        help="predict: tokens generated a prompt (default: the job file's, else 64)")


def prompts_asked(args: argparse.Namespace) -> tuple[str, ...]:
    """--prompt texts, then the --prompts file's lines (blank ones skipped). Raises PlanError for a file
    that cannot be read."""
    prompts = list(args.prompt)
    if args.prompts is not None:
        try:
            text = args.prompts.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PlanError(f"--prompts {args.prompts}: cannot read it ({exc})") from exc
        prompts += [line for line in text.splitlines() if line.strip()]
    return tuple(prompts)


def job_request(args: argparse.Namespace, *, force: Iterable[str] = (),
                settle: float = SETTLE_SECONDS) -> JobRequest:
    """The job the command line asks for (`add_job_arguments`). Raises PlanError for a bad --env."""
    return JobRequest(template=args.template, overrides=tuple(args.set), nodes=args.nodes, master=args.master,
                      style=args.style, env=environment(args.env), port=args.port, name=args.name,
                      force=frozenset(force), settle=settle, kind=args.kind, prompts=prompts_asked(args),
                      checkpoint=args.checkpoint, max_new_tokens=args.max_new_tokens)


def environment(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise PlanError(f"--env {item!r}: expected NAME=VALUE")
        pairs.append((name, value))
    return tuple(pairs)


def planned_or_exit_code(args: argparse.Namespace, pool: NodePool, *, force: Iterable[str] = (),
                         settle: float = SETTLE_SECONDS) -> PlannedJob | int:
    """The plan the command line asks for, or (said on stderr) the exit code for why there is none."""
    try:
        return plan_job(job_request(args, force=force, settle=settle), pool)
    except REQUEST_ERRORS as exc:
        return report_request_error(exc)


def report_request_error(exc: Exception) -> int:
    """Print why a job could not be planned, file and line first; the exit code to return."""
    for line in exitcodes.messages(exc):
        print_error(line)
    return exitcodes.code_for(exc)
