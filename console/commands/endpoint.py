"""What `chat` and `bench-serve` talk to: `--url URL`, or a serve job named by id, prefix or name, reached
through its node's transport (a port forward held for the command's life; nothing opened to the network).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rich.markup import escape

from console import exitcodes
from console.arguments import endpoint_url
from console.commands.jobs import named_job_and_cluster, with_store
from console.jobs.endpoint import NotServing, endpoint_for
from console.render import print_error, stderr_console
from console.store import Store
from remote.inventory import Cluster
from remote.pool import NodePool

Work = Callable[[str], int]
"""What a command does with the URL it was given or that reaches the job's server."""


def add_target_arguments(parser: argparse.ArgumentParser, *, url_help: str) -> None:
    parser.add_argument("job", nargs="?", metavar="JOB",
                        help="a serve job (id, id prefix or name): its server through a port forward")
    parser.add_argument("--url", type=endpoint_url, metavar="URL", help=url_help)


def with_target(args: argparse.Namespace, cluster: Cluster, command: str, work: Work) -> int:
    """`work` on `--url`, or on a URL reaching the serve job's server for as long as it runs."""
    if (args.job is None) == (args.url is None):
        raise exitcodes.UsageError(f"{command} needs a serve job or --url URL (one of them)")
    if args.url is not None:
        return work(args.url)

    def on_job(store: Store, _args: argparse.Namespace, nodes_of: Cluster) -> int:
        found = named_job_and_cluster(store, args.job, command, nodes_of)
        if isinstance(found, int):
            return found
        job, nodes = found
        with NodePool(nodes) as pool:
            try:
                with endpoint_for(job, pool, on_failure=not_carried) as url:
                    return work(url)
            except NotServing as exc:
                print_error(str(exc))
                return exitcodes.USAGE
    return with_store(on_job, args, cluster)


def not_carried(reason: str) -> None:
    stderr_console().print(f"[yellow]a connection was not carried[/]: {escape(reason)}")
