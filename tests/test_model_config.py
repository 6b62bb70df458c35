"""MindFormers config dialects into one spec, and derived configs that keep comments and anchors."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from model.config import Dialect, JobSpec, Location, ModelSpec, load_spec, parse_spec
from model.estimate import layers_per_stage
from model.overrides import TUTORIAL_1B_OVERRIDES, apply_overrides, derive, parse_override
from model.validate import offset_problem
from model.yamlsource import SourceError

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_671B = ROOT / "configs" / "jobs" / "pretrain_deepseek3_671b.yaml"
DERIVED_1B = ROOT / "configs" / "jobs" / "pretrain_deepseek3_1b.yaml"
SAMPLES = Path(__file__).resolve().parent / "samples" / "configs"
MCORE_1B = SAMPLES / "deepseek3_1b_mcore.yaml"
PYNATIVE_1B = SAMPLES / "deepseek3_1b_pynative.yaml"


def comments(text: str) -> list[str]:
    """Every comment in a file, as written (none of ours has a '#' inside a string)."""
    return [line[line.index("#"):] for line in text.splitlines() if "#" in line]


def layers_per_stage_of(spec: JobSpec) -> tuple[int, ...]:
    return layers_per_stage(spec.model, spec.parallel.pipeline_stage)


def derive_text(path: Path, overrides: list[str]) -> str:
    return apply_overrides(path.read_text(), str(path), [parse_override(o) for o in overrides])


# --- dialects ---------------------------------------------------------------------------------------


def test_the_671b_template_is_deepseek_v3_as_published():
    spec = load_spec(TEMPLATE_671B)
    assert spec.dialect is Dialect.RESEARCH
    assert spec.model == dataclasses.replace(ModelSpec(), offset=(*[1] * 15, -1))
    published = (61, 7168, 128, 129280, 18432, 1536, 512, 128, 64, 128, 256, 1, 8, 2048, 3, 8, 4)
    m = spec.model
    assert (m.num_layers, m.hidden_size, m.num_heads, m.vocab_size, m.intermediate_size, m.q_lora_rank,
            m.kv_lora_rank, m.qk_nope_head_dim, m.qk_rope_head_dim, m.v_head_dim, m.n_routed_experts,
            m.n_shared_experts, m.num_experts_per_tok, m.moe_intermediate_size, m.first_k_dense_replace,
            m.n_group, m.topk_group) == published
    assert (m.scoring_func, m.routed_scaling_factor, m.mtp_depth) == ("sigmoid", 2.5, 1)
    # every architecture field is in the file; topk_method too is left out by MindFormers' published 671b
    assert {name for name in spec.defaulted if name.startswith("model.")} == {"model.topk_method"}
    p = spec.parallel
    assert p.data_parallel * p.model_parallel * p.pipeline_stage == 128 * 8


@pytest.mark.parametrize("path", [MCORE_1B, PYNATIVE_1B], ids=["mcore", "pynative"])
def test_every_dialect_reads_the_tutorial_1b_model_into_the_same_spec(path: Path):
    research = load_spec(DERIVED_1B)
    other = load_spec(path)
    assert research.dialect is Dialect.RESEARCH
    # offsets differ by dialect (mcore places num_hidden_layers only, MTP apart): the stages they make agree
    assert dataclasses.replace(other.model, offset=0) == dataclasses.replace(research.model, offset=0)
    assert layers_per_stage(other.model, other.parallel.pipeline_stage, mtp_placed=other.mtp_placed) == \
        layers_per_stage(research.model, research.parallel.pipeline_stage) == (2, 1)
    shared = ("data_parallel", "model_parallel", "pipeline_stage", "expert_parallel", "context_parallel",
              "use_seq_parallel", "micro_batch_num")
    assert [getattr(other.parallel, n) for n in shared] == [getattr(research.parallel, n) for n in shared]
    for name in ("batch_size", "params_dtype", "compute_dtype", "recompute", "max_device_memory",
                 "data_path", "lr_schedule"):
        assert getattr(other.training, name) == getattr(research.training, name), name


def test_mcore_reads_like_research_down_to_the_parallel_and_training_fields():
    research, mcore = load_spec(DERIVED_1B), load_spec(MCORE_1B)
    assert mcore.dialect is Dialect.MCORE
    # except vocab_emb_dp: mcore always splits the vocabulary over tensor parallel
    assert research.parallel.vocab_emb_dp and not mcore.parallel.vocab_emb_dp
    assert (dataclasses.replace(mcore.parallel, vocab_emb_dp=True), mcore.training) == (
        research.parallel, research.training)


def test_research_vocab_emb_dp_defaults_to_mindformers_true():
    text = "model:\n  model_config:\n    num_layers: 4\n    hidden_size: 1024\n    num_heads: 16\n"
    spec = parse_spec(text, "r.yaml")
    assert spec.parallel.vocab_emb_dp and "parallel.vocab_emb_dp" in spec.derived
    off = parse_spec(derive_text(TEMPLATE_671B, ["parallel_config.vocab_emb_dp=False"]), "r.yaml")
    assert not off.parallel.vocab_emb_dp and "parallel.vocab_emb_dp" not in off.derived


def test_a_per_stage_recompute_list_is_read_per_stage():
    published = "[3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 3, 2, 0]"
    spec = parse_spec(derive_text(TEMPLATE_671B, [f"recompute_config.recompute={published}"]), "r.yaml")
    assert spec.training.full_recompute_layers == (3, *[4] * 12, 3, 2, 0)
    assert spec.training.recompute == "none"  # the other layers: select_recompute is False
    assert load_spec(TEMPLATE_671B).training.full_recompute_layers is None
    with pytest.raises(SourceError, match="recompute: expected True/False or a list of layer counts"):
        parse_spec(derive_text(TEMPLATE_671B, ["recompute_config.recompute=[1, x]"]), "r.yaml")


def test_the_pynative_dialect_says_what_it_left_out_and_what_it_computed():
    spec = load_spec(PYNATIVE_1B)
    assert spec.dialect is Dialect.PYNATIVE
    assert "parallel.optimizer_weight_shard_size" in spec.defaulted
    assert spec.training.global_batch_size == 8
    line = PYNATIVE_1B.read_text().splitlines().index("  data_parallel_shard: 2 # -1 = whatever devices "
                                                      "the other axes leave") + 1
    assert spec.location("parallel.data_parallel") == Location("parallelism.data_parallel_shard", line)
    computed = {"parallel.micro_batch_num", "parallel.use_seq_parallel", "model.offset"}
    assert computed <= spec.derived.keys() and not computed & spec.defaulted.keys()
    assert "8 // (2 x 1)" in spec.derived["parallel.micro_batch_num"]
    where = spec.location("parallel.micro_batch_num")
    assert where is not None and where.path == "training.global_batch_size"


def pynative(*overrides: str) -> JobSpec:
    return parse_spec(derive_text(PYNATIVE_1B, list(overrides)), "p.yaml")


@pytest.mark.parametrize(("mode", "level"), [("None", "none"), ("null", "none"), ("full", "full"),
                                             ("select", "selective")])
def test_pynative_recompute_is_recompute_mode(mode: str, level: str):
    assert pynative(f"recompute.mode={mode}").training.recompute == level


def test_pynative_recompute_mode_names_the_valid_values():
    with pytest.raises(SourceError, match=r"recompute.mode: expected None, 'full' or 'select', got 'select"):
        pynative("recompute.mode=selective")


def test_pynative_sequence_parallel_follows_tensor_parallel_not_its_switch():
    assert pynative("parallelism.sequence_parallel=False").parallel.use_seq_parallel is True
    alone = pynative("parallelism.tensor_parallel=1", "parallelism.sequence_parallel=True")
    assert alone.parallel.use_seq_parallel is False
    assert "tensor_parallel 1" in alone.derived["parallel.use_seq_parallel"]


def test_pynative_micro_batches_come_from_the_batch_sizes_when_dp_is_known():
    spec = pynative("training.global_batch_size=32", "training.local_batch_size=2")
    assert spec.parallel.micro_batch_num == 8
    unknown = pynative("parallelism.data_parallel_shard=-1")
    assert "parallel.micro_batch_num" in unknown.defaulted
    assert "parallel.micro_batch_num" not in unknown.derived


@pytest.mark.parametrize(("value", "layers", "counts"), [
    ('["0-1", "2"]', 3, (2, 1)),
    ('["0", "1-2"]', 3, (1, 2)),
    ("[1, 2]", 3, (1, 2)),
    ("auto", 4, (2, 2)),
    ("null", 6, (3, 3)),
])
def test_pynative_layers_per_stage_place_the_layers(value: str, layers: int, counts: tuple[int, ...]):
    spec = pynative(f"parallelism.pipeline_parallel_layers_per_stage={value}",
                    f"model.num_hidden_layers={layers}")
    assert layers_per_stage_of(spec) == counts
    assert offset_problem(spec.model, spec.parallel) is None  # research-era offsets that MindFormers accepts


def test_pynative_interleaved_ranges_become_one_offset_row_per_chunk():
    spec = pynative("parallelism.pipeline_parallel_layers_per_stage=['0-1,4', '2-3,5']",
                    "parallelism.pipeline_parallel_interleave_num=2", "model.num_hidden_layers=6")
    # 6 + 1 MTP layers over 4 slots: 1 each, plus the offsets; the MTP layer joins the last slot
    assert spec.model.offset == ((1, 1), (0, 1))
    assert offset_problem(spec.model, spec.parallel) is None


@pytest.mark.parametrize(("value", "expected"), [
    ('["0-2"]', "has 1 entries; pipeline_parallel is 2: give one per pipeline stage"),
    ('["0-1", "3"]', "stage 1 chunk 0 starts at layer 3, but layer 2 is next"),
    ('["0-1", "2-3"]', "the stages hold 4 layers, but num_hidden_layers is 3"),
    ('["0-1,2", "3"]', "every stage needs the same number of comma-separated chunks"),
    ('["0-x", "2"]', "'0-x' is not a layer range"),
    ("[[0, 1], [2]]", "expected 'auto', a list with one 'start-end' range string per pipeline stage"),
])
def test_bad_pynative_layers_per_stage_say_what_is_valid(value: str, expected: str):
    with pytest.raises(SourceError) as caught:
        pynative(f"parallelism.pipeline_parallel_layers_per_stage={value}")
    assert "parallelism.pipeline_parallel_layers_per_stage: " in str(caught.value)
    assert expected in str(caught.value)


def test_fields_left_out_take_the_model_classs_defaults_and_are_recorded():
    text = "model:\n  model_config:\n    num_layers: 4\n    hidden_size: 1024\n    num_heads: 16\n"
    spec = parse_spec(text, "small.yaml")
    # the research-era classes: DeepseekV3Config's MLA sizes are 671B's, MoEConfig's are one expert
    assert spec.model.kv_lora_rank == 512 and spec.model.n_routed_experts == 1
    assert spec.model.seq_length == 2048 and spec.model.mtp_depth == 0
    assert spec.defaulted["model.kv_lora_rank"] == "class default"
    assert "model.num_layers" not in spec.defaulted
    assert spec.defaulted["parallel.data_parallel"] == "MindFormers default"
    loc = spec.location("model.num_layers")
    assert loc is not None and (loc.path, loc.line) == ("model.model_config.num_layers", 3)
    assert spec.location("model.kv_lora_rank") is None


def test_the_research_dialect_maps_its_own_names():
    text = (
        "model:\n  model_config:\n    num_layers: 4\n    hidden_size: 1024\n    num_heads: 16\n"
        "    param_init_type: bfloat16\n    offset: [1, -1]\n"
        "moe_config:\n  use_gating_sigmoid: False\n  expert_num: 8\n  num_experts_chosen: 2\n"
        "recompute_config:\n  recompute: [0, 0]\n  select_recompute: True\n"
    )
    spec = parse_spec(text, "r.yaml")
    assert (spec.model.scoring_func, spec.model.n_routed_experts, spec.model.num_experts_per_tok) == (
        "softmax", 8, 2)
    assert spec.model.offset == (1, -1)
    assert (spec.training.params_dtype, spec.training.recompute) == ("bfloat16", "selective")


def test_mcore_offset_is_one_list_per_interleave_chunk():
    text = MCORE_1B.read_text().replace("pp_interleave_num: 1", "pp_interleave_num: 2").replace(
        "offset: [1, 0]", "offset: [[1, 0], [0, -1]]")
    spec = parse_spec(text, "mcore.yaml")
    assert spec.model.offset == ((1, 0), (0, -1))
    assert spec.parallel.pp_interleave_num == 2


def test_data_prefixes_drop_the_blend_weights():
    spec = load_spec(DERIVED_1B)
    assert spec.training.data_prefixes == ("/path/wiki103-megatron_text_document",)
    assert dataclasses.replace(spec.training, data_path=("/a", "/b")).data_prefixes == ("/a", "/b")


def test_a_spec_is_frozen():
    spec: JobSpec = load_spec(DERIVED_1B)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.model.num_layers = 4  # type: ignore[misc]


# --- derived configs --------------------------------------------------------------------------------


def test_the_1b_config_is_the_671b_template_with_the_tutorial_overrides():
    assert derive(TEMPLATE_671B, TUTORIAL_1B_OVERRIDES) == DERIVED_1B.read_text()


def test_the_tutorial_overrides_give_the_tutorial_model():
    spec = load_spec(DERIVED_1B)
    m, p = spec.model, spec.parallel
    assert (m.hidden_size, m.num_layers, m.num_heads, m.intermediate_size, m.offset) == (2048, 3, 8, 6144, 0)
    assert (m.n_routed_experts, m.first_k_dense_replace) == (16, 1)
    assert (p.data_parallel, p.model_parallel, p.pipeline_stage, p.expert_parallel) == (2, 2, 2, 2)
    assert (p.micro_batch_num, p.optimizer_weight_shard_size) == (4, 8)
    assert spec.training.lr_schedule == "ConstantWarmUpLR"
    lr = yaml.safe_load(DERIVED_1B.read_text())["lr_schedule"]
    assert lr["warmup_steps"] == 20


def test_no_overrides_writes_the_template_back_unchanged():
    text = derive(TEMPLATE_671B, [])
    assert text.split("\n", 2)[2] == TEMPLATE_671B.read_text()
    for sample in (MCORE_1B, PYNATIVE_1B):
        assert derive_text(sample, []) == sample.read_text()


@pytest.mark.parametrize(("path", "overrides", "expected"), [
    (TEMPLATE_671B, ["model.model_config.num_layers=5", "parallel_config.use_seq_parallel=False",
                     "model.model_config.offset=[1, 0, 0]", "context.max_device_memory=56GB"],
     {"model.num_layers": 5, "parallel.use_seq_parallel": False, "model.offset": (1, 0, 0),
      "training.max_device_memory": "56GB"}),
    (MCORE_1B, ["model.model_config.num_hidden_layers=7", "model.model_config.scoring_func=softmax",
                "train_dataset.data_loader.config.data_path[1]=/data/other_text_document"],
     {"model.num_layers": 7, "model.scoring_func": "softmax",
      "training.data_path": ("1", "/data/other_text_document")}),
    (PYNATIVE_1B, ["parallelism.data_parallel_shard=-1", "model.routed_scaling_factor=1.5",
                   "training.global_batch_size=64"],
     {"parallel.data_parallel": -1, "model.routed_scaling_factor": 1.5, "training.global_batch_size": 64}),
], ids=["research", "mcore", "pynative"])
def test_round_trip_gives_the_overrides_and_keeps_every_comment(path: Path, overrides, expected):
    original = path.read_text()
    written = derive_text(path, overrides)
    spec = parse_spec(written, "derived.yaml")
    for name, value in expected.items():
        section, field = name.split(".")
        assert getattr(getattr(spec, section), field) == value, name
    assert comments(written) == comments(original)
    # nothing but the overridden lines changed
    assert len(written.splitlines()) == len(original.splitlines())
    pairs = zip(original.splitlines(), written.splitlines(), strict=True)
    changed = [new for old, new in pairs if old != new]
    assert len(changed) == len(overrides)


def test_overriding_an_anchored_value_keeps_its_aliases_linked():
    written = derive_text(TEMPLATE_671B, ["model.model_config.num_layers=5", "moe_config.expert_num=32"])
    assert "num_layers: &num_layers 5" in written and "num_layers: *num_layers" in written
    assert "expert_num: &expert_num 32" in written and "expert_num: *expert_num" in written
    callback = yaml.safe_load(written)["callbacks"][1]
    assert (callback["type"], callback["num_layers"], callback["expert_num"]) == (
        "TopkBiasBalanceCallback", 5, 32)


def test_booleans_are_written_the_mindformers_way():
    written = derive_text(TEMPLATE_671B, ["recompute_config.recompute=false"])
    assert "  recompute: False\n" in written and "  select_recompute: False\n" in written
    assert "true" not in written and "false" not in written


@pytest.mark.parametrize(("text", "written", "read"), [
    ("1e-5", "1.0e-5", 1e-5), ("2E4", "2.0e+4", 2e4), ("1.5e-3", "1.5e-3", 1.5e-3), ("yes", "True", True),
    ("off", "False", False), ("'yes'", "'yes'", "yes"), ("0.001", "0.001", 0.001),
])
def test_override_scalars_are_written_so_mindformers_reads_what_was_meant(text: str, written: str, read):
    derived = derive_text(TEMPLATE_671B, [f"lr_schedule.learning_rate={text}"])
    assert f"  learning_rate: {written}\n" in derived
    assert yaml.safe_load(derived)["lr_schedule"]["learning_rate"] == read


# --- bad input --------------------------------------------------------------------------------------


def error_of(text: str, tmp_path: Path) -> str:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    with pytest.raises(SourceError) as caught:
        load_spec(path)
    return str(caught.value)


def test_malformed_yaml_names_file_and_line(tmp_path: Path):
    message = error_of("model:\n  model_config:\n    num_layers: [3\n    hidden_size: 2\n", tmp_path)
    assert re.match(rf"{re.escape(str(tmp_path / 'job.yaml'))}:\d+: not valid YAML", message), message


def test_a_wrong_type_names_file_line_and_field(tmp_path: Path):
    text = "model:\n  model_config:\n    num_layers: three\n    hidden_size: 2048\n    num_heads: 8\n"
    message = error_of(text, tmp_path)
    assert message == (f"{tmp_path / 'job.yaml'}:3: model.model_config.num_layers: "
                       "expected an integer, got 'three'")


def test_every_wrong_field_is_reported_at_once(tmp_path: Path):
    text = ("model:\n  model_config:\n    num_layers: 3\n    hidden_size: 2.5\n    num_heads: 8\n"
            "parallel_config:\n  use_seq_parallel: yes please\n")
    lines = error_of(text, tmp_path).splitlines()
    assert [line.split(": ", 2)[1] for line in lines] == [
        "model.model_config.hidden_size", "parallel_config.use_seq_parallel"]
    assert lines[0].startswith(f"{tmp_path / 'job.yaml'}:4: ")


def test_an_unknown_dialect_is_one_clear_error(tmp_path: Path):
    message = error_of("trainer:\n  type: CausalLanguageModelingTrainer\n", tmp_path)
    assert message.startswith(f"{tmp_path / 'job.yaml'}:1: unknown config dialect")
    assert "model.model_config" in message and "parallelism" in message


def test_a_left_out_architecture_field_is_the_model_classs_default_not_an_error():
    text = "seed: 0\nmodel:\n  model_config:\n    num_layers: 3\n    hidden_size: 2048\n"
    spec = parse_spec(text, "job.yaml")
    assert spec.model.num_heads == 32  # research/deepseek3/deepseek3_config.py's default
    assert spec.defaulted["model.num_heads"] == "class default"


def test_a_section_of_the_wrong_shape_is_reported_once(tmp_path: Path):
    text = ("model:\n  model_config:\n    num_layers: 3\n    hidden_size: 2048\n    num_heads: 8\n"
            "moe_config: 16\n")
    message = error_of(text, tmp_path)
    assert message == f"{tmp_path / 'job.yaml'}:6: moe_config: expected a mapping, got 16 (int)"


def test_an_unknown_override_path_names_the_nearest_key():
    with pytest.raises(SourceError) as caught:
        derive(TEMPLATE_671B, ["model.model_config.num_layer=3"])
    line = TEMPLATE_671B.read_text().splitlines().index("  model_config:") + 1
    assert str(caught.value) == (
        f"{TEMPLATE_671B}:{line}: model.model_config.num_layer: no key 'num_layer' under model.model_config; "
        "nearest existing key: model.model_config.num_layers")


@pytest.mark.parametrize(("override", "expected"), [
    ("model.model_config.num_layers", "expected PATH=VALUE"),
    ("model..x=1", "expected PATH=VALUE"),
    ("model.model_config.offset=[1, 2", "value is not valid YAML"),
    ("callbacks[7].type=X", "callbacks has 3 items; no index 7"),
    ("seed.x=1", "seed is a value; cannot take 'x'"),
    ("zzz=1", "no key 'zzz' under the top level; it has: seed,"),
])
def test_bad_overrides_say_what_is_wrong(override: str, expected: str):
    with pytest.raises(SourceError) as caught:
        derive(TEMPLATE_671B, [override])
    assert expected in str(caught.value)


def test_several_bad_overrides_are_reported_together_and_nothing_is_returned():
    with pytest.raises(SourceError) as caught:
        derive(TEMPLATE_671B, ["moe_config.expert_nums=8", "parallel_config.pipeline=4"])
    assert [p.field for p in caught.value.problems] == ["moe_config.expert_nums", "parallel_config.pipeline"]


def test_a_malformed_template_is_reported_with_its_line(tmp_path: Path):
    template = tmp_path / "t.yaml"
    template.write_text("a: 1\nb: [2\nc: 3\n")
    with pytest.raises(SourceError) as caught:
        derive(template, ["a=2"])
    assert re.match(rf"{re.escape(str(template))}:\d+: not valid YAML", str(caught.value))
    with pytest.raises(SourceError, match="cannot read"):
        derive(tmp_path / "missing.yaml", ["a=2"])


ROUTER_AND_NORM = {"bias_update_rate": 0.002, "balance_via_bias": False, "aux_loss_factor": 0.0003,
                   "norm_topk_prob": False, "rms_norm_eps": 1e-5, "rope_theta": 50000.0}
HF_ROUTER_AND_NORM = ("moe_router_bias_update_rate", "moe_router_enable_expert_bias", "moe_aux_loss_coeff",
                      "norm_topk_prob", "rms_norm_eps", "rope_theta")


@pytest.mark.parametrize(("path", "names"), [
    (TEMPLATE_671B, ["moe_config.topk_bias_update_rate", "moe_config.balance_via_topk_bias",
                     "moe_config.aux_loss_factors", "moe_config.norm_topk_prob",
                     "model.model_config.rms_norm_eps", "model.model_config.theta"]),
    (MCORE_1B, [f"model.model_config.{name}" for name in HF_ROUTER_AND_NORM]),
    (PYNATIVE_1B, [f"model.{name}" for name in HF_ROUTER_AND_NORM]),
], ids=["research", "mcore", "pynative"])
def test_balancing_norm_and_rope_fields_are_read_under_each_dialects_names(path: Path, names: list[str]):
    original = load_spec(path).model
    assert all(getattr(original, field) == getattr(ModelSpec(), field) for field in ROUTER_AND_NORM)
    pairs = zip(names, ROUTER_AND_NORM.values(), strict=True)
    overrides = [f"{n}=[{v}]" if n.endswith("aux_loss_factors") else f"{n}={v}" for n, v in pairs]
    spec = parse_spec(derive_text(path, overrides), "d.yaml")
    assert {field: getattr(spec.model, field) for field in ROUTER_AND_NORM} == ROUTER_AND_NORM
    assert not {f"model.{field}" for field in ROUTER_AND_NORM} & spec.defaulted.keys()


def test_deepseek_v3_defaults_for_balancing_norm_and_rope():
    m = ModelSpec()
    assert (m.bias_update_rate, m.balance_via_bias, m.aux_loss_factor, m.norm_topk_prob, m.rms_norm_eps,
            m.rope_theta) == (0.001, True, 0.0001, True, 1e-6, 10000.0)
    with pytest.raises(SourceError, match="aux_loss_factors: expected a list of at least one number"):
        parse_spec(derive_text(TEMPLATE_671B, ["moe_config.aux_loss_factors=[]"]), "d.yaml")


def line_of(path: Path, text: str) -> int:
    return path.read_text().splitlines().index(text) + 1


@pytest.mark.parametrize(("override", "alias_line", "anchor", "anchor_line", "instead"), [
    ("callbacks[1].num_layers=5", "    num_layers: *num_layers", "num_layers",
     "    num_layers: &num_layers 61", "model.model_config.num_layers"),
    ("train_dataset_task.dataset_config.data_loader.config.seed=1", "  dataset_config: *train_dataset",
     "train_dataset", "train_dataset: &train_dataset", "train_dataset.data_loader.config.seed"),
])
def test_an_override_on_an_alias_is_refused_naming_the_anchor(override: str, alias_line: str, anchor: str,
                                                             anchor_line: str, instead: str):
    with pytest.raises(SourceError) as caught:
        derive(TEMPLATE_671B, [override])
    [problem] = caught.value.problems
    assert problem.line == line_of(TEMPLATE_671B, alias_line)
    assert f"alias (*{anchor}) of the anchor &{anchor} defined at " \
           f"{TEMPLATE_671B}:{line_of(TEMPLATE_671B, anchor_line)}" in problem.message
    assert problem.message.endswith(f"Set {instead} instead")
    # the suggested path works and the alias follows it
    written = derive_text(TEMPLATE_671B, [f"{instead}={override.rpartition('=')[2]}"])
    assert written != TEMPLATE_671B.read_text()
