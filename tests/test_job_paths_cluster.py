"""A job's dataset and checkpoint are looked for on every node, over SSH."""

from pathlib import Path

import pytest

from remote.inventory import load_cluster
from remote.paths import MissingPath, dataset_files, missing_paths
from remote.pool import NodePool
from tests.testcluster import TestCluster

pytestmark = pytest.mark.cluster


def test_files_present_on_one_node_are_reported_missing_on_the_others(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path):
    base = f"{TestCluster.node_storage_path}/data set"  # a space: paths travel as arguments
    prefix = f"{base}/wiki_text_document"
    test_cluster.exec("h0", ["sh", "-c", 'mkdir -p "$1" && touch "$2.bin" "$2.idx"', "sh", base, prefix])
    test_cluster.exec("h1", ["sh", "-c", 'mkdir -p "$1" && touch "$2.bin"', "sh", base, prefix])
    cluster = load_cluster(test_cluster.cluster_yaml(tmp_path / "c.yaml", ["h0", "h1", "h2"],
                                                     known_hosts=known_hosts))
    with NodePool(cluster) as pool:
        missing = missing_paths(pool, cluster.nodes, dataset_files([prefix]))
    assert sorted(missing, key=lambda m: m.path) == [
        MissingPath(f"{prefix}.bin", ("h2",)),
        MissingPath(f"{prefix}.idx", ("h1", "h2")),
    ]
