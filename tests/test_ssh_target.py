"""How the cluster file and ~/.ssh/config combine into where and as whom to connect."""

import paramiko

from remote.inventory import NodeSpec
from remote.sshconfig import jump_node, resolve_target

SSH_CONFIG = """\
Host gpu*
    User operator
    Port 2200
    IdentityFile ~/.ssh/lab_key
    ProxyJump admin@bastion.lab:2022

Host gpu1
    HostName 10.9.0.1
"""


def config() -> paramiko.SSHConfig:
    return paramiko.SSHConfig.from_text(SSH_CONFIG)


def test_ssh_config_fills_what_the_cluster_file_leaves_out():
    target = resolve_target(NodeSpec(name="n1", host="gpu1", cluster_ip="gpu1"), config())
    assert (target.hostname, target.port, target.user) == ("10.9.0.1", 2200, "operator")
    assert target.identity_files[0].endswith("/.ssh/lab_key") and "~" not in target.identity_files[0]
    assert target.proxy_jump == "admin@bastion.lab:2022"


def test_cluster_file_wins_where_it_says_something():
    node = NodeSpec(name="n1", host="gpu1", cluster_ip="gpu1", user="root", port=22,
                    identity_file="/keys/id", proxy_jump="hop")
    target = resolve_target(node, config())
    assert (target.user, target.port, target.identity_files, target.proxy_jump) == (
        "root", 22, ("/keys/id",), "hop")
    assert target.hostname == "10.9.0.1"


def test_known_hosts_name_follows_openssh():
    plain = resolve_target(NodeSpec(name="a", host="10.0.0.1", cluster_ip="", port=22), None)
    other = resolve_target(NodeSpec(name="a", host="10.0.0.1", cluster_ip="", port=2222), None)
    assert (plain.known_as, other.known_as) == ("10.0.0.1", "[10.0.0.1]:2222")


def test_jump_chain_puts_earlier_hops_in_front_of_the_last():
    behind = NodeSpec(name="n", host="inner", cluster_ip="inner", identity_file="/k")
    hop = jump_node("first, ops@second:2022", behind)
    assert (hop.host, hop.user, hop.port, hop.proxy_jump) == ("second", "ops", 2022, "first")
    assert hop.identity_file == "/k"
    assert jump_node("first", behind).proxy_jump is None
