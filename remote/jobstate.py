"""What a launched job is doing on its nodes, read from its job directory in one round trip per node.

The launcher leaves in `<workdir>/jobs/<job_id>/` the files `pid` (the PGID of the run's own
session), `exit_code` (written by the wrapper when the run ends), `started_at` and, when the
console asks the run to stop, `stop_requested`. A node's state is derived from those files plus
whether the process group is still alive; the derivation is a pure function, so it is tested on
recorded reports alone.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from remote.fanout import map_nodes
from remote.inventory import NodeSpec
from remote.pool import NodePool
from remote.transport import RunResult, brief, expand_home

NodeState = Literal["starting", "running", "exited", "stopped", "lost", "missing", "unreachable"]
"""`missing`: the job directory is not on the node. `unreachable` is never read from a node: the
store gives it to a launch whose node could not be asked, beside the last state it did read."""
NODE_STATES: tuple[NodeState, ...] = (
    "starting", "running", "exited", "stopped", "lost", "missing", "unreachable")
ENDED: frozenset[NodeState] = frozenset({"exited", "stopped", "lost", "missing"})

# The script is a constant: the marker and the job directories arrive as positional parameters,
# never as shell text. Each directory's record is framed by marker lines naming its index (the
# path itself is never echoed back: it may hold newlines); every other line starts with a key, so
# nothing a process or a file prints can forge a frame. Files are read up to their first line and
# 40 bytes. A pid is only signalled when it is all digits, short and above 1: `kill -s 0 -- -1`
# would ask about every process of the user. (dash's kill takes `--` only after `-s SIG`.)
JOBSTATE_SCRIPT = r"""
marker=$1; shift
export LC_ALL=C
first_line() { [ -f "$1" ] && head -c 40 -- "$1" 2>/dev/null | head -n 1 | tr -d '\r\000'; }
group_processes() {
  if table=$(ps -e -o pid= -o pgid= -o stat= -o args= 2>/dev/null); then
    echo "procs listed"
    printf '%s\n' "$table" | awk -v g="$1" '$2 == g { $2 = ""; print "proc " $0 }'
  else
    echo "procs unavailable"
  fi
}
index=0
for dir; do
""" + expand_home("dir") + r"""
  printf '%s begin %s\n' "$marker" "$index"
  if [ -d "$dir" ]; then
    echo "exists 1"
    pid=$(first_line "$dir/pid")
    [ -f "$dir/pid" ] && printf 'pid %s\n' "$pid"
    # liveness before the files: a run ending between the two reads then shows its exit code,
    # never a dead group without one (which would read as lost)
    case $pid in
      ''|*[!0-9]*|???????????*) ;;
      *) if [ "$pid" -gt 1 ]; then
           # "not permitted": the group lives, as another user's (a login that may not signal it)
           if said=$(kill -s 0 -- "-$pid" 2>&1); then echo "alive 1"
           else case $said in *ermit*) echo "alive 1" ;; *) echo "alive 0" ;; esac; fi
           group_processes "$pid"
         fi ;;
    esac
    for name in exit_code stop_requested started_at; do
      [ -f "$dir/$name" ] && printf '%s %s\n' "$name" "$(first_line "$dir/$name")"
    done
  else
    echo "exists 0"
  fi
  printf '%s end %s\n' "$marker" "$index"
  index=$((index + 1))
done
"""


@dataclass(frozen=True)
class JobProcess:
    """One process of the run's process group, as `ps` showed it."""

    pid: int
    stat: str
    command: str

    @property
    def zombie(self) -> bool:
        return self.stat.startswith("Z")


@dataclass(frozen=True)
class JobDirReport:
    """The raw facts about one job directory, before any state is derived from them."""

    job_dir: str
    exists: bool
    pid_text: str | None = None
    """The pid file's first line; None when there is no pid file."""
    exit_code_text: str | None = None
    stop_requested_text: str | None = None
    started_at_text: str | None = None
    alive: bool | None = None
    """Whether `kill -s 0 -- -PGID` succeeded; None when it was not asked (no usable pid)."""
    processes: tuple[JobProcess, ...] = ()
    processes_listed: bool = False


@dataclass(frozen=True)
class NodeJobState:
    """One node's part of a job, as its job directory and process table show it."""

    job_dir: str
    state: NodeState
    pid: int | None = None
    exit_code: int | None = None
    started_at: float | None = None
    stop_requested_at: float | None = None
    processes: tuple[JobProcess, ...] = ()
    notes: tuple[str, ...] = ()
    """Oddities a person should see: a pid file that is not a number, processes left behind."""


@dataclass(frozen=True)
class NodeJobStates:
    """A node answered: the state of each job directory it was asked about, in the order asked."""

    node: str
    states: tuple[NodeJobState, ...]

    def state_of(self, job_dir: str) -> NodeJobState | None:
        return next((s for s in self.states if s.job_dir == job_dir), None)


@dataclass(frozen=True)
class NodeQueryFailure:
    """A node could not be asked, or its answer could not be read."""

    node: str
    command: str
    reason: str


NodeAnswer = NodeJobStates | NodeQueryFailure


# --- parsing -----------------------------------------------------------------------------------


def jobstate_argv(marker: str, job_dirs: Sequence[str]) -> list[str]:
    return ["sh", "-c", JOBSTATE_SCRIPT, "ascend-jobstate", marker, *job_dirs]


