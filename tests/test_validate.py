"""Parallel-layout validation: each rule both ways, with the field and the fix in the message."""

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from model.config import JobSpec, ParallelSpec, load_spec, parse_spec
from model.overrides import apply_overrides, parse_override
from model.validate import validate

JOBS = Path(__file__).resolve().parent.parent / "configs" / "jobs"


@pytest.fixture(scope="module")
def tutorial_1b() -> JobSpec:
    return load_spec(JOBS / "pretrain_deepseek3_1b.yaml")


def errors(job: JobSpec, nodes: int = 1, devices: int = 8) -> list[str]:
    return [str(p) for p in validate(job, nodes=nodes, devices_per_node=devices) if p.severity == "error"]


def with_parallel(job: JobSpec, **changes: Any) -> JobSpec:
    return replace(job, parallel=replace(job.parallel, **changes))


def with_model(job: JobSpec, **changes: Any) -> JobSpec:
    return replace(job, model=replace(job.model, **changes))


def test_the_tutorial_1b_config_fits_one_8_npu_node(tutorial_1b: JobSpec):
    assert errors(tutorial_1b) == []


def test_on_two_nodes_it_names_data_parallel_and_the_fix(tutorial_1b: JobSpec):
    [problem] = validate(tutorial_1b, nodes=2, devices_per_node=8)[:1]
    assert problem.path == "parallel_config.data_parallel" and problem.severity == "error"
    assert problem.line is not None and "set data_parallel to 4" in problem.message
    assert "(2 nodes x 8 = 16)" in problem.message


def test_the_671b_template_fits_128_servers_and_not_one():
    job = load_spec(JOBS / "pretrain_deepseek3_671b.yaml")
    assert errors(job, nodes=128) == []
    assert any("8 is not a multiple of the other axes" in e for e in errors(job, nodes=1))


def test_pynative_minus_one_takes_the_rest(tutorial_1b: JobSpec):
    assert errors(with_parallel(tutorial_1b, data_parallel=-1), nodes=2) == []


@pytest.mark.parametrize(("changes", "expected"), [
    ({"expert_parallel": 3}, "expert_num (16) must be divisible by expert_parallel (3)"),
    ({"expert_parallel": 8}, "expert_parallel (8) must divide data_parallel x model_parallel (4)"),
    ({"micro_batch_num": 1}, "micro_batch_num (1) must be at least pipeline_stage (2)"),
    ({"optimizer_weight_shard_size": 3}, "must be -1 (the whole data-parallel group) or a power of two"),
])
def test_parallel_rules(tutorial_1b: JobSpec, changes: dict[str, Any], expected: str):
    found = errors(with_parallel(tutorial_1b, **changes))
    assert any(expected in e for e in found), found


def test_tensor_parallel_must_split_heads_vocab_and_sequence(tutorial_1b: JobSpec):
    job = with_parallel(with_model(tutorial_1b, num_heads=6, vocab_size=129279, seq_length=4097),
                        model_parallel=4, data_parallel=1, expert_parallel=1)
    found = " | ".join(errors(job))
    assert "num_heads (6) must be divisible by model_parallel (4)" in found
    assert "vocab_size (129279) must be divisible by model_parallel (4)" in found
    assert "seq_length (4097) must be divisible by model_parallel (4)" in found


def test_pipeline_and_layer_rules(tutorial_1b: JobSpec):
    deep = with_parallel(tutorial_1b, pipeline_stage=4, data_parallel=1, micro_batch_num=4, expert_parallel=1)
    assert any("pipeline_stage (4) cannot exceed num_layers (3)" in e for e in errors(deep))
    dense = with_model(tutorial_1b, first_k_dense_replace=3)
    assert any("first_k_dense_replace (3) must be below num_layers (3)" in e for e in errors(dense))
    listed = with_model(tutorial_1b, offset=(1, 0, 0))
    assert any("offset must be one number, or 2 numbers" in e for e in errors(listed))
    assert errors(with_model(tutorial_1b, offset=(1, -1))) == []
    uneven = errors(with_model(tutorial_1b, offset=(1, 0)))
    assert any("offset numbers sum to 1 but must sum to 0" in e for e in uneven)
    # 61 layers + 1 MTP over 16 stages: the published offsets sum to the remainder, 14
    job = load_spec(JOBS / "pretrain_deepseek3_671b.yaml")
    assert not [e for e in errors(job, nodes=128) if "offset" in e]
    wrong = errors(with_model(job, offset=(0, *[1] * 13, 0, 0)), nodes=128)
    assert any("sum to 13 but must sum to 14" in e for e in wrong)


