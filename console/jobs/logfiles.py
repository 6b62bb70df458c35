"""Which files of a launched job hold what: every rank's log, the scheduler's, msrun's own output.

Pure: read from the job's recorded plan. msrun names a rank's log by its global rank
(`logs/worker_<rank>.log`), runs the scheduler beside node_rank 0's workers (`logs/scheduler.log`), and
prints its own lines to stdout, which launch.sh sends to `console.log`. The wrapper writes `exit_code`
there once nothing of the job is left on the node: following it tells the end of the run without polling.
A serve job has no msrun: its server prints to `console.log`, read whole as the `server` file.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from model.config import parse_spec
from model.logevents import default_followed_ranks, loss_ranks
from model.yamlsource import SourceError

Role = Literal["worker", "scheduler", "launcher", "exit", "server"]
MSRUN_KINDS = frozenset({"worker_started", "worker_exit", "workers_killed", "scheduler_exit",
                         "scheduler_timeout", "job_failed", "all_exited"})
"""Events msrun itself prints. Its output also holds copies of the ranks' logs (`--join` tails them)."""
_MSRUN_SOURCE = "mindspore/parallel/cluster/"
LAUNCHER_LOG = "console.log"
EXIT_FILE = "exit_code"


@dataclass(frozen=True)
class LogFile:
    node: str
    path: str
    role: Role
    rank: int | None = None

    @property
    def label(self) -> str:
        """How a line from it is prefixed: `node1 r7`, `node0 msrun`, `node0 sched`."""
        who = {"worker": f"r{self.rank}", "scheduler": "sched", "launcher": "msrun", "exit": "exit",
               "server": "server"}
        return f"{self.node} {who[self.role]}"


@dataclass(frozen=True)
class NodeRanks:
    node: str
    job_dir: str
    node_rank: int
    ranks: range


@dataclass(frozen=True)
class JobLayout:
    world: int
    pipeline_stages: int
    nodes: tuple[NodeRanks, ...]
    serving: bool = False
    """A serve job: one server per node, no ranks."""

    @property
    def loss_ranks(self) -> range:
        """The ranks that print the real loss: those of the last pipeline stage."""
        return loss_ranks(world=self.world, pipeline_stages=self.pipeline_stages)

    @property
    def default_ranks(self) -> tuple[int, ...]:
        """Followed unless asked otherwise: rank 0, and the last rank (which prints the real loss)."""
        return default_followed_ranks(world=self.world)

    def node_of(self, rank: int) -> NodeRanks | None:
        return next((n for n in self.nodes if rank in n.ranks), None)


def job_layout(plan: Mapping[str, Any], config_text: str) -> JobLayout:
    """The ranks on each node, from the plan `launch` recorded; the pipeline depth from the config
    (1 when the config cannot be read: every rank then counts as printing the loss)."""
    nodes: list[NodeRanks] = []
    first = 0
    for entry in sorted(plan.get("nodes", []), key=lambda n: int(n["node_rank"])):
        count = int(entry.get("local_workers", 1))
        nodes.append(NodeRanks(str(entry["node"]), str(entry["job_dir"]), int(entry["node_rank"]),
                               range(first, first + count)))
        first += count
    world = int(plan.get("workers") or first or 1)
    return JobLayout(world, _pipeline_stages(config_text, world), tuple(nodes), plan.get("kind") == "serve")


def _pipeline_stages(config_text: str, world: int) -> int:
    try:
        stages = parse_spec(config_text, "config.yaml").parallel.pipeline_stage
    except SourceError:
        return 1
    return stages if 1 <= stages <= world and world % stages == 0 else 1


def files_to_follow(layout: JobLayout, ranks: Iterable[int] | None = None) -> list[LogFile]:
    """Per node: msrun's output, the exit file, the scheduler's log on node_rank 0, and the logs of
    `ranks` that live there (default: `layout.default_ranks`)."""
    wanted = set(layout.default_ranks if ranks is None else ranks)
    files: list[LogFile] = []
    if layout.serving:
        return [file for node in layout.nodes for file in (
            LogFile(node.node, posixpath.join(node.job_dir, LAUNCHER_LOG), "server"),
            LogFile(node.node, posixpath.join(node.job_dir, EXIT_FILE), "exit"))]
    for node in layout.nodes:
        files.append(LogFile(node.node, posixpath.join(node.job_dir, LAUNCHER_LOG), "launcher"))
        files.append(LogFile(node.node, posixpath.join(node.job_dir, EXIT_FILE), "exit"))
        if node.node_rank == 0:
            files.append(LogFile(node.node, worker_log(node.job_dir, None), "scheduler"))
        files += [LogFile(node.node, worker_log(node.job_dir, rank), "worker", rank)
                  for rank in node.ranks if rank in wanted]
    return files


def msrun_own_line(text: str) -> bool:
    """Whether a line of msrun's output is msrun's own rather than a copy of a rank's log line: its
    "Start ... process" lines and what its logger prints from mindspore/parallel/cluster/."""
    return text.startswith(("Start worker process", "Start scheduler process")) or _MSRUN_SOURCE in text


def worker_log(job_dir: str, rank: int | None) -> str:
    """`<job>/logs/worker_<rank>.log`; rank None: the scheduler's log."""
    name = "scheduler.log" if rank is None else f"worker_{rank}.log"
    return posixpath.join(job_dir, "logs", name)
