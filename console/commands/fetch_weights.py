"""`ascend-console fetch-weights REPO_ID DEST`: a hub download on one node, then node to node."""

from __future__ import annotations

import argparse
import os

from rich.markup import escape

from console import exitcodes
from console.commands.distribute import add_transfer_arguments, report, transfer_options
from console.render import print_error, stderr_console
from console.transferview import progress_display
from remote.hub import ENDPOINT_ENV, HubError, download
from remote.inventory import Cluster
from remote.pool import NodePool
from remote.transfer import DistributionError, distribute

HELP = "download weights with openmind_hub on the first node, then copy them to the others"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo_id", metavar="REPO_ID", help="e.g. MindSpore-Lab/DeepSeek-V3")
    parser.add_argument("destination", metavar="DEST",
                        help="the directory on every node (relative: under each node's workdir)")
    parser.add_argument("--endpoint", metavar="URL", default=os.environ.get(ENDPOINT_ENV),
                        help=f"hub or mirror (https://); default: ${ENDPOINT_ENV} here, else the node's")
    add_transfer_arguments(parser)


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    first, *others = cluster.select(args.nodes)
    err = stderr_console()
    with NodePool(cluster) as pool:
        try:
            with err.status(f"downloading {escape(args.repo_id)} on {escape(first.name)}…"):
                path = download(pool, first, args.repo_id, args.destination, endpoint=args.endpoint)
            err.print(f"downloaded {escape(args.repo_id)} to {escape(first.name)}:{escape(path)}")
            if not others:
                return exitcodes.OK
            with progress_display(quiet=args.json) as show:
                result = distribute(pool, others, args.destination, args.destination, from_node=first,
                                    options=transfer_options(args), on_progress=show)
        except (HubError, DistributionError) as exc:
            print_error(str(exc))
            return exitcodes.NODE_FAILED
    return report(args, result)
