"""MindFormers' own published DeepSeek-V3 configs (tests/samples/configs/mindformers, recorded byte for byte)
read as MindFormers reads them: the YAML, else pretrained_model_dir's config.json (mcore), else the model
class's defaults; every value not from the YAML marked with where it came from."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from model.config import Dialect, defaulted_paths, load_spec, parse_spec
from model.estimate import count_params
from model.pretrained import Pretrained, parse_config_json, pretrained_from_text
from model.validate import validate
from model.yamlsource import SourceError
from tests.test_estimate import main_model_shapes, mtp_shapes, total

SAMPLES = Path(__file__).resolve().parent / "samples" / "configs" / "mindformers"
CONFIG_JSON = SAMPLES / "deepseek-v3-config.json"
MCORE_PREDICT = SAMPLES / "mcore_predict_deepseek3_671b.yaml"
HEADS = "model.model_config.num_attention_heads"

PUBLISHED = {
    # file: (dialect, main-model parameters as an independent count should find them)
    "research_pretrain_deepseek3_671b.yaml": (Dialect.RESEARCH, 671e9),
    "research_predict_deepseek3_671b.yaml": (Dialect.RESEARCH, 671e9),
    "research_pretrain_deepseek3_4layer_8p.yaml": (Dialect.RESEARCH, None),
    "mcore_predict_deepseek3_671b.yaml": (Dialect.MCORE, 671e9),  # all class defaults when hf_dir is unread
    "mcore_train_deepseekv3_small.yaml": (Dialect.MCORE, None),
    "mcore_pretrain_deepseek3_671b.yaml": (Dialect.MCORE, 671e9),  # heads, experts, MLA ranks: class defaults
    "mcore_finetune_deepseek3_671b.yaml": (Dialect.MCORE, 671e9),
    "mcore_pretrain_deepseek3_12b_16p_pp16.yaml": (Dialect.MCORE, None),
    "pynative_pretrain_deepseek3_1b_8p.yaml": (Dialect.PYNATIVE, None),
}


def recorded_pretrained(directory: str = "/path/hf_dir") -> Pretrained:
    return pretrained_from_text(directory, CONFIG_JSON.read_text(), str(CONFIG_JSON))


def test_every_recorded_yaml_is_in_the_table():
    assert {p.name for p in SAMPLES.glob("*.yaml")} == PUBLISHED.keys()


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_each_published_config_parses_and_counts_as_every_weight_does(name: str):
    dialect, published = PUBLISHED[name]
    job = load_spec(SAMPLES / name)
    assert job.dialect is dialect
    count = count_params(job.model)
    assert count.total == pytest.approx(total(main_model_shapes(job.model)), rel=0.005)
    assert count.mtp == pytest.approx(total(mtp_shapes(job.model)), rel=0.005)
    if published is not None:
        assert count.total == pytest.approx(published, rel=0.005)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_each_published_config_has_no_error_on_the_devices_its_layout_asks_for(name: str):
    """MindFormers runs its own configs: the console must not refuse one (the mcore offsets place
    num_hidden_layers only; a research file without a group-limited topk_method does not route by groups)."""
    job = load_spec(SAMPLES / name)
    par = job.parallel
    devices = max(par.data_parallel, 1) * par.model_parallel * par.pipeline_stage * par.context_parallel
    per_node = min(devices, 8)
    problems = validate(job, nodes=devices // per_node, devices_per_node=per_node)
    assert [str(p) for p in problems if p.severity == "error"] == []


def test_the_recorded_config_json_is_deepseek_v3_671b():
    values = parse_config_json(CONFIG_JSON.read_text(), "config.json")
    assert values["num_hidden_layers"] == 61 and values["num_attention_heads"] == 128
    assert values["max_position_embeddings"] == 163840 and values["rope_theta"] == 10000.0
    assert values["scoring_func"] == "sigmoid" and values["norm_topk_prob"] is True


def test_the_mcore_predict_config_takes_its_architecture_from_config_json():
    job = parse_spec(MCORE_PREDICT.read_text(), str(MCORE_PREDICT), pretrained=recorded_pretrained())
    assert count_params(job.model).total == pytest.approx(671e9, rel=0.005)
    assert job.model.max_position_embeddings == 163840  # config.json's, not the class's 4096
    paths = defaulted_paths(job)
    assert paths[HEADS] == "config.json"
    assert paths["model.model_config.seq_length"] == "class default"  # not in config.json
    assert paths["parallel_config.pipeline_stage"] == "MindFormers default"
    assert "parallel_config.model_parallel" not in paths and "model.model_config.num_blocks" not in paths
    # DeepSeek-V3's config.json describes its fp8 release, which MindFormers' inference refuses
    [warning] = job.warnings
    assert "fp8 weights" in warning and "cast them to bfloat16 first" in warning


def test_a_bf16_config_json_gives_no_warning():
    text = json.dumps({**json.loads(CONFIG_JSON.read_text()), "quantization_config": None})
    pretrained = pretrained_from_text("/path/hf_dir", text, "hf_dir/config.json")
    assert parse_spec(MCORE_PREDICT.read_text(), str(MCORE_PREDICT), pretrained=pretrained).warnings == ()


def test_the_yaml_wins_over_config_json():
    text = MCORE_PREDICT.read_text().replace("    block_size: 128\n",
                                             "    block_size: 128\n    num_hidden_layers: 4\n")
    job = parse_spec(text, "predict.yaml", pretrained=recorded_pretrained())
    assert job.model.num_layers == 4 and "model.num_layers" not in job.defaulted
    assert job.defaulted["model.num_heads"] == "config.json"


def test_an_unread_pretrained_model_dir_leaves_class_defaults_and_says_so():
    unread = Pretrained("/path/hf_dir", unreadable="not on this host nor on n0: no such file")
    job = parse_spec(MCORE_PREDICT.read_text(), str(MCORE_PREDICT), pretrained=unread)
    assert defaulted_paths(job)[HEADS] == "class default"
    assert job.model.max_position_embeddings == 4096  # DeepseekV3Config's own default
    [warning] = job.warnings
    assert warning == ("pretrained_model_dir /path/hf_dir could not be read (not on this host nor on n0: no "
                       "such file): the architecture the file leaves out is the model class's defaults")
    assert "was not read" in parse_spec(MCORE_PREDICT.read_text(), "p.yaml").warnings[0]


def test_research_configs_never_read_config_json():
    """Only the mcore path merges pretrained_model_dir (build_model.py: get_model_config)."""
    text = ("pretrained_model_dir: /path/hf_dir\nmodel:\n  model_config:\n    num_layers: 4\n"
            "    hidden_size: 1024\n    num_heads: 16\n")
    job = parse_spec(text, "r.yaml", pretrained=recorded_pretrained())
    assert job.model.n_routed_experts == 1 and job.defaulted["model.n_routed_experts"] == "class default"
    assert job.warnings == ()


@pytest.mark.parametrize(("text", "expected"), [
    ('{"num_hidden_layers": 61,', "hf/config.json:1: not valid JSON: Expecting property name enclosed in "
                                  "double quotes (column 26)"),
    ("[1, 2]", "hf/config.json: expected a JSON object, got [1, 2] (list)"),
    ('{"num_attention_heads": "128", "rope_theta": true}',
     "hf/config.json: num_attention_heads: expected an integer, got '128'\n"
     "hf/config.json: rope_theta: expected a number, got True (bool)"),
])
def test_a_bad_config_json_is_an_error_naming_the_file_and_key(text: str, expected: str):
    with pytest.raises(SourceError) as caught:
        parse_config_json(text, "hf/config.json")
    assert str(caught.value) == expected


def test_mcore_reads_the_mtp_loss_factor_by_either_of_its_names():
    job = load_spec(SAMPLES / "mcore_train_deepseekv3_small.yaml")
    location = job.location("model.mtp_loss_factor")
    assert location is not None and location.path == "model.model_config.mtp_loss_scaling_factor"
    changed = parse_spec((SAMPLES / "mcore_train_deepseekv3_small.yaml").read_text().replace(
        "mtp_loss_scaling_factor: 0.3", "mtp_loss_scaling_factor: 0.1"), "t.yaml")
    assert changed.model.mtp_loss_factor == 0.1


def test_a_field_without_a_yaml_value_is_the_class_default_for_every_dialect():
    mcore = parse_spec("use_legacy: False\nmodel:\n  model_config:\n    hidden_size: 64\n", "m.yaml")
    assert mcore.model.num_heads == 128 and mcore.defaulted["model.num_heads"] == "class default"
    research = parse_spec("model:\n  model_config:\n    hidden_size: 64\n", "r.yaml")
    assert research.model.num_layers == 32 and research.defaulted["model.num_layers"] == "class default"



def test_the_mtp_loss_factor_an_mcore_file_leaves_out_is_none_in_its_class_not_a_class_default():
    """TransformerConfig.mtp_loss_scaling_factor is None: the 0.3 shown is the console's figure. The
    research class has 0.3 of its own."""
    mcore = parse_spec("use_legacy: False\nmodel:\n  model_config:\n    hidden_size: 64\n", "m.yaml")
    assert mcore.defaulted["model.mtp_loss_factor"] == "unset: the class holds None"
    research = parse_spec("model:\n  model_config:\n    hidden_size: 64\n", "r.yaml")
    assert research.defaulted["model.mtp_loss_factor"] == "class default"
    assert research.model.mtp_loss_factor == 0.3



@pytest.mark.parametrize(("change", "warned"), [
    ({"    mtp_loss_scaling_factor: 0.3\n": ""}, True),
    ({"    mtp_loss_scaling_factor: 0.3\n": "", "run_mode: 'train'": "run_mode: 'predict'"}, False),
    ({"    mtp_loss_scaling_factor: 0.3\n": "",
      "model_config:\n": "model_config:\n    num_nextn_predict_layers: 0\n"}, False),
    ({}, False),
], ids=["left-out", "predict", "no-mtp-layers", "as-published"])
def test_an_mcore_file_training_mtp_layers_without_their_loss_factor_is_warned(change: dict[str, str],
                                                                             warned: bool):
    text = (SAMPLES / "mcore_train_deepseekv3_small.yaml").read_text()
    for old, new in change.items():
        assert old in text
        text = text.replace(old, new, 1)
    job = parse_spec(text, "small.yaml")
    problems = validate(job, nodes=1, devices_per_node=8)
    said = [p for p in problems if "mtp_loss_scaling_factor (or mtp_loss_factor) is not set" in p.message]
    assert len(said) == int(warned), said
    assert all(p.severity == "warning" for p in said)


# ---- the command line: estimate and derive say where each value came from


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console.cli", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ})


def hf_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "hf_dir"
    directory.mkdir()
    (directory / "config.json").write_bytes(CONFIG_JSON.read_bytes())
    return directory


def test_estimate_json_names_config_json_values_and_the_unread_directory(tmp_path: Path):
    layout = ("--nodes", "4", "--devices-per-node", "8", "--inference", "--json")
    read = cli("estimate", str(MCORE_PREDICT), "--set", f"pretrained_model_dir={hf_dir(tmp_path)}", *layout)
    document = json.loads(read.stdout)
    assert document["defaulted"][HEADS] == "config.json"
    assert [w for w in document["warnings"] if "fp8" not in w] == []
    unread = json.loads(cli("estimate", str(MCORE_PREDICT), *layout).stdout)
    assert unread["defaulted"][HEADS] == "class default"
    [warning] = unread["warnings"]
    assert warning.startswith("pretrained_model_dir /path/hf_dir could not be read (not on this host")


def test_derive_says_where_the_architecture_came_from(tmp_path: Path):
    out = tmp_path / "derived.yaml"
    read = f"pretrained_model_dir={hf_dir(tmp_path)}"
    done = cli("derive", str(MCORE_PREDICT), "-o", str(out), "--set", read, "--nodes", "4",
               "--devices-per-node", "8")
    assert "from config.json: first_k_dense_replace, hidden_size," in done.stderr
    assert "class defaults: moe_aux_loss_coeff," in done.stderr
    unread = cli("derive", str(MCORE_PREDICT), "-o", str(out), "--json")
    document = json.loads(unread.stdout)
    assert document["defaulted"][HEADS] == "class default"
    assert document["warnings"][0].startswith("pretrained_model_dir /path/hf_dir could not be read")
