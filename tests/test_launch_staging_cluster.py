"""The stage script over real SSH on a test host, refusing before it has read its archive: the console
must get its exit status and its reason, not a lost connection (sshd closes the channel while the
console still sends the archive)."""

from pathlib import Path

import pytest

from remote import launch
from remote.inventory import load_cluster
from remote.pool import NodePool
from tests.cluster_jobs import STORAGE, cluster_file
from tests.testcluster import TestCluster

pytestmark = pytest.mark.cluster


def test_a_stage_refused_before_reading_its_archive_says_why_and_leaves_the_directory_alone(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path):
    existing = f"{STORAGE}/jobs/staging-refused-{tmp_path.name}"
    test_cluster.exec("h3", ["sh", "-c", 'mkdir -p "$1" && echo mine > "$1/sentinel"', "sh", existing])
    # more than the channel's window (2 MiB): the console is still sending when the script has exited
    archive = launch.job_archive({f"part{i}": bytes(1 << 20) for i in range(6)}, mtime=1e9)
    cluster = load_cluster(cluster_file(test_cluster, tmp_path, known_hosts, ["h3"]))
    try:
        with NodePool(cluster) as pool:
            result = launch.stage(pool.transport("h3"), existing, archive, timeout=30)
        assert (result.exit_code, result.error) == (3, None), result
        assert result.stderr.strip() == f"job directory already exists: {existing}"
        held = test_cluster.exec("h3", ["sh", "-c", 'ls -A "$1" && cat "$1/sentinel"', "sh", existing])
        assert held.stdout.split() == ["sentinel", "mine"]
    finally:
        test_cluster.exec("h3", ["rm", "-rf", existing])
