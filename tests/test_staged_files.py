"""A staged job's files carry the time they were staged, not 1970 (issue 15: `ls -l` on a job directory
showed `Jan  1  1970` for launch.sh and config.yaml, and make-style tools took them for ancient)."""

import io
import os
import sys
import tarfile
import time
from pathlib import Path

import yaml

from console.jobs.plan import CONFIG_NAME, SCRIPT_NAME
from console.jobs.request import JobRequest, plan_job
from console.jobs.service import job_files
from remote import launch
from remote.inventory import load_cluster
from remote.pool import NodePool
from tests.rank_jobs import write_job


def test_the_archive_gives_every_file_the_time_it_is_given():
    data = launch.job_archive({"launch.sh": b"true\n", "code/model/x.py": b""}, ["launch.sh"],
                              mtime=1_790_000_000.7)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert {m.name: m.mtime for m in archive.getmembers()} == {
            "code/model/x.py": 1_790_000_000, "launch.sh": 1_790_000_000}


def test_a_job_staged_on_a_local_node_has_files_modified_when_it_was_staged(tmp_path: Path):
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(yaml.safe_dump({
        "name": "here", "defaults": {"transport": "local", "devices": 1, "python": sys.executable},
        "nodes": [{"name": "n0", "workdir": str(tmp_path / "n0"), "cluster_ip": "127.0.0.1"}],
    }))
    with NodePool(load_cluster(cluster)) as pool:
        plan = plan_job(JobRequest(write_job(tmp_path)), pool).plan
        [node] = plan.nodes
        before = time.time()
        staged = launch.stage(pool.transport(node.node), node.job_dir, job_files(plan, node), timeout=60)
        after = time.time()
    assert staged.ok, staged.stderr
    job_dir = Path(node.job_dir)
    for name in (SCRIPT_NAME, CONFIG_NAME, "code/model/train.py"):
        modified = os.stat(job_dir / name).st_mtime
        assert int(before) <= modified <= after + 1, (name, time.ctime(modified))
