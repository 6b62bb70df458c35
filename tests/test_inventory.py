"""Cluster files: every bad input names file, line and field, and says what would be valid."""

from pathlib import Path

import pytest

from remote.inventory import (
    InventoryError,
    default_cluster_path,
    embedded_default_path,
    load_cluster,
    load_cluster_text,
)

GOOD = """\
name: lab-a2
defaults:
  user: root
  port: 22
  workdir: /home/work
nodes:
  - name: node0
    host: 10.0.0.11
    cluster_ip: 192.168.1.1
  - {name: node1, host: 10.0.0.12, port: 2222}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_cluster_text(text, "lab.yaml")
    return [str(p) for p in caught.value.problems]


def test_defaults_apply_and_nodes_override():
    cluster = load_cluster_text(GOOD, "lab.yaml")
    node0, node1 = cluster.nodes
    assert (node0.user, node0.port, node0.cluster_ip) == ("root", 22, "192.168.1.1")
    assert (node1.port, node1.cluster_ip, node1.workdir) == (2222, "10.0.0.12", "/home/work")
    assert node0.transport == "ssh" and node0.devices == 8


def test_unknown_key_suggests_the_nearest_known_key():
    text = GOOD.replace("  port: 22\n", "  prot: 22\n")
    assert problems_of(text) == ["lab.yaml:4: defaults.prot: unknown key; did you mean 'port'?"]


def test_unknown_key_on_a_node_names_its_index_and_line():
    text = GOOD.replace("port: 2222}", "devics: 2}")
    assert problems_of(text) == ["lab.yaml:10: nodes[1].devics: unknown key; did you mean 'devices'?"]


def test_duplicate_node_names_point_at_both_lines():
    text = GOOD.replace("name: node1", "name: node0")
    assert problems_of(text) == [
        "lab.yaml:10: nodes[1].name: duplicate node name 'node0' (first used on line 7)"]


@pytest.mark.parametrize("port", ["0", "70000", "ssh", "true"])
def test_bad_port_says_what_a_port_is(port: str):
    text = GOOD.replace("port: 2222", f"port: {port}")
    [message] = problems_of(text)
    assert message.startswith("lab.yaml:10: nodes[1].port: must be a TCP port, an integer from 1 to 65535")


def test_missing_host_on_an_ssh_node():
    text = GOOD.replace("    host: 10.0.0.11\n", "")
    [message] = problems_of(text)
    assert message.startswith("lab.yaml:7: nodes[0]: missing required field 'host'")


def test_all_problems_are_reported_at_once():
    text = GOOD.replace("  prot", "  port").replace("port: 22\n", "port: -1\n").replace(
        "host: 10.0.0.12", "hots: 10.0.0.12")
    messages = problems_of(text)
    assert len(messages) == 3, messages
    assert any("nodes[1].hots: unknown key; did you mean 'host'?" in m for m in messages)


def test_node_only_field_in_defaults_is_explained():
    text = GOOD.replace("  user: root\n", "  host: 10.0.0.1\n")
    assert problems_of(text) == ["lab.yaml:3: defaults.host: can only be set on a node, not in defaults"]


def test_yaml_syntax_error_has_its_line():
    [message] = problems_of(GOOD.replace("{name: node1", "{name: [node1"))
    assert message.startswith("lab.yaml:1") or message.startswith("lab.yaml:10")
    assert "not valid YAML" in message


def test_duplicate_yaml_key_is_an_error_not_silently_the_last():
    text = GOOD.replace("  workdir: /home/work\n", "  workdir: /home/work\n  user: admin\n")
    assert problems_of(text) == ["lab.yaml:6: defaults.user: duplicate key (first set on line 3)"]


def test_bad_transport_lists_the_choices():
    [message] = problems_of(GOOD.replace("port: 2222", "transport: telnet"))
    assert message == "lab.yaml:10: nodes[1].transport: must be one of ssh, local (got 'telnet')"


def test_unreadable_file(tmp_path: Path):
    with pytest.raises(InventoryError, match="cannot read"):
        load_cluster(tmp_path / "nope.yaml")


def test_embedded_default_is_two_local_nodes_with_separate_workdirs():
    cluster = load_cluster(embedded_default_path())
    assert [n.transport for n in cluster.nodes] == ["local", "local"]
    assert len({n.workdir for n in cluster.nodes}) == 2
    assert all(n.devices == 1 for n in cluster.nodes)


def test_default_cluster_prefers_env_then_user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("ASCEND_CONSOLE_CLUSTER", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_cluster_path() == embedded_default_path()
    user_file = tmp_path / "ascend-console" / "cluster.yaml"
    user_file.parent.mkdir()
    user_file.write_text(GOOD)
    assert default_cluster_path() == user_file
    monkeypatch.setenv("ASCEND_CONSOLE_CLUSTER", str(tmp_path / "other.yaml"))
    assert default_cluster_path() == tmp_path / "other.yaml"


def test_select_by_node_set_and_glob_keeps_cluster_order():
    text = "name: x\nnodes:\n" + "".join(f"  - {{name: node{i}, host: h{i}}}\n" for i in range(6))
    cluster = load_cluster_text(text, "x.yaml")
    assert [n.name for n in cluster.select("node[4,1-2]")] == ["node1", "node2", "node4"]
    assert [n.name for n in cluster.select("node*")] == [f"node{i}" for i in range(6)]
    with pytest.raises(InventoryError, match=r"no node 'nod3'.*did you mean 'node3'"):
        cluster.select("nod3")


def test_example_cluster_files_load():
    for path in Path(embedded_default_path()).parent.glob("*.yaml"):
        assert load_cluster(path).nodes


def test_env_setup_lines_run_cluster_defaults_first_then_the_nodes_own(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "name: lab\n"
        "defaults:\n"
        "  env_setup: |\n"
        "    source /usr/local/Ascend/ascend-toolkit/set_env.sh\n"
        "    export HCCL_CONNECT_TIMEOUT=600\n"
        "nodes:\n"
        "  - {name: a, host: 10.0.0.1, env_setup: ['conda activate ms']}\n"
        "  - {name: b, host: 10.0.0.2}\n"
        "  - {name: c, host: 10.0.0.3, env_setup: 3}\n")
    with pytest.raises(InventoryError) as error:
        load_cluster(path)
    assert "c.yaml:9: nodes[2].env_setup: must be a shell line or a list of them" in str(error.value)
    path.write_text(path.read_text().replace(", env_setup: 3", ""))
    a, b, _ = load_cluster(path).nodes
    assert a.env_setup == ("source /usr/local/Ascend/ascend-toolkit/set_env.sh",
                           "export HCCL_CONNECT_TIMEOUT=600", "conda activate ms")
    assert b.env_setup == a.env_setup[:2]


def test_a_node_name_with_a_trailing_newline_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text('name: lab\nnodes:\n  - {name: "a\\n", host: 10.0.0.1}\n')
    with pytest.raises(InventoryError, match=r"nodes\[0\]\.name"):
        load_cluster(path)


def test_the_embedded_clusters_workdirs_follow_xdg_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    workdirs = [n.workdir for n in load_cluster(embedded_default_path()).nodes]
    assert workdirs == [str(tmp_path / "data" / "ascend-console" / "local" / f"node{i}") for i in (0, 1)]
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    node0 = load_cluster(embedded_default_path()).nodes[0]
    assert node0.workdir == str(tmp_path / "home" / ".local" / "share" / "ascend-console" / "local" / "node0")


def test_a_local_nodes_workdir_takes_variables_and_names_an_unset_one(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SCRATCH", "/scratch/me")
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    text = ("name: x\ndefaults:\n  transport: local\n  workdir: ${SCRATCH}/jobs\nnodes:\n  - name: a\n"
            "  - name: b\n    workdir: $NOPE_NOT_SET/b\n")
    with pytest.raises(InventoryError) as raised:
        load_cluster_text(text, "x.yaml")
    [problem] = raised.value.problems
    assert str(problem).startswith("x.yaml:8: nodes[1].workdir: $NOPE_NOT_SET is not set")
    cluster = load_cluster_text(text.replace("    workdir: $NOPE_NOT_SET/b\n", ""), "x.yaml")
    assert [n.workdir for n in cluster.nodes] == ["/scratch/me/jobs", "/scratch/me/jobs"]


def test_an_ssh_nodes_workdir_is_the_nodes_own_and_never_expanded_here():
    cluster = load_cluster_text("name: x\nnodes:\n  - {name: a, host: h, workdir: $HOME/w}\n", "x.yaml")
    assert cluster.nodes[0].workdir == "$HOME/w"
