"""Consoles to kill: the command line run as a separate process on two local nodes of a cluster of its
own, with ranks that are shell processes (a stand-in `msrun` that sleeps, carrying the job's marker as
launch.sh gives it), so that a launch takes a second or two and a stop as long as its grace.

A console is stopped at a known point without any hook in the console: the tools its node scripts run
(`tar` while staging, `date` while starting and stopping, `head` reading a job's state files, `ls`
listing a checkpoint) are found first on PATH in a directory of stand-ins that pass through to the real
tool, except when the test has asked that one block (the stand-in then waits, its pid written down,
until the test either lets it go on or kills its process group: the node's script with it, as a link
dying with the console would end it)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml

from console.records import JobRecord
from console.store import Store
from tests.handjobs import marked
from tests.rank_jobs import REPO, TINY_LOCAL

NODES = ("n0", "n1")
WAIT = 60.0

RANK = """#!/bin/sh
# stands in for msrun: one "rank" that sleeps, with the job's marker (launch.sh exported it)
echo "msrun stand-in: $*"
mkdir -p output/checkpoint/rank_0   # where a stop looks for the checkpoint rank 0 saved
{trap}exec sleep 900
"""

STAND_IN = r"""#!/bin/sh
# a stand-in for the real tool of this name: blocks when the test asked (a pattern in $BLOCKS/<tool>.when
# found in "$PWD $*") until it is asked no more, then (or at once) runs the real one (the next on PATH)
tool=$(basename "$0")
if [ -f "$BLOCKS/$tool.when" ]; then
    pattern=$(cat "$BLOCKS/$tool.when")
    case "$PWD $*" in
        *"$pattern"*)
            echo $$ > "$BLOCKS/$tool.$$.blocked"
            while [ -f "$BLOCKS/$tool.when" ]; do sleep 0.05; done
            rm -f "$BLOCKS/$tool.$$.blocked" ;;
    esac
fi
PATH=${PATH#*:}
exec "$tool" "$@"
"""

T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], *, within: float = WAIT) -> T:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {within:g} s: {what}")


class Site:
    """Two local nodes, a job file for them, and the consoles' shared state directory."""

    def __init__(self, root: Path, *, ranks_ignore_term: bool = False) -> None:
        self.root = root
        self.state = root / "state"
        self.blocks = root / "blocks"
        bin_dir, stand_ins = root / "bin", root / "stand-ins"
        for directory in (bin_dir, stand_ins, self.blocks):
            directory.mkdir(parents=True)
        # the nodes' python: launch.sh puts its directory first on PATH, so `msrun` there is the stand-in
        _script(bin_dir / "python", f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
        _script(bin_dir / "msrun", RANK.format(trap="trap '' TERM\n" if ranks_ignore_term else ""))
        for tool in ("tar", "date", "ls", "head"):
            _script(stand_ins / tool, STAND_IN)
        self.cluster = root / "cluster.yaml"
        self.cluster.write_text(yaml.safe_dump({
            "name": "killed", "health": {"disk_free_gb": 1},
            "defaults": {"transport": "local", "devices": 1, "command_timeout": 60,
                         "python": str(bin_dir / "python")},
            # two addresses: two msruns, so each node is staged and started on its own
            "nodes": [{"name": name, "workdir": str(root / name), "cluster_ip": f"127.0.0.{index + 1}"}
                      for index, name in enumerate(NODES)]}))
        self.job = root / "job.yaml"
        self.job.write_text(TINY_LOCAL.read_text() + "\nconsole:\n  launch: msrun\n  script: train.py\n")
        self.env = {**os.environ, "ASCEND_CONSOLE_STATE": str(self.state), "BLOCKS": str(self.blocks),
                    "PATH": f"{stand_ins}{os.pathsep}{os.environ.get('PATH', '')}"}

    # consoles --------------------------------------------------------------------------------------

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "console.cli", "-c", str(self.cluster), *args]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), cwd=REPO, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(*args), cwd=REPO, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def kill(self, console: subprocess.Popen[str], *, with_sessions: bool) -> None:
        """SIGKILL the console; `with_sessions`: its node scripts too (their process groups), as when
        the machine it ran on dies, its links with it. Reaped, so its pid is gone."""
        sessions = _children(console.pid) if with_sessions else []
        console.kill()
        console.communicate()
        for pid in sessions:
            _kill_group(pid)

    # blocking a node's tool ------------------------------------------------------------------------

    def block(self, tool: str, pattern: str) -> None:
        """The next `tool` run with `pattern` in its directory or arguments blocks."""
        (self.blocks / f"{tool}.when").write_text(pattern)

    def blocked(self, tool: str) -> list[int]:
        return [int(p.name.split(".")[1]) for p in self.blocks.glob(f"{tool}.*.blocked")]

    def resume(self, tool: str) -> None:
        """No more blocking: the blocked stand-ins go on, running the real tool."""
        (self.blocks / f"{tool}.when").unlink(missing_ok=True)

    def release(self, tool: str) -> None:
        """No more blocking; every blocked stand-in killed with its process group (the node's script)."""
        (self.blocks / f"{tool}.when").unlink(missing_ok=True)
        for path in self.blocks.glob(f"{tool}.*.blocked"):
            _kill_group(int(path.name.split(".")[1]))
            path.unlink()

    # what is where ---------------------------------------------------------------------------------

    def job_dir(self, node: str, job_id: str) -> Path:
        return self.root / node / "jobs" / job_id

    def the_job(self) -> JobRecord | None:
        if not (self.state / "console.db").exists():
            return None
        with Store(self.state / "console.db") as store:
            jobs = store.jobs()
        return jobs[0] if jobs else None

    def left_running(self, job_id: str) -> dict[str, list[int]]:
        """Processes carrying the job's marker, by node (none: nothing orphaned)."""
        return {node: found for node in NODES if (found := marked(job_id, node))}

    def stop_leftovers(self, job_id: str) -> None:
        """However a test ends, nothing of its job runs on."""
        for pids in self.left_running(job_id).values():
            for pid in pids:
                _kill(pid)
        for tool in ("tar", "date", "ls", "head"):
            self.release(tool)


def _script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if int(text[text.rfind(")") + 2:].split()[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
