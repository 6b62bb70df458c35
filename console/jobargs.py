"""Arguments the job-config commands share: overrides, and the devices a job is checked against."""

from __future__ import annotations

import argparse

from console.arguments import positive_int
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
