"""`ascend-console wizard`: the TUI, opened on the launch wizard (kind, template, fields, data, nodes,
review, launch)."""

from __future__ import annotations

import argparse

from remote.inventory import Cluster

HELP = "open the console on the launch wizard: build a job step by step, review its plan, launch it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options: the cluster (-c) is the wizard's only input


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    from console.cli import run_dashboard

    return run_dashboard(args, cluster, mode="wizard")