def parse_report(text: str, marker: str, job_dirs: Sequence[str]) -> dict[str, JobDirReport]:
    """The complete records in the script's output, by job directory. Garbage is skipped: a
    directory whose record is missing or cut short is simply absent from the result."""
    pattern = re.compile(
        rf"^{re.escape(marker)} begin (?P<index>\d+)\n(?P<body>.*?)^{re.escape(marker)} end (?P=index)$",
        re.MULTILINE | re.DOTALL,
    )
    reports: dict[str, JobDirReport] = {}
    for match in pattern.finditer(text):
        index = int(match.group("index"))
        if index < len(job_dirs):
            report = _parse_record(job_dirs[index], match.group("body"))
            if report is not None:
                reports[job_dirs[index]] = report
    return reports


def _parse_record(job_dir: str, body: str) -> JobDirReport | None:
    fields: dict[str, str] = {}
    processes: list[JobProcess] = []
    for line in body.splitlines():
        key, _, value = line.partition(" ")
        if key == "proc":
            process = _parse_process(value)
            if process is not None:
                processes.append(process)
        elif key in ("exists", "pid", "exit_code", "stop_requested", "started_at", "alive", "procs"):
            fields[key] = value
    if fields.get("exists") not in ("0", "1"):
        return None
    return JobDirReport(
        job_dir, fields["exists"] == "1", fields.get("pid"), fields.get("exit_code"),
        fields.get("stop_requested"), fields.get("started_at"),
        {"1": True, "0": False}.get(fields.get("alive", "")), tuple(processes),
        fields.get("procs") == "listed",
    )


def _parse_process(text: str) -> JobProcess | None:
    parts = text.split(None, 2)
    if len(parts) < 2 or not parts[0].isdigit():
        return None
    return JobProcess(int(parts[0]), parts[1], parts[2] if len(parts) > 2 else "")


def _int(text: str | None, *, least: int = 0) -> int | None:
    if text is None or not re.fullmatch(r"\d{1,10}", text.strip()) or int(text) < least:
        return None
    return int(text.strip())


def _seconds(text: str | None) -> float | None:
    if text is None or not re.fullmatch(r"\d{1,12}(\.\d+)?", text.strip()):
        return None
    return float(text.strip())


def derive_state(report: JobDirReport) -> NodeJobState:
    """The launcher contract as a table: missing, exited / stopped (exit code), starting (no pid
    yet), running (group alive), stopped (asked to stop, gone without a code: killed), lost."""
    if not report.exists:
        return NodeJobState(report.job_dir, "missing")
    pid = _int(report.pid_text, least=2)
    exit_code = _int(report.exit_code_text)
    stop_at = _seconds(report.stop_requested_text)
    stop_asked = report.stop_requested_text is not None
    live = tuple(p for p in report.processes if not p.zombie)
    # a group of zombies only is over: its processes ended and wait for their parent
    running = bool(report.alive) and (bool(live) or not report.processes)
    notes = _notes(report, pid, exit_code, running)
    state: NodeState
    if exit_code is not None:
        state = "stopped" if stop_asked else "exited"
    elif report.pid_text is None or (report.pid_text.strip() == "" and not stop_asked):
        state = "starting"
    elif running:
        state = "running"
    else:
        state = "stopped" if stop_asked else "lost"
    return NodeJobState(report.job_dir, state, pid, exit_code, _seconds(report.started_at_text),
                        stop_at, live if running else (), notes)


def _notes(report: JobDirReport, pid: int | None, exit_code: int | None, running: bool) -> tuple[str, ...]:
    notes = []
    if report.pid_text and pid is None:
        notes.append(f"the pid file holds {report.pid_text!r}, not a process id")
    if report.exit_code_text is not None and exit_code is None:
        notes.append(f"the exit_code file holds {report.exit_code_text!r}, not an exit status")
    if exit_code is not None and running:
        notes.append(f"the run ended (exit code {exit_code}) but processes of its group are left")
    return tuple(notes)


# --- asking the nodes --------------------------------------------------------------------------


def query_node(pool: NodePool, node: NodeSpec, job_dirs: Sequence[str], *,
               timeout: float | None = None) -> NodeAnswer:
    """One round trip to one node for all the given job directories. Never raises."""
    marker = f"@@ascend-{secrets.token_hex(6)}"
    argv = jobstate_argv(marker, job_dirs)
    try:
        result = pool.transport(node).run(argv, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - one node's surprise must not sink the others
        return NodeQueryFailure(node.name, brief(" ".join(argv)), f"internal error: {exc!r}")
    return answer_from(result, marker, job_dirs)


def answer_from(result: RunResult, marker: str, job_dirs: Sequence[str]) -> NodeAnswer:
    """A node's run result turned into states, or into the reason there are none."""
    command = brief(result.command)
    if result.error is not None or result.exit_code != 0:
        return NodeQueryFailure(result.node, command, result.describe())
    reports = parse_report(result.stdout, marker, job_dirs)
    unread = [d for d in job_dirs if d not in reports]
    if unread:
        return NodeQueryFailure(result.node, command,
                                f"no readable report for {len(unread)} of {len(job_dirs)} job "
                                f"directories (first: {unread[0]!r}); output: {brief(result.stdout)!r}")
    return NodeJobStates(result.node, tuple(derive_state(reports[d]) for d in job_dirs))


def query_nodes(pool: NodePool, job_dirs: Mapping[NodeSpec, Sequence[str]], *,
                timeout: float | None = None) -> dict[str, NodeAnswer]:
    """Every node asked at once (on the pool's threads) about its job directories; by node name."""
    nodes = list(job_dirs)
    answers = map_nodes(pool, nodes, lambda node: query_node(pool, node, job_dirs[node], timeout=timeout))
    return {answer.node: answer for answer in answers}
