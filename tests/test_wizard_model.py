"""The launch wizard's model: a draft comes to overrides `derive` takes, problems per field with the fix,
the estimate per stage, the diff against the template, and the draft kept between sessions."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from console.jobs.wizard import (
    TEMPLATES,
    WizardDraft,
    derived_text,
    job_templates,
    overrides,
    read_template,
    request_for,
)
from console.jobs.wizardcheck import (
    Fix,
    check_draft,
    chosen_nodes,
    estimate_lines,
    input_paths,
    suggested_fix,
)
from console.jobs.wizardfiles import diff_text, discard_draft, load_draft, save_derived, save_draft
from model.overrides import derive
from remote.inventory import Cluster, load_cluster_text

TINY = TEMPLATES / "tiny_local.yaml"
BIG = TEMPLATES / "pretrain_deepseek3_1b.yaml"
PYNATIVE = Path(__file__).parent / "samples" / "configs" / "deepseek3_1b_pynative.yaml"


def cluster(nodes: int, devices: int) -> Cluster:
    body = "".join(f"  - name: n{i}\n    host: h{i}\n" for i in range(nodes))
    return load_cluster_text(f"name: c\ndefaults:\n  devices: {devices}\nnodes:\n{body}", "c.yaml")


def test_the_shipped_templates_are_listed_with_their_dialect_and_size():
    found = {t.path.name: t for t in job_templates()}
    assert {"tiny_local.yaml", "pretrain_deepseek3_1b.yaml", "pretrain_deepseek3_671b.yaml"} <= set(found)
    assert found["tiny_local.yaml"].dialect.value == "research"
    assert found["pretrain_deepseek3_671b.yaml"].params > 600e9


def test_fields_are_found_where_each_dialect_keeps_them():
    research = {s.field.key: s for s in read_template(TINY).slots()}
    assert research["parallel.data_parallel"].path == "parallel_config.data_parallel"
    assert research["parallel.data_parallel"].value == "2"
    assert research["model.n_routed_experts"].path == "moe_config.expert_num"
    assert research["schedule.warmup_steps"].value == "20"
    assert "parallel.optimizer_weight_shard_size" not in research  # no `parallel:` to add it under
    pynative = {s.field.key: s.path for s in read_template(PYNATIVE).slots()}
    assert pynative["parallel.data_parallel"] == "parallelism.data_parallel_shard"
    assert pynative["schedule.steps"] == "training.steps"


def test_a_draft_comes_to_overrides_in_a_stable_order_and_typing_back_the_template_value_forgets_it():
    template = read_template(TINY)
    draft = WizardDraft(kind="finetune", template=str(TINY))
    draft = draft.with_value("model.model_config.seq_length", "64", template)
    draft = draft.with_value("parallel_config.data_parallel", "4", template)
    draft = replace(draft, data_prefix="/data/wiki_text_document", weights="/ckpt/it's")
    assert overrides(draft, template) == (
        "run_mode=finetune",
        "parallel_config.data_parallel=4",
        "model.model_config.seq_length=64",
        "train_dataset.data_loader.config.seq_length=64",
        "train_dataset.data_loader.config.data_path=['1', '/data/wiki_text_document']",
        "load_checkpoint='/ckpt/it''s'",
    )
    assert draft.with_value("parallel_config.data_parallel", "2", template).values == {
        "model.model_config.seq_length": "64"}
    text = derived_text(draft, template)
    assert "load_checkpoint: '/ckpt/it''s'" in text and "run_mode: 'finetune'" in text


def test_saving_the_derived_config_gives_exactly_the_bytes_derive_gives(tmp_path: Path):
    template = read_template(BIG)
    draft = WizardDraft(template=str(BIG)).with_value("parallel_config.data_parallel", "4", template)
    draft = replace(draft.with_value("lr_schedule.learning_rate", "1.0e-4", template), data_prefix="/d/x")
    saved = save_derived(draft, template, tmp_path / "mine.yaml")
    assert saved.read_bytes() == derive(BIG, list(overrides(draft, template))).encode("utf-8")
    assert "# hidden_size" in saved.read_text() or "#" in saved.read_text().split("\n", 20)[-1]


def test_the_request_carries_the_same_template_overrides_nodes_and_port():
    template = read_template(TINY)
    draft = replace(WizardDraft(template=str(TINY)), nodes=("n0", "n1"), master_port=9000)
    request = request_for(draft.with_value("parallel_config.micro_batch_num", "2", template), template)
    assert (request.template, request.overrides, request.nodes, request.port) == (
        TINY, ("parallel_config.micro_batch_num=2",), "n0,n1", 9000)


def test_a_layout_that_does_not_fill_the_nodes_is_a_problem_at_data_parallel_with_the_fix():
    template = read_template(TINY)  # dp 2 on one device each
    draft = WizardDraft(template=str(TINY))
    nodes = chosen_nodes(draft, cluster(4, 1))
    check = check_draft(draft, template, nodes)
    assert not check.launchable
    [problem] = check.at("parallel_config.data_parallel")
    assert problem.severity == "error" and "must equal the devices" in problem.message
    assert problem.fix == Fix("parallel_config.data_parallel", "4")
    assert str(problem.fix) == "set data_parallel to 4"
    fixed = draft.with_value(problem.fix.path, problem.fix.value, template)
    assert check_draft(fixed, template, nodes).launchable


def test_experts_not_divisible_suggest_the_largest_valid_expert_parallel_below():
    template = read_template(TINY)  # 8 experts
    draft = WizardDraft(template=str(TINY)).with_value("parallel_config.expert_parallel", "3", template)
    check = check_draft(draft, template, cluster(2, 1).nodes)
    fixes = [p.fix for p in check.at("parallel_config.expert_parallel")]
    assert Fix("parallel_config.expert_parallel", "2") in fixes
    message = "micro_batch_num (1) must be at least pipeline_stage (2); set it to 2 or more"
    assert suggested_fix("a.b", message, "a: {b: 1}") == Fix("a.b", "2")


def test_an_override_refused_by_derive_is_a_problem_at_its_field():
    template = read_template(TINY)
    draft = WizardDraft(template=str(TINY), values={"parallel_config.data_parallel": "[unclosed"})
    check = check_draft(draft, template, cluster(2, 1).nodes)
    assert check.text is None and not check.launchable
    assert check.at("parallel_config.data_parallel")


def test_the_estimate_gives_params_and_memory_per_stage_with_fits_or_not():
    template = read_template(BIG)  # pp 2, dp 2, mp 2 on 8 devices
    draft = WizardDraft(template=str(BIG), data_prefix="/d/x")
    check = check_draft(draft, template, cluster(1, 8).nodes)
    assert check.estimate is not None and check.estimate.fits and len(check.estimate.stages) == 2
    lines = estimate_lines(check.estimate)
    assert "params" in lines[0] and lines[1].startswith("  stage 0:") and lines[1].endswith("fits")
    huge = draft.with_value("model.model_config.hidden_size", "16384", template)
    huge = huge.with_value("model.model_config.num_layers", "41", template)
    big = check_draft(huge, template, cluster(1, 8).nodes)
    assert big.estimate is not None and not big.estimate.fits and not big.launchable
    assert any("does not fit by" in line for line in estimate_lines(big.estimate))


def test_serving_kinds_are_sized_for_serving():
    template = read_template(TINY)
    check = check_draft(WizardDraft(kind="serve", template=str(TINY)), template, cluster(2, 1).nodes)
    assert check.estimate is not None and not check.estimate.training


def test_the_diff_shows_the_changed_lines_against_the_template_with_its_comments():
    template = read_template(TINY)
    draft = WizardDraft(template=str(TINY)).with_value("parallel_config.data_parallel", "4", template)
    diff = diff_text(template, derived_text(draft, template))
    assert diff.startswith("--- tiny_local.yaml\n+++ derived.yaml\n")
    assert "-  data_parallel: 2\n+  data_parallel: 4\n" in diff
    assert "+# Derived from tiny_local.yaml with:\n" in diff
    assert "two ranks, one per node" in diff or "-" in diff  # context keeps comments


def test_input_paths_are_the_dataset_files_and_the_weights():
    template = read_template(BIG)
    assert input_paths(WizardDraft(template=str(BIG)), template) == [
        "/path/wiki103-megatron_text_document.bin", "/path/wiki103-megatron_text_document.idx"]
    draft = replace(WizardDraft(template=str(BIG)), data_prefix="/d/x", weights="/w/ds")
    assert input_paths(draft, template) == ["/d/x.bin", "/d/x.idx", "/w/ds"]


def test_a_draft_is_kept_in_the_state_dir_and_offered_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ASCEND_CONSOLE_STATE", str(tmp_path / "state"))
    assert load_draft() is None
    draft = WizardDraft(kind="smoke", template=str(TINY), values={"a.b": "1"}, data_prefix="/d",
                        data_text="/here/wiki.txt", tokenizer="/here/tokenizer.json", weights="/w",
                        weights_here="/here/ckpt", weights_hub="owner/name", nodes=("n0", "n1"), master="n1",
                        master_port=8200, page=3)
    path = save_draft(draft)
    assert path == tmp_path / "state" / "wizard-draft.json"
    assert load_draft() == draft
    discard_draft()
    assert load_draft() is None


def test_a_draft_saved_before_the_data_and_master_fields_reads_them_back_empty():
    older: dict[str, object] = {"kind": "pretrain", "template": str(TINY), "values": {}, "data_prefix": "/d",
                                "weights": "", "nodes": ["n0"], "master_port": None, "page": 3}
    draft = WizardDraft.from_json(older)
    assert (draft.data_prefix, draft.data_text, draft.weights_hub, draft.master) == ("/d", "", "", "")
    assert draft.master_node == "n0"


def test_the_master_is_the_node_marked_while_chosen_else_the_first_chosen():
    template = read_template(TINY)
    draft = WizardDraft(template=str(TINY), nodes=("n0", "n1"), master="n1")
    assert request_for(draft, template).master == "n1"
    assert replace(draft, nodes=("n0",)).master_node == "n0"  # n1 no longer chosen
    assert request_for(replace(draft, nodes=()), template).master is None  # every node, the first master
    with pytest.raises(ValueError, match="not text fields of a draft"):
        draft.with_texts({"nodes": "n0"})


def test_a_broken_draft_is_not_offered(tmp_path: Path):
    (tmp_path / "wizard-draft.json").write_text(json.dumps({"kind": "bake", "template": "x"}))
    assert load_draft(tmp_path) is None
    (tmp_path / "wizard-draft.json").write_text("{not json")
    assert load_draft(tmp_path) is None


def test_a_predict_draft_asks_for_a_predict_job_with_its_prompt_and_checkpoint():
    template = read_template(TINY)
    draft = WizardDraft(kind="predict", template=str(TINY), weights="/w/ckpt/tiny_rank_0-1_20.ckpt",
                        prompt="Return the number of")
    request = request_for(draft, template)
    assert (request.kind, request.prompts, request.checkpoint) == (
        "predict", ("Return the number of",), "/w/ckpt/tiny_rank_0-1_20.ckpt")
    assert request_for(replace(draft, kind="serve"), template).kind == "serve"
    trained = request_for(replace(draft, kind="pretrain"), template)
    assert (trained.kind, trained.prompts, trained.checkpoint) == ("train", (), None)
