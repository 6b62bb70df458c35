"""Fault matrix, two-consoles row: two console processes on one store and one job at once. One wins
cleanly: a stop is never overwritten back to `running` by a refresh that read the nodes before it, and a
launch that another console stops gives way, leaving nothing running.

Both consoles are real `python -m console.cli` processes (tests/faults/consoles.py). The first is held at
the dangerous point by a node tool that waits (`head` reading the last file of the job's state, the
nodes' answer already given; `tar` while staging) while the second runs to its end; then the first goes
on, and the store and the nodes' process tables are read."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from console.records import EventRecord
from console.store import Store
from tests.faults.consoles import NODES, Site, wait_for

pytestmark = [pytest.mark.faults]


def launched(site: Site) -> str:
    done = site.run("launch", str(site.job), "--settle", "1", "--json")
    assert done.returncode == 0, done.stderr
    job_id: str = json.loads(done.stdout)["job_id"]
    wait_for("both ranks running", lambda: len(site.left_running(job_id)) == 2)
    return job_id


def events(site: Site, job_id: str) -> list[EventRecord]:
    with Store(site.state / "console.db") as store:
        return store.events(job_id)


def finish(console: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = console.communicate(timeout=120)
    return console.returncode, out, err


def state_of(site: Site, job_id: str) -> tuple[str, dict[str, str]]:
    with Store(site.state / "console.db") as store:
        return store.job(job_id).state, {lr.node: lr.state for lr in store.launches(job_id)}


def test_a_refresh_that_asked_the_nodes_before_a_stop_never_writes_the_job_back_to_running(site: Site):
    job_id = launched(site)
    # console A refreshes: both nodes have said `running` (exit_code, stop_requested: none) and are held
    # reading started_at, the last thing they report, until console B's stop has ended
    site.block("head", "started_at")
    refreshing = site.start("jobs", "--json")
    wait_for("both nodes' answers held", lambda: len(site.blocked("head")) == 2)
    stopped = site.run("stop", job_id, "--timeout", "5")
    assert stopped.returncode == 0, stopped.stderr
    assert state_of(site, job_id) == ("stopped", {"n0": "stopped", "n1": "stopped"})
    site.resume("head")
    code, out, err = finish(refreshing)

    assert code == 0, err
    listed: dict[str, Any] = json.loads(out)
    # A shows what the store holds now, not what the nodes told it before the stop
    assert [(j["id"], j["state"]) for j in listed["jobs"]] == [(job_id, "stopped")], listed
    assert state_of(site, job_id) == ("stopped", {"n0": "stopped", "n1": "stopped"})
    assert not [e for e in events(site, job_id) if "-> running" in e.message or "-> stopping" in e.message]
    assert site.left_running(job_id) == {}


def test_a_stop_during_a_launchs_settle_wins_and_the_launch_gives_way(site: Site):
    launching = site.start("launch", str(site.job), "--settle", "60")
    job = wait_for("the job recorded", site.the_job)
    for node in NODES:
        wait_for(f"{node} started", (site.job_dir(node, job.id) / "pid").exists)
    wait_for("the ranks running", lambda: len(site.left_running(job.id)) == 2)
    stopped = site.run("stop", job.id, "--timeout", "5")
    assert stopped.returncode == 0, stopped.stderr
    code, _, err = finish(launching)

    assert code != 0
    said = " ".join(err.split())
    assert "another console changed the job meanwhile (it is now stopped): this launch gave way" in said, said
    assert state_of(site, job.id) == ("stopped", {"n0": "stopped", "n1": "stopped"})
    kinds = [e.kind for e in events(site, job.id)]
    assert "launch-failed" in kinds and "running" not in kinds, kinds
    assert site.left_running(job.id) == {}


def test_a_stop_before_a_launch_started_any_node_wins_and_nothing_is_started(site: Site):
    site.block("tar", str(site.root / "n1"))  # the launch held while copying to n1, n0 staged
    launching = site.start("launch", str(site.job), "--settle", "2")
    wait_for("n1's staging held", lambda: len(site.blocked("tar")) == 1)
    job = wait_for("the job recorded", site.the_job)
    wait_for("n0 staged", site.job_dir("n0", job.id).is_dir)
    stopped = site.run("stop", job.id, "--timeout", "5")
    assert stopped.returncode == 0, stopped.stderr
    assert state_of(site, job.id)[0] == "stopped"
    site.resume("tar")
    code, _, err = finish(launching)

    assert code != 0
    assert "this launch gave way" in " ".join(err.split()), err
    assert state_of(site, job.id)[0] == "stopped"
    assert not any((site.job_dir(node, job.id) / "pid").exists() for node in NODES)
    assert site.left_running(job.id) == {}
