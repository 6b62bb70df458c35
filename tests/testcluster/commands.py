"""Running the tools the cluster is built with: every run bounded, every failure a ClusterError."""

from __future__ import annotations

import subprocess
from pathlib import Path

COMMAND_TIMEOUT = 30.0


class ClusterError(RuntimeError):
    """The test cluster could not be built or driven; the message says which step and why."""


def run_parallel(commands: list[list[str]], what: str) -> None:
    procs = [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for argv in commands]
    errors = []
    for argv, proc in zip(commands, procs, strict=True):
        try:
            out, _ = proc.communicate(timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        if proc.returncode != 0:
            errors.append(f"{' '.join(argv)}: exit {proc.returncode}: {out.strip()}")
    if errors:
        raise ClusterError(f"could not {what}:\n" + "\n".join(errors))


def tail(path: Path, lines: int = 20) -> str:
    """The end of a log, for an error message; never raises."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(cannot read {path}: {error})"
