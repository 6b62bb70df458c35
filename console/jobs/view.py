"""Jobs as the headless commands (and later the TUI) show them: JSON documents and table cells."""

from __future__ import annotations

import difflib
import posixpath
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from console.records import EventRecord, JobRecord, LaunchRecord
from console.store import UnknownJob
from remote.jobstate import NodeQueryFailure

LOG_DIR = "logs"


def age_text(seconds: float) -> str:
    """A duration the way a person says it: 45s, 3m12s, 2h05m, 3d04h."""
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def when_text(moment: float, *, short: bool = False) -> str:
    """`2026-11-28 15:54:38`, or `11-28 15:54` where a table must fit 80 columns."""
    return time.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S", time.localtime(moment))


def state_text(job: JobRecord) -> str:
    failed = job.state == "failed" and job.exit_code is not None
    return f"{job.state} ({job.exit_code})" if failed else job.state


def node_state_text(launch: LaunchRecord) -> str:
    if launch.state == "unreachable":
        return f"unreachable (last: {launch.last_known or 'unknown'})"
    return launch.state


def nodes_text(launches: Sequence[LaunchRecord]) -> str:
    """How many nodes, and how many in each state: `2: 1 running, 1 unreachable`."""
    if not launches:
        return "0"
    counts = Counter(launch.state for launch in launches)
    return f"{len(launches)}: " + ", ".join(f"{n} {state}" for state, n in counts.items())


def log_path(job: JobRecord, launch: LaunchRecord) -> str:
    return job.log_locations.get(launch.node) or posixpath.join(launch.job_dir, LOG_DIR)


def launch_document(job: JobRecord, launch: LaunchRecord) -> dict[str, Any]:
    return {
        "node": launch.node, "rank": launch.node_rank, "state": launch.state,
        "last_known": launch.last_known, "pid": launch.pid, "exit_code": launch.exit_code,
        "job_dir": launch.job_dir, "log_path": log_path(job, launch), "updated_at": launch.updated_at,
        "reason": launch.reason,
    }


def job_document(job: JobRecord, launches: Sequence[LaunchRecord], *, now: float) -> dict[str, Any]:
    return {
        "id": job.id, "name": job.name, "state": job.state, "exit_code": job.exit_code,
        "cluster": job.cluster_name, "cluster_file": job.cluster_file, "template": job.template_path,
        "created_at": job.created_at, "updated_at": job.updated_at,
        "age_seconds": round(now - job.created_at, 3),
        "nodes": [launch_document(job, launch) for launch in launches],
    }


def event_document(event: EventRecord) -> dict[str, Any]:
    return {"time": event.time, "node": event.node, "kind": event.kind, "message": event.message}


def failure_document(failure: NodeQueryFailure) -> dict[str, Any]:
    return {"node": failure.node, "command": failure.command, "reason": failure.reason}


def unknown_job_text(missing: UnknownJob, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(missing.job_id, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "; `ascend-console jobs --all` lists every job"
    return f"{missing}{hint}"
