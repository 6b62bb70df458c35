"""How the headless commands show a distribution: rich progress per node on stderr while it runs,
then a table or a JSON document of what each node received."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn

from console.fittable import Column, FitTable
from console.render import stderr_console
from remote.relayplan import NodeProgress
from remote.transfer import DistributionResult, NodeTransfer, ProgressCallback

STATE_STYLE = {"done": "green", "failed": "red", "sending": "cyan", "verifying": "cyan"}


def _rate(progress: NodeProgress) -> str:
    if progress.state in ("done", "failed") or progress.rate <= 0:
        return ""
    eta = f" · {progress.eta:.0f}s left" if progress.eta is not None else ""
    return f"{progress.rate / 1e6:.1f} MB/s{eta}"


@contextmanager
def progress_display(*, quiet: bool = False) -> Iterator[ProgressCallback]:
    """A callback for `distribute` that draws one bar per node; quiet: draws nothing."""
    if quiet:
        yield lambda _progress: None
        return
    columns = (TextColumn("[bold]{task.description}"), TextColumn("{task.fields[state]}"), BarColumn(),
               DownloadColumn(), TextColumn("{task.fields[rate]}"))
    with Progress(*columns, console=stderr_console(), transient=False) as bars:
        tasks: dict[str, TaskID] = {}

        def show(progress: NodeProgress) -> None:
            if progress.node not in tasks:
                tasks[progress.node] = bars.add_task(escape(progress.node), total=None, state="", rate="")
            style = STATE_STYLE.get(progress.state, "dim")
            state = f"[{style}]{progress.state}[/] from {escape(progress.upstream)}"
            bars.update(tasks[progress.node], completed=progress.bytes_done, total=progress.bytes_total or 1,
                        state=state, rate=_rate(progress))
        yield show


def node_record(node: NodeTransfer) -> dict[str, Any]:
    return {
        "node": node.node, "upstream": node.upstream, "method": node.method, "bytes_sent": node.bytes_sent,
        "files_sent": node.files_sent, "files_skipped": node.files_skipped, "files_resent": node.files_resent,
        "verified": node.verified, "error": node.error, "elapsed": round(node.elapsed, 3),
        "destination": node.destination, "shares": node.shares,
    }


def distribution_document(result: DistributionResult) -> dict[str, Any]:
    return {
        "source": result.source,
        "destination": result.destination,
        "files": len(result.manifest),
        "bytes": result.manifest.total_bytes,
        "console_bytes": result.console_bytes,
        "elapsed": round(result.elapsed, 3),
        "ok": result.ok,
        "nodes": [node_record(n) for n in result.nodes],
    }


DISTRIBUTION_COLUMNS = (Column("node", kind="number"), Column("from", kind="number", drop=1),
                        Column("method", kind="number", drop=2),
                        Column("sent", kind="number", justify="right"),
                        Column("files sent", kind="number", short="files", justify="right"),
                        Column("skipped", kind="number", short="skip", justify="right", drop=3),
                        Column("verified", kind="number", short="ok"), Column("error", kind="path"))
"""An error is moved under the table, whole, when there is no room for it (it was folded to a word a
line); then `skipped`, `method`, `from` go, the last kept longest."""


def print_distribution(console: Console, result: DistributionResult) -> None:
    console.print(f"{escape(result.source)} → {escape(result.destination)}: {len(result.manifest)} files, "
                  f"{result.manifest.total_bytes / 1e6:.1f} MB", soft_wrap=True)
    rows = [[escape(node.node), escape(node.upstream), node.method, f"{node.bytes_sent / 1e6:.1f} MB",
             str(node.files_sent), str(node.files_skipped), _verified(node), escape(node.error or "")]
            for node in result.nodes]
    console.print(FitTable(DISTRIBUTION_COLUMNS, rows))
    console.print(f"{len(result.nodes) - len(result.failed)} of {len(result.nodes)} nodes verified in "
                  f"{result.elapsed:.1f}s; the console host sent {result.console_bytes / 1e6:.1f} MB")
    _print_paths(console, result)


def _verified(node: NodeTransfer) -> str:
    return "[green]yes[/]" if node.verified else "[red]no[/]"


def _print_paths(console: Console, result: DistributionResult) -> None:
    """Where the files are on each node, whole and one a line, when that is not DEST as written (a
    relative DEST is under each node's workdir); nodes sharing a copy say so."""
    if any(n.destination != result.destination for n in result.nodes):
        for node in result.nodes:
            console.print(f"{escape(node.node)}: {escape(node.destination)}", soft_wrap=True)
    for node in (n for n in result.nodes if n.shares):
        console.print(f"{escape(node.node)} shares {escape(node.shares or '')}'s copy: one machine, one "
                      f"directory, sent and verified once")
