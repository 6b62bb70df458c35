"""`ascend-console distribute SRC DEST`: a directory to the same path on many nodes, verified."""

from __future__ import annotations

import argparse

from console import exitcodes
from console.arguments import positive_int
from console.render import print_error, print_json, stdout_console
from console.transferview import distribution_document, print_distribution, progress_display
from remote.inventory import Cluster, InventoryError, NodeSpec
from remote.pool import NodePool
from remote.transfer import DistributionError, DistributionResult, TransferOptions, distribute

HELP = "copy a directory (weights, a dataset) to the same path on many nodes, verified by SHA-256"


def add_transfer_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `distribute` and `fetch-weights` share."""
    parser.add_argument("--nodes", metavar="SET",
                        help="node set, e.g. 'node[0-3],node7' or 'node*' (default: every node)")
    parser.add_argument("--no-relay", action="store_true",
                        help="every node receives from the source itself, none from another node")
    parser.add_argument("--bwlimit", type=positive_int, metavar="KIB",
                        help="cap each rsync stream at KIB KiB/s")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SRC",
                        help="a local directory or file (or, with --from-node, a directory on that node, "
                             "relative: under its workdir)")
    parser.add_argument("destination", metavar="DEST",
                        help="the directory on every node (relative: under each node's workdir)")
    parser.add_argument("--from-node", metavar="NODE",
                        help="SRC is on this node: it sends, the console's link carries nothing")
    add_transfer_arguments(parser)


def transfer_options(args: argparse.Namespace) -> TransferOptions:
    return TransferOptions(relay=not args.no_relay, bwlimit_kib=args.bwlimit)


def report(args: argparse.Namespace, result: DistributionResult) -> int:
    if args.json:
        print_json(distribution_document(result))
    else:
        print_distribution(stdout_console(), result)
    return exitcodes.OK if result.ok else exitcodes.NODE_FAILED


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    nodes = cluster.select(args.nodes)
    origin = _origin(cluster, args.from_node)
    with NodePool(cluster) as pool, progress_display(quiet=args.json) as show:
        try:
            result = distribute(pool, nodes, args.source, args.destination, from_node=origin,
                                options=transfer_options(args), on_progress=show)
        except DistributionError as exc:
            print_error(str(exc))
            return exitcodes.USAGE if origin is None else exitcodes.NODE_FAILED
    return report(args, result)


def _origin(cluster: Cluster, name: str | None) -> NodeSpec | None:
    """The node --from-node names: one the cluster file lacks is a mistake on the command line."""
    if name is None:
        return None
    try:
        return cluster.node(name)
    except InventoryError as exc:
        raise exitcodes.UsageError(f"--from-node: {exc.problems[0].message}") from exc
