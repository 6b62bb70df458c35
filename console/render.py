"""Text and JSON renderings of remote results for the headless commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from remote import nodeset
from remote.fanout import FanoutResult, OutputGroup
from remote.transport import RunResult

STATUS_STYLE = {
    "ok": "green",
    "failed": "yellow",
    "timeout": "magenta",
    "unreachable": "red",
    "auth": "red",
    "host-key": "bold red",
    "io": "red",
}


def stdout_console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_error(message: str) -> None:
    """`error: MESSAGE` on stderr: how every command says what went wrong (plain text, not markup)."""
    stderr_console().print(Text.assemble(("error", "red"), ": ", message))


def print_warning(message: str) -> None:
    """`warning: MESSAGE` on stderr: how every command says what may be wrong."""
    stderr_console().print(Text.assemble(("warning", "yellow"), ": ", message))


def result_record(result: RunResult) -> dict[str, Any]:
    return {
        "node": result.node,
        "status": result.status,
        "exit_code": result.exit_code,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "elapsed": round(result.elapsed, 3),
        "error": result.error.value if result.error else None,
        "message": result.message,
    }


def print_json(document: dict[str, Any]) -> None:
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


def print_labelled(console: Console, result: RunResult, width: int) -> None:
    """pdsh style: every output line behind its node's name."""
    label = f"{result.node:<{width}}"
    for line in result.stdout.splitlines():
        console.print(Text.assemble((label, "cyan"), ": ", line))
    for line in result.stderr.splitlines():
        console.print(Text.assemble((label, "cyan"), (" ! ", "yellow"), line))
    if not result.ok:
        style = STATUS_STYLE.get(result.status, "red")
        console.print(Text.assemble((label, "cyan"), ": ", (_ending(result), style)))


def print_folded(console: Console, groups: Sequence[OutputGroup]) -> None:
    """clubak style: each distinct output once, headed by the node set that printed it."""
    for group in groups:
        head = f"{group.label} ({len(group.nodes)})"
        rule = "-" * min(max(len(head), 15), 78)
        console.print(rule, style="dim")
        console.print(Text(head, style="bold cyan"))
        console.print(rule, style="dim")
        if group.stdout:
            console.print(Text(group.stdout.rstrip("\n")))
        if group.stderr:
            console.print(Text(group.stderr.rstrip("\n"), style="yellow"))
        if group.status != "ok":
            ending = f"exit {group.exit_code}" if group.status == "failed" else group.status
            console.print(Text(ending, style=STATUS_STYLE.get(group.status, "red")))


def print_summary(console: Console, outcome: FanoutResult) -> None:
    counts = outcome.summary()
    parts = [f"[green]{counts['ok']} ok[/]"]
    for key, style in (("failed", "yellow"), ("timed_out", "magenta"), ("unreachable", "red")):
        if counts[key]:
            parts.append(f"[{style}]{counts[key]} {key.replace('_', ' ')}[/]")
    console.print(f"{' · '.join(parts)} of {counts['nodes']} nodes in {outcome.elapsed:.2f}s")
    for result in outcome.unreachable + outcome.timed_out:
        console.print(f"  [red]{escape(result.node)}[/]: {escape(result.message)}")
    failed = [r.node for r in outcome.failed]
    if failed:
        console.print(f"  [yellow]non-zero exit[/]: {escape(nodeset.fold(failed))}")


def _ending(result: RunResult) -> str:
    if result.error is None:
        return f"exit {result.exit_code}"
    return f"{result.status}: {result.message}"
