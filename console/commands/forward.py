"""`ascend-console forward JOB [--local-port P]`: hold a port forward to a serve job's server in the
foreground and print the local URL, as `kubectl port-forward` does; Ctrl-C ends it.

The forward listens on this machine's 127.0.0.1 only and is carried over the server node's SSH
connection (through its bastion when it has one); a server on a local node is printed as it is."""

from __future__ import annotations

import argparse
import threading

from rich.markup import escape

from console import exitcodes
from console.commands.endpoint import not_carried
from console.commands.jobs import named_job_and_cluster, with_store
from console.jobs.endpoint import NotServing, endpoint_for
from console.render import print_error, stderr_console
from console.store import Store
from remote.inventory import Cluster
from remote.pool import NodePool

HELP = "hold a port forward to a serve job's server here and print its local URL (Ctrl-C ends it)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB",
                        help="the serve job: its id, a unique prefix of it, or its name")
    parser.add_argument("--local-port", type=int, default=0, metavar="P",
                        help="listen on 127.0.0.1:P here (default: a free port)")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    return with_store(hold_forward, args, cluster)


def hold_forward(store: Store, args: argparse.Namespace, cluster: Cluster) -> int:
    err = stderr_console()
    found = named_job_and_cluster(store, args.job, "forward", cluster)
    if isinstance(found, int):
        return found
    job, job_nodes = found
    with NodePool(job_nodes) as pool:
        try:
            with endpoint_for(job, pool, local_port=args.local_port, on_failure=not_carried) as url:
                print(url, flush=True)
                err.print(f"forwarding to {escape(job.id)}'s server; Ctrl-C ends it")
                _wait_for_interrupt()
        except NotServing as exc:
            print_error(str(exc))
            return exitcodes.USAGE
        except OSError as exc:
            print_error(f"cannot listen on 127.0.0.1:{args.local_port}: {exc}")
            return exitcodes.USAGE
    return exitcodes.OK


def _wait_for_interrupt() -> None:
    """Until Ctrl-C (the forward's threads do the work)."""
    stop = threading.Event()
    try:
        while not stop.wait(3600):
            pass
    except KeyboardInterrupt:
        stderr_console().print("forward closed")