def test_an_oversized_optimizer_shard_is_only_a_warning(tutorial_1b: JobSpec):
    [warning] = [p for p in validate(tutorial_1b, nodes=1, devices_per_node=8) if p.severity == "warning"]
    assert warning.path == "parallel.parallel_optimizer_config.optimizer_weight_shard_size"
    assert "sharded over 2 devices only" in warning.message


def test_defaulted_fields_are_named_as_the_research_layout_names_them():
    job = load_spec(JOBS / "pretrain_deepseek3_1b.yaml")
    job = replace(job, parallel=ParallelSpec(data_parallel=3), locations={})
    [problem] = [p for p in validate(job, nodes=1, devices_per_node=8) if p.severity == "error"]
    assert problem.path == "parallel_config.data_parallel" and problem.line is None


def test_moe_routing_shapes(tutorial_1b: JobSpec):
    grouped = with_model(tutorial_1b, topk_method="group_limited_greedy")
    found = " | ".join(errors(with_model(grouped, n_routed_experts=12)))
    assert "expert_num (12) must be divisible by n_group (8)" in found
    wide = " ".join(errors(with_model(grouped, topk_group=9)))
    assert "topk_group (9) cannot exceed n_group (8)" in wide
    too_many = errors(with_model(grouped, num_experts_per_tok=9))
    assert any("top-k (9) is more than the experts in the 4 chosen group(s) (8)" in e for e in too_many)


def test_a_research_file_routing_greedily_only_warns_about_its_unused_groups(tutorial_1b: JobSpec):
    """MindFormers' research MoE routes by groups only with topk_method group_limited_greedy or noaux_tc:
    without one (its 4-layer DeepSeek-V3 sample sets n_group 8 for 4 experts) the sizes are not its
    problem, only the model style's."""
    greedy = with_model(tutorial_1b, n_routed_experts=12)
    assert greedy.model.topk_method is None and errors(greedy) == []
    warnings = [p for p in validate(greedy, nodes=1, devices_per_node=8) if "group" in p.message]
    assert any("must be divisible by n_group (8)" in w.message for w in warnings)
    note = "MindFormers does not use n_group with topk_method greedy"
    assert all(w.severity == "warning" and note in w.message for w in warnings)


def test_nested_offsets_need_interleave_and_minus_one_dp_still_checks_experts(tutorial_1b: JobSpec):
    nested = with_model(tutorial_1b, offset=((0, 0), (0, 0)))
    assert any("offset must be one number, or 2 numbers" in e for e in errors(nested))
    rest = with_parallel(tutorial_1b, data_parallel=-1, expert_parallel=8)
    expected = "expert_parallel (8) must divide data_parallel x model_parallel (4)"
    assert any(expected in e for e in errors(rest))


PYNATIVE_1B = Path(__file__).resolve().parent / "samples" / "configs" / "deepseek3_1b_pynative.yaml"


def pynative_job(*overrides: str) -> JobSpec:
    text = apply_overrides(PYNATIVE_1B.read_text(), str(PYNATIVE_1B), [parse_override(o) for o in overrides])
    return parse_spec(text, str(PYNATIVE_1B))


def test_the_pynative_sample_is_valid_on_one_8_npu_node():
    assert errors(pynative_job()) == []


def test_pynative_auto_placement_needs_layers_that_split_evenly():
    [problem] = [p for p in validate(pynative_job("parallelism.pipeline_parallel_layers_per_stage=auto"),
                                     nodes=1, devices_per_node=8) if p.severity == "error"]
    assert problem.path == "parallelism.pipeline_parallel_layers_per_stage" and problem.line is not None
    assert "num_hidden_layers (3) does not split evenly over 2" in problem.message
    assert "['0-1', '2']" in problem.message
    assert errors(pynative_job("parallelism.pipeline_parallel_layers_per_stage=auto",
                               "model.num_hidden_layers=4")) == []


def test_pynative_micro_batches_too_few_for_the_pipeline_name_global_batch_size():
    job = pynative_job("training.global_batch_size=2")
    [problem] = [p for p in validate(job, nodes=1, devices_per_node=8) if p.severity == "error"]
    assert problem.path == "training.global_batch_size" and problem.line is not None
    assert "micro_batch_num (1) must be at least pipeline_stage (2)" in problem.message
    assert "2 // (2 x 1)" in problem.message and problem.message.endswith("raise global_batch_size")
