"""Fault matrix, console-killed row: the console process SIGKILLed at each stage of `launch` and `stop`,
then the next console (a new process, the same store) shows the true state and finishes or undoes what
was half done: no job left `launching`, no rank left running that no job owns.

The console is a real `python -m console.cli` process on two local nodes (tests/faults/consoles.py).
It is stopped at a known stage by a node tool that blocks (`tar` while staging, `date` while starting
and stopping, `ls` when the stop, its nodes done, looks for the checkpoint) or by what appears on the
nodes (pid files while settling, stop_requested while stopping), then killed. The next console's
`status --json` is read, and the nodes' process tables."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.jobs.owner import Owner
from console.jobs.plan import process_marker
from console.records import EventRecord, JobRecord, LaunchRecord
from console.store import Store
from remote import launch
from remote.inventory import load_cluster
from remote.pool import NodePool
from tests.faults.consoles import NODES, Site, wait_for

pytestmark = [pytest.mark.faults]


@pytest.fixture
def stubborn_site(tmp_path: Path) -> Iterator[Site]:
    """Ranks that ignore SIGTERM: a stop waits out its whole grace, long enough to be killed in."""
    made = Site(tmp_path, ranks_ignore_term=True)
    try:
        yield made
    finally:
        job = made.the_job()
        made.stop_leftovers(job.id if job else "")


def status(site: Site, job_id: str) -> dict[str, Any]:
    shown = site.run("status", job_id, "--json")
    assert shown.returncode == 0, shown.stderr
    document: dict[str, Any] = json.loads(shown.stdout)
    return document


def node_states(document: dict[str, Any]) -> dict[str, str]:
    return {node["node"]: node["state"] for node in document["nodes"]}


def messages(document: dict[str, Any], kind: str) -> list[str]:
    return [e["message"] for e in document["events"] if e["kind"] == kind]


def launching(site: Site) -> JobRecord:
    def recorded() -> JobRecord | None:
        job = site.the_job()
        return job if job is not None and job.state == "launching" else None
    return wait_for("the job recorded as launching", recorded)


# --- launch ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("staged", [(), ("n0",)], ids=["no-node-staged", "one-node-staged"])
def test_killed_while_staging_the_next_console_shows_the_launch_failed_and_nothing_runs(
        site: Site, staged: tuple[str, ...]):
    site.block("tar", str(site.root / "n1") if staged else str(site.root))
    console = site.start("launch", str(site.job), "--settle", "2")
    wait_for("the staging blocked", lambda: len(site.blocked("tar")) == 2 - len(staged))
    job = launching(site)
    for node in staged:
        wait_for(f"{node} staged", site.job_dir(node, job.id).is_dir)
    site.kill(console, with_sessions=True)
    site.release("tar")

    shown = status(site, job.id)
    assert shown["state"] == "failed", shown
    [note] = messages(shown, "launch-failed")
    assert "the launch was interrupted" in note and "before any node started: nothing runs" in note
    assert f"pid {console.pid}" in note
    assert site.left_running(job.id) == {}
    # the copy killed midway is at most a `.staging.*` beside the job's name; a node that had staged
    # is left with nothing either, as when the launcher itself fails at staging, and is told so
    assert [n for n in NODES if site.job_dir(n, job.id).exists()] == []
    assert messages(shown, "unstaged") == [f"removed {site.job_dir(node, job.id)} (the launch was "
                                           "interrupted before any node started)" for node in staged]


def test_killed_while_starting_the_next_console_finds_every_node_started_and_the_job_running(site: Site):
    site.block("date", str(site.root / "n1" / "jobs"))  # n1's start blocks after its run began
    console = site.start("launch", str(site.job), "--settle", "2")
    wait_for("n1's start blocked", lambda: len(site.blocked("date")) == 1)
    job = launching(site)
    wait_for("n0 started", (site.job_dir("n0", job.id) / "started_at").exists)
    site.kill(console, with_sessions=True)
    site.release("date")

    shown = status(site, job.id)
    assert (shown["state"], node_states(shown)) == ("running", {"n0": "running", "n1": "running"}), shown
    assert any("every node had started" in m for m in messages(shown, "adopted"))
    stopped = site.run("stop", job.id, "--timeout", "5")
    assert stopped.returncode == 0, stopped.stderr
    assert status(site, job.id)["state"] == "stopped"
    assert site.left_running(job.id) == {}


def test_killed_while_settling_the_next_console_finds_the_job_running_and_can_stop_it(site: Site):
    console = site.start("launch", str(site.job), "--settle", "120")
    job = launching(site)
    for node in NODES:
        wait_for(f"{node} started", (site.job_dir(node, job.id) / "pid").exists)
    wait_for("the starts recorded", lambda: all(lr.pid for lr in _launches(site, job.id)) or None)
    site.kill(console, with_sessions=True)
    assert site.the_job().state == "launching"  # type: ignore[union-attr]

    shown = status(site, job.id)
    assert (shown["state"], node_states(shown)) == ("running", {"n0": "running", "n1": "running"}), shown
    stopped = site.run("stop", job.id, "--timeout", "5")
    assert stopped.returncode == 0, stopped.stderr
    assert status(site, job.id)["state"] == "stopped"
    assert site.left_running(job.id) == {}


def test_a_launch_killed_with_one_node_started_is_undone_by_the_next_console(site: Site):
    """The half-started case: one node's run began, the other's never did (its start never reached it)."""
    job_id = "20261207-000000-half"
    cluster = load_cluster(site.cluster)
    with NodePool(cluster) as pool, Store(site.state / "console.db") as store:
        dirs = {node: str(site.job_dir(node, job_id)) for node in NODES}
        for node in NODES:
            script = f"export ASCEND_CONSOLE_JOB={process_marker(job_id, node)}\nexec {site.root}/bin/msrun\n"
            files = launch.job_archive({"launch.sh": script.encode()}, ["launch.sh"], mtime=time.time())
            assert launch.stage(pool.transport(node), dirs[node], files, timeout=30).ok
        started = launch.start(pool.transport("n0"), dirs["n0"], process_marker(job_id, "n0"), timeout=30)
        assert started.ok, started
        gone = Owner("launch", _hostname(), _dead_pid(), "")  # the console that did this was killed
        store.create_job(
            JobRecord(job_id, "half", cluster.name, str(site.cluster), "cfg", state="launching",
                      created_at=time.time(), updated_at=time.time(), owner=gone.dump(),
                      log_locations={node: f"{dirs[node]}/logs" for node in NODES},
                      plan={"job_id": job_id, "name": "half", "workers": 2, "nodes": [
                          {"node": node, "node_rank": rank, "job_dir": dirs[node], "local_workers": 1}
                          for rank, node in enumerate(NODES)]}),
            [LaunchRecord(job_id, node, rank, dirs[node], updated_at=time.time())
             for rank, node in enumerate(NODES)],
            [EventRecord(job_id, "launch", "launching", time.time())])
    wait_for("n0's rank running", lambda: site.left_running(job_id).get("n0"))

    shown = status(site, job_id)
    assert shown["state"] == "failed", shown
    assert node_states(shown) == {"n0": "stopped", "n1": "starting"}
    [note] = messages(shown, "launch-failed")
    assert "with n0 started and n1 not: all or nothing, so n0 stopped" in note, note
    assert site.left_running(job_id) == {}


# --- stop --------------------------------------------------------------------------------------------


def launched(site: Site) -> str:
    done = site.run("launch", str(site.job), "--settle", "1", "--json")
    assert done.returncode == 0, done.stderr
    job_id: str = json.loads(done.stdout)["job_id"]
    wait_for("both ranks running", lambda: len(site.left_running(job_id)) == 2)
    return job_id


def test_stop_killed_before_any_node_was_signalled_shows_the_job_running_and_a_new_stop_finishes(
        site: Site):
    job_id = launched(site)
    site.block("date", "+%s")  # the stop script's first step: writing stop_requested
    console = site.start("stop", job_id, "--timeout", "5")
    wait_for("both stops blocked", lambda: len(site.blocked("date")) == 2)
    assert site.the_job().state == "stopping"  # type: ignore[union-attr]
    site.kill(console, with_sessions=True)
    site.release("date")

    shown = status(site, job_id)
    assert (shown["state"], node_states(shown)) == ("running", {"n0": "running", "n1": "running"}), shown
    [note] = messages(shown, "stop-interrupted")
    assert f"pid {console.pid}" in note and f"ascend-console stop {job_id}" in note
    stopped = site.run("stop", job_id, "--timeout", "5")
    assert stopped.returncode == 0, stopped.stderr
    assert status(site, job_id)["state"] == "stopped"
    assert site.left_running(job_id) == {}


def test_stop_killed_mid_grace_with_its_node_scripts_leaves_the_job_running_until_stopped_again(
        stubborn_site: Site):
    site = stubborn_site
    job_id = launched(site)
    console = site.start("stop", job_id, "--timeout", "60")
    for node in NODES:  # SIGTERM sent (ignored): the scripts wait out the grace
        wait_for(f"{node} asked to stop", (site.job_dir(node, job_id) / "stop_requested").exists)
    site.kill(console, with_sessions=True)

    shown = status(site, job_id)
    assert (shown["state"], node_states(shown)) == ("running", {"n0": "running", "n1": "running"}), shown
    assert messages(shown, "stop-interrupted")
    stopped = site.run("stop", job_id, "--timeout", "1")
    assert stopped.returncode == 0, stopped.stderr
    assert status(site, job_id)["state"] == "stopped"
    assert site.left_running(job_id) == {}


def test_stop_killed_after_its_nodes_stopped_before_it_said_so_shows_the_job_stopped(site: Site):
    job_id = launched(site)
    site.block("ls", "checkpoint/rank_0")  # every node stopped and verified: it looks for the checkpoint
    console = site.start("stop", job_id, "--timeout", "5")
    wait_for("the checkpoint listing blocked", lambda: len(site.blocked("ls")) == 1)
    assert site.the_job().state == "stopping"  # type: ignore[union-attr]
    site.kill(console, with_sessions=True)
    site.release("ls")

    shown = status(site, job_id)
    assert (shown["state"], node_states(shown)) == ("stopped", {"n0": "stopped", "n1": "stopped"}), shown
    assert not messages(shown, "stop-interrupted")
    assert site.left_running(job_id) == {}


def _launches(site: Site, job_id: str) -> list[LaunchRecord]:
    with Store(site.state / "console.db") as store:
        return store.launches(job_id)


def _hostname() -> str:
    return socket.gethostname()


def _dead_pid() -> int:
    done = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    return int(done.stdout)
