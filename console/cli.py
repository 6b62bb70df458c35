"""`ascend-console`: the headless commands. Each is a thin layer over remote/ and model/."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from console import exitcodes
from console.arguments import positive_seconds
from console.commands import (
    bench_serve,
    chat,
    check,
    data,
    demo,
    derive,
    distribute,
    estimate,
    fetch_weights,
    forward,
    launch,
    logs,
    nodes,
    plan,
    predict,
    preflight,
    run,
    stop,
    trust,
    wizard,
)
from console.commands import job as job_command
from console.commands import jobs as jobs_command
from console.commands import status as status_command
from console.debuglog import configure_logging
from console.render import print_error
from model.yamlsource import SourceError
from remote.inventory import Cluster, default_cluster_path, load_cluster

if TYPE_CHECKING:
    from console.jobs.demo import DemoOptions
    from console.serving.conversation import ChatSettings

COMMANDS = {
    "run": run,
    "check": check,
    "demo": demo,
    "trust": trust,
    "nodes": nodes,
    "derive": derive,
    "estimate": estimate,
    "data": data,
    "distribute": distribute,
    "fetch-weights": fetch_weights,
    "plan": plan,
    "preflight": preflight,
    "launch": launch,
    "predict": predict,
    "jobs": jobs_command,
    "status": status_command,
    "logs": logs,
    "job": job_command,
    "stop": stop,
    "forward": forward,
    "wizard": wizard,
    "chat": chat,
    "bench-serve": bench_serve,
}


class _Parser(argparse.ArgumentParser):
    """Usage errors exit with EX_USAGE, not argparse's 2, which means "a node failed" here."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print_error(message)
        sys.exit(exitcodes.USAGE)


DEBUG_HELP = ("libraries' log records (paramiko's SSH handshakes...) at debug level on stderr too; "
              "they always go to console.log in the state directory (warnings and errors only, "
              "without --debug), never raw onto the screen")
CLUSTER_HELP = ("cluster file (default: $ASCEND_CONSOLE_CLUSTER, "
                "~/.config/ascend-console/cluster.yaml, else the embedded local cluster)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ascend-console",
        description="Train and serve DeepSeek-V3-class models with MindSpore on Ascend clusters. "
                    "Without a command: the live dashboard.",
    )
    parser.add_argument("-c", "--cluster", type=Path, metavar="FILE", help=CLUSTER_HELP)
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    parser.add_argument("--refresh", type=positive_seconds, default=5.0, metavar="SECONDS",
                        help="dashboard: check every node every SECONDS (default: 5)")
    parser.add_argument("--timeout", type=positive_seconds, default=15.0, metavar="SECONDS",
                        help="dashboard: give up on a node's check after SECONDS (default: 15)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in COMMANDS.items():
        sub = commands.add_parser(name, help=module.HELP, description=module.HELP)
        # SUPPRESS: a -c given before the command is not reset by the subcommand's default
        sub.add_argument("-c", "--cluster", type=Path, metavar="FILE", default=argparse.SUPPRESS,
                         help=CLUSTER_HELP)
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
        module.add_arguments(sub)
    return parser


def load_cluster_arg(path: Path | None) -> Cluster:
    return load_cluster(path if path is not None else default_cluster_path())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # before any node is contacted: paramiko's thread would otherwise print its tracebacks raw
    configure_logging(debug=args.debug, stderr=True)
    try:
        cluster = load_cluster_arg(args.cluster)
        if args.command is None:
            return run_dashboard(args, cluster)
        code: int = COMMANDS[args.command].execute(args, cluster)
    except (SourceError, exitcodes.UsageError) as exc:  # a cluster file, --nodes, a clashing option
        for line in exitcodes.messages(exc):
            print_error(line)
        return exitcodes.code_for(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exitcodes.INTERRUPTED
    except BrokenPipeError:
        # the reader of our output went away (`logs --follow | head`): no traceback, and none at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return exitcodes.INTERRUPTED
    return code


def run_dashboard(args: argparse.Namespace, cluster: Cluster, *, mode: str = "health",
                  job_id: str | None = None, demo: DemoOptions | None = None,
                  chat: ChatSettings | None = None) -> int:
    """The Textual app on the cluster (on `job_id`'s screen, or the chat pane, if given); it closes
    what it opened."""
    from console.app import AscendConsole
    from console.services import ConsoleServices

    configure_logging(debug=args.debug, stderr=False)  # the terminal is the screen now: the log file only
    services = ConsoleServices.for_cluster(cluster, refresh=args.refresh, timeout=args.timeout)
    try:
        AscendConsole(services, mode=mode, job_id=job_id, demo=demo, chat=chat).run()
    finally:
        services.close()
    return exitcodes.OK


if __name__ == "__main__":
    sys.exit(main())
