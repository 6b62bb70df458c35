"""The wizard's data page and master choice without Textual: where a converted dataset goes and for which
seq_length, where a copy or a hub download lands on the nodes and what a copy will send (said before it
starts), and the chosen master becoming node_rank 0 of the plan (also as `plan --master`)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from console.cli import main
from console.jobs.wizard import TEMPLATES, WizardDraft, read_template
from console.jobs.wizarddata import (
    conversion,
    convert_text,
    convert_workers,
    copy_lines,
    copy_progress,
    fetch_lines,
    on_this_machine,
    plan_copy,
    plan_fetch,
    size_text,
)
from remote.inventory import Cluster, load_cluster, load_cluster_text
from remote.relayplan import NodeProgress
from tests.test_data_convert import word_tokenizer
from tests.test_logs_local import local_cluster

TINY = TEMPLATES / "tiny_local.yaml"


@pytest.fixture(autouse=True)
def own_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASCEND_CONSOLE_STATE", str(tmp_path / "state"))


def test_plan_master_makes_that_node_node_rank_0_and_a_node_not_chosen_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    cluster = str(local_cluster(tmp_path))
    assert main(["-c", cluster, "plan", str(TINY), "--master", "n1", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [(n["node"], n["node_rank"]) for n in plan["nodes"]] == [("n1", 0)]
    assert "--node_rank=0" in plan["nodes"][0]["script"]
    assert main(["-c", cluster, "plan", str(TINY), "--nodes", "n0", "--master", "n1"]) != 0
    assert "'n1' is not one of the nodes chosen (n0)" in capsys.readouterr().err


# --- where things land, said before they start -------------------------------------------------------


def two_machines() -> Cluster:
    return load_cluster_text("name: c\ndefaults:\n  workdir: /srv/work\nnodes:\n"
                             "  - {name: a, host: a, cluster_ip: 10.0.0.1}\n"
                             "  - {name: b, host: b, cluster_ip: 10.0.0.1}\n"
                             "  - {name: c, host: c, cluster_ip: 10.0.0.2}\n", "c.yaml")


def test_sizes_read_as_rsync_says_them():
    assert [size_text(n) for n in (0, 999, 1000, 3_000_000, 1_400_000_000_000)] == [
        "0 B", "999 B", "1.0 kB", "3.0 MB", "1.4 TB"]


def test_a_copy_goes_once_to_each_machine_at_one_path_under_the_first_nodes_workdir(tmp_path: Path):
    weights = tmp_path / "ckpt"
    (weights / "deep").mkdir(parents=True)
    for name, size in (("a.bin", 5000), ("deep/b.bin", 2_500_000), ("c.json", 10), ("d.txt", 1)):
        (weights / name).write_bytes(b"x" * size)
    copy = plan_copy(weights, two_machines().nodes, "weights")
    assert [n.name for n in copy.targets.nodes] == ["a", "c"] and copy.targets.sharing == {"b": "a"}
    assert copy.destination == copy.path_on_nodes == "/srv/work/weights/ckpt"
    assert copy_lines(copy) == [
        "copy 4 file(s), 2.5 MB: deep/b.bin 2.5 MB, a.bin 5.0 kB, c.json 10 B and 1 more",
        "to a, c:/srv/work/weights/ckpt (b shares a's machine and its copy)"]


def test_one_file_lands_in_the_shelf_and_a_dataset_is_named_inside_its_directory(tmp_path: Path):
    (tmp_path / "one.ckpt").write_bytes(b"w")
    nodes = two_machines().nodes[2:]
    single = plan_copy(tmp_path / "one.ckpt", nodes, "weights")
    assert (single.destination, single.path_on_nodes, single.files) == (
        "/srv/work/weights", "/srv/work/weights/one.ckpt", 1)
    assert single.targets.sharing_text() == ""
    dataset = plan_copy(tmp_path, nodes, "datasets", prefix="wiki_128_text_document")
    assert dataset.path_on_nodes == f"/srv/work/datasets/{tmp_path.name}/wiki_128_text_document"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no files to copy"):
        plan_copy(tmp_path / "empty", nodes, "weights")
    with pytest.raises(ValueError, match="no such file or directory"):
        plan_copy(tmp_path / "absent", nodes, "weights")


def test_a_hub_id_is_owner_slash_name_and_lands_under_weights():
    fetch = plan_fetch("MindSpore-Lab/DeepSeek-V3", two_machines().nodes)
    assert fetch.destination == "/srv/work/weights/DeepSeek-V3"
    assert fetch_lines(fetch) == [
        "download MindSpore-Lab/DeepSeek-V3 on a with openmind_hub, then copy to c",
        "to /srv/work/weights/DeepSeek-V3 (b shares a's machine and its copy)"]
    for wrong in ("DeepSeek-V3", "", "a/b/c", "../x", "owner/na me"):
        with pytest.raises(ValueError, match="not a hub repository id"):
            plan_fetch(wrong, two_machines().nodes)


def test_only_local_transport_nodes_are_this_machine(tmp_path: Path):
    assert on_this_machine(load_cluster(local_cluster(tmp_path)).nodes)
    assert not on_this_machine(two_machines().nodes) and not on_this_machine(())


def test_progress_over_the_nodes_adds_their_bytes():
    def at(node: str, state: str, done: int) -> NodeProgress:
        return NodeProgress(node, state, "console" if node == "a" else "a", done, 100, 0, 2, 0, 0.0, None)

    assert copy_progress({"a": at("a", "done", 100), "c": at("c", "sending", 40)}) == (
        140, 200, "a done 100 B/100 B · c sending 40 B/100 B from a")


# --- a text converted for the draft's model ------------------------------------------------------------


def test_a_text_converts_for_the_draft_seq_length_into_a_directory_of_its_own(tmp_path: Path):
    text = tmp_path / "wiki.txt"
    text.write_text(" = T = \n\n" + "".join(f" a b c d e f g h i j {i}\n\n" for i in range(40)))
    template = read_template(TINY)
    tokenizer = word_tokenizer(tmp_path / "t.json")
    draft = WizardDraft(template=str(TINY), data_text=str(text), tokenizer=str(tokenizer))
    draft = draft.with_value("model.model_config.seq_length", "16", template)
    plan = conversion(draft, template)
    assert plan.output_prefix == tmp_path / "wiki_16" / "wiki_16" and plan.seq_length == 16
    assert plan.workers == 1  # a small text: no processes to start
    seen: list[int] = []
    result = convert_text(plan, lambda progress: seen.append(progress.bytes_read))
    assert result.prefix == tmp_path / "wiki_16" / "wiki_16_text_document"
    assert seen[-1] == text.stat().st_size and result.sequences > 0
    assert sorted(p.name for p in result.prefix.parent.iterdir()) == [
        "wiki_16_text_document.bin", "wiki_16_text_document.idx"]  # nothing else: it is copied as it is
    with pytest.raises(ValueError, match="no such text file on this machine"):
        conversion(replace(draft, data_text=str(tmp_path / "absent.txt")), template)


def test_large_texts_are_tokenised_by_a_few_processes():
    assert convert_workers(1 << 20, cpus=64) == 1
    assert convert_workers(1 << 30, cpus=64) == 4
    assert convert_workers(1 << 30, cpus=2) == 2
