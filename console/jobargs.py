"""Arguments the job-config commands share: overrides, and the devices a job is checked against."""

from __future__ import annotations

import argparse

from console.arguments import positive_int
from remote.inventory import Cluster


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
