"""`ascend-console`: the headless commands. Each is a thin layer over remote/ and model/."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from console import exitcodes
from console.commands import check, nodes, run, trust
from remote.inventory import Cluster, InventoryError, default_cluster_path, load_cluster

COMMANDS = {
    "run": run,
    "check": check,
    "trust": trust,
    "nodes": nodes,
}


class _Parser(argparse.ArgumentParser):
    """Usage errors exit with EX_USAGE, not argparse's 2, which means "a node failed" here."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(exitcodes.USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ascend-console",
        description="Train and serve DeepSeek-V3-class models with MindSpore on Ascend clusters.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in COMMANDS.items():
        sub = commands.add_parser(name, help=module.HELP, description=module.HELP)
        sub.add_argument(
            "-c", "--cluster", type=Path, metavar="FILE",
            help="cluster file (default: $ASCEND_CONSOLE_CLUSTER, "
                 "~/.config/ascend-console/cluster.yaml, else the embedded local cluster)",
        )
        module.add_arguments(sub)
    return parser


def load_cluster_arg(path: Path | None) -> Cluster:
    return load_cluster(path if path is not None else default_cluster_path())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return exitcodes.OK
    try:
        cluster = load_cluster_arg(args.cluster)
        code: int = COMMANDS[args.command].execute(args, cluster)
    except InventoryError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return exitcodes.CONFIG
    except exitcodes.UsageError as exc:
        print(f"ascend-console {args.command}: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exitcodes.INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
