"""Keys or an agent only, on a real sshd (issue 16, item 8): a host whose sshd offers password
authentication alone is refused, and the message says why and what to change on the host."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster_jobs import cli, cluster_file
from tests.password_sshd import PORT, known_hosts_for_port, password_only_sshd
from tests.testcluster import TestCluster

pytestmark = pytest.mark.cluster


def test_a_host_that_offers_only_passwords_is_refused_saying_keys_or_an_agent_only(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys):
    address = test_cluster.host("h2").address
    known_hosts_for_port(known_hosts, address, PORT)
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h2"], port=PORT)
    with password_only_sshd(test_cluster, "h2"):
        code, checked = cli(capsys, "-c", str(cluster), "check", "--json")
    assert code == 2, checked
    [node] = checked["nodes"]
    [said] = node["reasons"]
    assert f"{address}:{PORT}: the host offers only password authentication" in said, node
    assert "keys or an SSH agent only, never a password" in said
    assert "PubkeyAuthentication" in said and "authorized_keys" in said
