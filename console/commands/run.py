"""`ascend-console run`: one command on many nodes, pdsh-style or folded like clubak."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator

from rich.console import Console

from console import exitcodes
from console.arguments import positive_int, positive_seconds
from console.render import (
    print_folded,
    print_json,
    print_labelled,
    print_summary,
    result_record,
    stderr_console,
    stdout_console,
)
from remote.fanout import FanoutResult, collect, fan_out, fold_outputs
from remote.inventory import Cluster
from remote.pool import NodePool
from remote.transport import RunResult, command_text

HELP = "run a command on many nodes at once"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", metavar="SET",
                        help="node set, e.g. 'node[0-3],node7' or 'node*' (default: every node)")
    parser.add_argument("--fold", action="store_true",
                        help="print each distinct output once, under the node set that printed it")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--timeout", type=positive_seconds, metavar="SECONDS",
                        help="per node; the command is killed when it expires "
                             "(default: the node's command_timeout)")
    parser.add_argument("--fanout", type=positive_int, metavar="N",
                        help="nodes contacted at once (default: the cluster's fanout, 64)")
    parser.add_argument("--sh", metavar="LINE",
                        help="a shell line run with `sh -c LINE` on each node (for pipes and globs)")
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD [ARG ...]",
                        help="the command and its arguments, passed verbatim (each one quoted)")


def command_argv(args: argparse.Namespace) -> list[str]:
    argv = list(args.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if args.sh is not None and argv:
        raise exitcodes.UsageError("give either --sh LINE or -- CMD, not both")
    if args.sh is not None:
        return ["sh", "-c", args.sh]
    if not argv:
        raise exitcodes.UsageError("nothing to run; e.g. ascend-console run -- hostname")
    return argv


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    argv = command_argv(args)
    nodes = cluster.select(args.nodes)
    started = time.monotonic()
    out, err = stdout_console(), stderr_console()
    width = max(len(n.name) for n in nodes)
    with NodePool(cluster, workers=args.fanout) as pool:
        arrivals = fan_out(pool, nodes, argv, timeout=args.timeout)
        if args.json or args.fold:
            with err.status(f"running on {len(nodes)} nodes…"):
                outcome = collect(arrivals, nodes, started)
        else:
            outcome = collect(_print_as_they_come(arrivals, out, width), nodes, started)
    if args.json:
        print_json({
            "cluster": cluster.name,
            "command": command_text(argv),
            "results": [result_record(r) for r in outcome.results],
            "summary": outcome.summary(),
        })
    else:
        if args.fold:
            print_folded(out, fold_outputs(outcome.results))
        print_summary(err, outcome)
    return exit_code(outcome)


def _print_as_they_come(arrivals: Iterator[RunResult], out: Console, width: int) -> Iterator[RunResult]:
    for result in arrivals:
        print_labelled(out, result, width)
        yield result


def exit_code(outcome: FanoutResult) -> int:
    if outcome.unreachable or outcome.timed_out:
        return exitcodes.UNREACHABLE
    return exitcodes.NODE_FAILED if outcome.failed else exitcodes.OK
