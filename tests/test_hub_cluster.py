"""Weights from a hub, on the real test cluster: there is no network here, so the error paths are the
real ones a node hits (openmind_hub missing for its interpreter; an endpoint that does not answer)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from remote.hub import HubError, fetch_weights
from remote.inventory import load_cluster
from remote.pool import NodePool
from tests.testcluster import TestCluster


def test_a_node_without_openmind_hub_is_named_with_how_to_install_it(
        test_cluster: TestCluster, known_hosts: Path, tmp_path: Path) -> None:
    # the hosts' system python3 has no openmind_hub
    cluster = load_cluster(test_cluster.cluster_yaml(
        tmp_path / "c.yaml", ["h1", "h2"], known_hosts=known_hosts, extra_defaults={"python": "python3"}))
    with NodePool(cluster) as pool, pytest.raises(HubError) as caught:
        fetch_weights(pool, cluster.nodes, "MindSpore-Lab/DeepSeek-V3", "/srv/actest/weights")
    message = str(caught.value)
    assert message.startswith("h1: openmind_hub is not installed for python3")
    assert "pip install openmind-hub" in message


def test_an_unreachable_endpoint_is_named_with_the_node(
        test_cluster: TestCluster, known_hosts: Path, tmp_path: Path) -> None:
    # this venv's interpreter has the real openmind_hub; nothing listens on the console host's port 9
    cluster = load_cluster(test_cluster.cluster_yaml(
        tmp_path / "c.yaml", ["h2"], known_hosts=known_hosts, extra_defaults={"python": sys.executable}))
    endpoint = f"https://{test_cluster.network.gateway.address}:9"
    with NodePool(cluster) as pool, pytest.raises(HubError) as caught:
        fetch_weights(pool, cluster.nodes, "owner/repo", "/srv/actest/hub weights", endpoint=endpoint)
    message = str(caught.value)
    assert message.startswith(f"h2 cannot reach the hub at {endpoint}")
    assert "Connection refused" in message
    assert (test_cluster.host("h2").storage / "hub weights").is_dir()  # allowed by HUB_WHITE_LIST_PATHS
