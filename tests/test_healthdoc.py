"""The `check --json` document and the display texts, on recorded health with a console job running."""

from __future__ import annotations

import json

from console.healthdoc import job_name, jobs_cell, node_document, process_text
from console.widgets.detail_tables import npu_row
from tests.recorded_health import BUSY_PIDS, health, marked, npu_node

JOB = "20261206-214024-tiny"
NODE = npu_node("node0")
# ranks 0 and 1 of a job hold NPUs 0 and 1; NPUs 2-7 hold foreign processes
RUNNING = health(NODE, "busy", jobs=marked(f"{JOB}@node0", {BUSY_PIDS[0]: 0, BUSY_PIDS[1]: 1, 42: None}))


def test_the_document_names_the_job_of_each_process_and_the_jobs_of_the_node():
    document = json.loads(json.dumps(node_document(RUNNING)))
    assert document["jobs"] == [{"id": JOB, "ranks": [0, 1], "npus": [0, 1]}]
    assert document["npus"][1]["processes"] == [
        {"pid": 277626, "name": "", "memory_mb": 51271, "job": JOB, "rank": 1}]
    assert document["npus"][2]["processes"] == [
        {"pid": 277628, "name": "", "memory_mb": 51271, "job": None, "rank": None}]
    assert document["npus"][1]["status"] == "OK" and document["npus"][2]["status"] == "WARN"
    assert json.loads(json.dumps(node_document(health(NODE, "healthy"))))["jobs"] == []


def test_process_rows_say_whose_process_it_is():
    ours, theirs = RUNNING.npus[0], RUNNING.npus[2]
    assert process_text(ours, ours.processes[0]) == f"277624 (job {JOB} rank 0)"
    assert process_text(theirs, theirs.processes[0], memory=True) == "277628 (51271 MB)"
    processes = [cell.text for cell in npu_row(ours)][8]
    assert processes == f"277624 (job {JOB} rank 0, 51270 MB)"


def test_job_cells_name_the_jobs():
    assert jobs_cell(RUNNING) == JOB and jobs_cell(health(NODE, "healthy")) == ""
    both = marked(f"{JOB}@node0", {5: 0}) + marked("20261207-080000-deepseek-v3@node0", {6: 0})
    assert jobs_cell(health(NODE, "healthy", jobs=both)) == f"{JOB}, 20261207-080000-deepseek-v3"
    assert job_name(JOB) == "tiny" and job_name("my-own-id") == "my-own-id"
