"""The dashboard knows the console's own runs: a node's row names the job it runs, and the node's NPU
table names the job and rank of each process, which does not make the node busy."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from console.screens.node_detail import NodeDetailScreen
from console.widgets.detail_tables import NpuTable
from console.widgets.node_table import NodeTable, job_cell
from remote.health import NodeHealth, with_drift
from tests.recorded_health import BUSY_PIDS, health, marked, npu_node
from tests.test_tui import app_for, cell, drive, rounds_done, until

pytestmark = pytest.mark.usefixtures("utc")  # times on screen read the same everywhere

JOB = "20261206-214024-pretrain"


def running_fleet() -> list[NodeHealth]:
    """node000 runs ranks 0-7 of JOB on its eight NPUs; node001 is idle; node002 is busy with foreign
    processes; node003 runs JOB's msrun only, its ranks not yet on NPUs."""
    ranks = dict(zip(BUSY_PIDS, range(8), strict=True))
    return with_drift([
        health(npu_node("node000", "10.0.0.1"), "busy", jobs=marked(f"{JOB}@node000", ranks)),
        health(npu_node("node001", "10.0.0.2"), "healthy"),
        health(npu_node("node002", "10.0.0.3"), "busy"),
        health(npu_node("node003", "10.0.0.4"), "healthy", jobs=marked(f"{JOB}@node003", {9000: None})),
    ])


def test_a_nodes_row_names_its_job_and_its_own_ranks_are_not_foreign():
    async def script(pilot: Pilot[None]) -> None:
        await rounds_done(pilot, 1)
        table = pilot.app.screen.query_one(NodeTable)
        assert [cell(table, f"node00{i}", "job") for i in range(4)] == ["pretrain", "", "", "pretrain"]
        assert (cell(table, "node000", "status"), cell(table, "node000", "reasons")) == ("OK", "")
        assert "foreign" in cell(table, "node002", "reasons")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, NodeDetailScreen))
        npus = pilot.app.screen.query_one(NpuTable)
        assert npus.get_cell("3.0", "processes").plain == f"277630 (job {JOB} rank 3, 51271 MB)"
        assert npus.get_cell("3.0", "reasons").plain == ""

    drive(app_for(running_fleet()), script, size=(160, 50))


def test_the_row_shows_the_jobs_name_cut_short_or_how_many_jobs():
    assert job_cell(running_fleet()[0]) == "pretrain"
    long = marked("20261207-080000-deepseek-v3@node0", {6: 0})
    assert job_cell(health(npu_node("node0"), "healthy", jobs=long)) == "deepseek…"
    both = health(npu_node("node0"), "healthy", jobs=long + marked(f"{JOB}@node0", {7: 0}))
    assert job_cell(both) == "2 jobs"


def test_at_80_columns_the_job_column_leaves():
    async def script(pilot: Pilot[None]) -> None:
        await rounds_done(pilot, 1)
        table = pilot.app.screen.query_one(NodeTable)
        assert "job" not in [str(column.key.value) for column in table.columns.values()]

    drive(app_for(running_fleet()), script)


@pytest.mark.parametrize("size", [(160, 50)])
def test_snapshot_dashboard_with_a_job_running(snap_compare, size):
    # A person sees node000 and node003 OK, running "pretrain", and node002 WARN, busy with foreign processes.
    async def settled(pilot: Pilot[None]) -> None:
        await rounds_done(pilot, 1)

    assert snap_compare(app_for(running_fleet()), terminal_size=size, run_before=settled)
