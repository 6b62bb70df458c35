"""What the console remembers about jobs, as frozen records: the store (console/store.py) takes and
returns these, and everything else reads them without knowing there is a database behind them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from remote.jobstate import NodeState

JobState = Literal[
    "planned", "launching", "starting", "running", "stopping", "exited", "failed", "stopped", "lost"]
"""planned: recorded, not launched. exited: every node ended with 0. failed: some node ended
non-zero (the job's exit code is the worst). stopped: the console stopped it. lost: a node's run
vanished without an exit code."""
JOB_STATES: tuple[JobState, ...] = (
    "planned", "launching", "starting", "running", "stopping", "exited", "failed", "stopped", "lost")
FINISHED: frozenset[JobState] = frozenset({"exited", "failed", "stopped", "lost"})


@dataclass(frozen=True)
class JobRecord:
    id: str
    name: str
    cluster_name: str
    cluster_file: str
    config_text: str
    """The rendered job config, exactly as it was distributed."""
    template_path: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    state: JobState = "planned"
    exit_code: int | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    log_locations: dict[str, str] = field(default_factory=dict)
    """Node name -> the log directory (or file) to read on that node."""
    first_failure: dict[str, Any] | None = None
    """The earliest error across ranks and nodes (console/jobs/failure.py), kept after the job ends."""
    version: int = 1
    """Bumped by every change of the job's state or launches: a writer that read version N writes only
    while it is still N (the store's compare-and-set), so no console overwrites what it did not see."""
    owner: str | None = None
    """The console process launching or stopping the job now (console/jobs/owner.py), None otherwise."""

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


@dataclass(frozen=True)
class LaunchRecord:
    """One node's part of a job."""

    job_id: str
    node: str
    node_rank: int
    job_dir: str
    pid: int | None = None
    state: NodeState = "starting"
    exit_code: int | None = None
    updated_at: float = 0.0
    last_known: NodeState | None = None
    """While `state` is unreachable: the last state read from the node."""
    reason: str = ""
    """Why the node could not be asked, or what was odd about its answer."""

    @property
    def effective_state(self) -> NodeState:
        """The state to reason with: for an unreachable node, the last one it reported."""
        if self.state == "unreachable":
            return self.last_known or "starting"
        return self.state


@dataclass(frozen=True)
class EventRecord:
    job_id: str
    kind: str
    message: str
    time: float
    node: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class LogCursor:
    """How far the store has recorded one followed file of a job: what a follower resumes from."""

    job_id: str
    node: str
    path: str
    inode: int | None = None
    offset: int = 0
    line: int = 0
    """Complete lines recorded, so line numbers continue after a resume."""
    rank: int | None = None
    """The rank whose log this is; None for msrun's own output and the scheduler's log."""
    pid: int | None = None
    """The rank's process id as its log shows it: how msrun's "Worker process <pid> exit" is named."""
    last_time: float | None = None
    """The last timestamp read in the file (node clock): lines without one take it."""


@dataclass(frozen=True)
class LogEventRecord:
    """One event read from a job's logs (model/logevents.py), with where it came from."""

    job_id: str
    node: str
    path: str
    line: int
    kind: str
    severity: str
    message: str
    rank: int | None = None
    time: float | None = None
    """Console clock: the node's own timestamp corrected by its measured clock offset."""
    lines: tuple[str, ...] = ()
    code: str | None = None
    source: str | None = None
    """Where the line came from: MindSpore's source position, or `msrun` for msrun's own traceback."""
    pid: int | None = None
    """A process the line names (msrun's worker exit): the rank is found from it once its log is read."""
    id: int | None = None


@dataclass(frozen=True)
class MetricRecord:
    job_id: str
    node: str
    rank: int
    step: int
    time: float
    loss: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
