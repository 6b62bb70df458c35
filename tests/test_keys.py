"""Typo'd keys: each dialect's misspelt keys named at their own line with the key meant, said together with
the layout error the missing key causes; published and project configs give none."""

from pathlib import Path

import pytest

from model.config import Dialect, JobSpec, load_spec, parse_spec
from model.keys import CHECKED_SECTIONS, known_keys, refused
from model.spec import UnknownKey
from model.validate import ConfigProblem, validate
from model.yamlsource import SourceError

ROOT = Path(__file__).resolve().parent.parent
RESEARCH_1B = ROOT / "configs" / "jobs" / "pretrain_deepseek3_1b.yaml"
RESEARCH_671B = ROOT / "configs" / "jobs" / "pretrain_deepseek3_671b.yaml"
MCORE_1B = ROOT / "tests" / "samples" / "configs" / "deepseek3_1b_mcore.yaml"
PYNATIVE_1B = ROOT / "tests" / "samples" / "configs" / "deepseek3_1b_pynative.yaml"
PUBLISHED_DIR = ROOT / "tests" / "samples" / "configs" / "mindformers"
PUBLISHED = sorted(PUBLISHED_DIR.glob("*.yaml"))


def misspelt_text(path: Path, line_start: str, typo: str) -> tuple[str, int]:
    """The config's text with its first line starting `line_start` given `typo` instead, and that line."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines) if line.startswith(line_start))
    lines[number] = typo + lines[number][len(line_start):]
    return "".join(lines), number + 1


def misspelt(path: Path, line_start: str, typo: str) -> tuple[JobSpec, int]:
    text, line = misspelt_text(path, line_start, typo)
    return parse_spec(text, str(path)), line


def errors_saying(job: JobSpec, text: str, nodes: int = 1) -> list[ConfigProblem]:
    problems = validate(job, nodes=nodes, devices_per_node=8)
    return [p for p in problems if p.severity == "error" and text in p.message]


def typo_problems(job: JobSpec, nodes: int = 1, devices: int = 8) -> list[ConfigProblem]:
    return [p for p in validate(job, nodes=nodes, devices_per_node=devices) if "unknown key" in p.message]


@pytest.mark.parametrize("path", [*sorted((ROOT / "configs" / "jobs").glob("*.yaml")), MCORE_1B, PYNATIVE_1B,
                                  *PUBLISHED], ids=lambda p: p.name)
def test_a_config_without_typos_has_no_unknown_keys(path: Path):
    assert load_spec(path).unknown_keys == ()


@pytest.mark.parametrize(("path", "line_start", "typo", "key", "meant"), [
    (RESEARCH_1B, "parallel_config:", "paralel_config:", "paralel_config", "parallel_config"),
    (RESEARCH_1B, "  data_parallel:", "  data_paralel:", "parallel_config.data_paralel", "data_parallel"),
    (RESEARCH_1B, "    num_layers:", "    num_layer:", "model.model_config.num_layer", "num_layers"),
    (RESEARCH_671B, "  expert_num:", "  expertnum:", "moe_config.expertnum", "expert_num"),
    (RESEARCH_671B, "  data_parallel:", "  data_paralel:", "parallel_config.data_paralel", "data_parallel"),
    (MCORE_1B, "parallel_config:", "paralel_config:", "paralel_config", "parallel_config"),
    (MCORE_1B, "  data_parallel:", "  data_paralel:", "parallel_config.data_paralel", "data_parallel"),
    (MCORE_1B, "    num_hidden_layers:", "    num_hiden_layers:", "model.model_config.num_hiden_layers",
     "num_hidden_layers"),
    (MCORE_1B, "context:", "contex:", "contex", "context"),
    (PYNATIVE_1B, "  tensor_parallel:", "  tensor_paralel:", "parallelism.tensor_paralel",
     "tensor_parallel"),
    (PYNATIVE_1B, "  num_attention_heads:", "  num_atention_heads:", "model.num_atention_heads",
     "num_attention_heads"),
    (PYNATIVE_1B, "  local_batch_size:", "  local_bach_size:", "training.local_bach_size",
     "local_batch_size"),
])
def test_a_misspelt_key_is_named_at_its_line_with_the_key_meant(path: Path, line_start: str, typo: str,
                                                                key: str, meant: str):
    job, line = misspelt(path, line_start, typo)
    [problem] = typo_problems(job)
    assert (problem.path, problem.line) == (key, line)
    assert problem.message.endswith(f"did you mean {meant}?")
    assert f"unknown key {key.rpartition('.')[2]} (MindFormers " in problem.message


def test_mindformers_ignores_a_stray_section_but_refuses_an_undeclared_parallel_config_key():
    """MindFormerConfig's template (r1.4.0 on) drops unknown top-level keys with a log line and raises
    KeyError for a key parallel_config does not declare; model_config keeps any key."""
    section, _ = misspelt(RESEARCH_1B, "parallel_config:", "paralel_config:")
    key, _ = misspelt(RESEARCH_1B, "  data_parallel:", "  data_paralel:")
    model, _ = misspelt(RESEARCH_1B, "    num_layers:", "    num_layer:")
    assert [p.severity for p in typo_problems(section)] == ["warning"]
    assert "MindFormers ignores it" in typo_problems(section)[0].message
    assert [p.severity for p in typo_problems(key)] == ["error"]
    assert "refuses the file: parallel_config takes only the keys it declares" in \
        typo_problems(key)[0].message
    assert [p.severity for p in typo_problems(model)] == ["warning"]


def test_pynative_refuses_an_undeclared_parallelism_key_and_keeps_a_model_one():
    [parallelism] = misspelt(PYNATIVE_1B, "  tensor_parallel:", "  tensor_paralel:")[0].unknown_keys
    [model] = misspelt(PYNATIVE_1B, "  num_attention_heads:", "  num_atention_heads:")[0].unknown_keys
    assert refused(parallelism, Dialect.PYNATIVE, None) and not refused(model, Dialect.PYNATIVE, None)


RESEARCH_671B_TRAIN = PUBLISHED_DIR / "research_pretrain_deepseek3_671b.yaml"


@pytest.mark.parametrize(("run_mode", "severity"), [
    ("'train'", "error"), ("'finetune'", "error"), ("'predict'", "warning"), ("'eval'", "warning")])
def test_a_recompute_config_typo_is_refused_only_in_a_file_that_trains(run_mode: str, severity: str):
    """MindFormers' template applies recompute_config (and refuses its unknown keys) only for train and
    finetune; a predict or eval file drops the section unread."""
    text, _ = misspelt_text(RESEARCH_671B_TRAIN, "  select_recompute:", "  select_recomput:")
    job = parse_spec(text.replace("run_mode: 'train'", f"run_mode: {run_mode}"), "r.yaml")
    [typo] = typo_problems(job, nodes=32)
    assert (typo.path, typo.severity) == ("recompute_config.select_recomput", severity), typo
    assert ("refuses the file" in typo.message) is (severity == "error"), typo.message


@pytest.mark.parametrize(("path", "line_start", "typo", "nodes", "key"), [
    (RESEARCH_1B, "parallel_config:", "paralel_config:", 4, "paralel_config"),
    (RESEARCH_1B, "  data_parallel:", "  data_paralel:", 4, "parallel_config.data_paralel"),
    (RESEARCH_671B, "  data_parallel:", "  data_paralel:", 128, "parallel_config.data_paralel"),
    (MCORE_1B, "parallel_config:", "paralel_config:", 4, "paralel_config"),
    (MCORE_1B, "  data_parallel:", "  data_paralel:", 4, "parallel_config.data_paralel"),
])
def test_the_layout_error_a_typo_causes_points_at_the_typo(path: Path, line_start: str, typo: str, nodes: int,
                                                           key: str):
    """The typo leaves data_parallel (or all of parallel_config) at 1: the device count is wrong, and the
    error says why at the typo's line."""
    job, line = misspelt(path, line_start, typo)
    [layout] = errors_saying(job, "must equal the devices", nodes)
    assert (layout.path, layout.line) == (key, line)
    assert f"the file has {key} on line {line}, which MindFormers" in layout.message
    assert layout.message.endswith(f"a typo of {key.replace('paralel', 'parallel')}?")


def test_a_typo_in_a_field_the_error_was_judged_by_is_named_where_the_error_points():
    """pynative: tensor_parallel left at 1 makes dp x tp x pp short of the devices; the error stays at
    data_parallel_shard's line and names the typo's."""
    job, line = misspelt(PYNATIVE_1B, "  tensor_parallel:", "  tensor_paralel:")
    [layout] = errors_saying(job, "must equal the devices")
    assert layout.path == "parallelism.data_parallel_shard" and layout.line == line - 1
    assert f"parallelism.tensor_paralel on line {line}, which MindFormers refuses" in layout.message


def test_a_misspelt_num_layers_is_named_by_the_placement_error_it_causes():
    job, line = misspelt(RESEARCH_1B, "    num_layers:", "    num_layer:")
    [placement] = errors_saying(job, "num_layers + mtp_depth")
    assert placement.path == "model.model_config.offset"
    assert f"model.model_config.num_layer on line {line}, which MindFormers ignores" in placement.message


def test_a_file_a_typo_keeps_from_being_read_lists_the_typo_with_its_error():
    """pynative num_hidden_layer: the model class's 61 layers do not fit the file's 3-layer stage plan, and
    reading the file stops there; the typo is what a person needs to see."""
    text, line = misspelt_text(PYNATIVE_1B, "  num_hidden_layers:", "  num_hidden_layer:")
    with pytest.raises(SourceError) as raised:
        parse_spec(text, str(PYNATIVE_1B))
    stopped, typo = raised.value.problems
    assert "the stages hold 3 layers, but num_hidden_layers is 61" in stopped.message
    assert (typo.field, typo.line) == ("model.num_hidden_layer", line)
    assert typo.message.endswith("did you mean num_hidden_layers?")


def test_a_typo_that_breaks_nothing_is_only_a_warning():
    job, _ = misspelt(MCORE_1B, "    num_hidden_layers:", "    num_hiden_layers:")
    assert [p.severity for p in validate(job, nodes=1, devices_per_node=8) if "num_hiden" in p.message] == \
        ["warning"]


def test_keys_mindformers_declares_are_known_though_the_console_reads_none_of_them():
    research = known_keys(Dialect.RESEARCH)
    assert {"gradient_aggregation_group", "vocab_emb_dp"} <= research["parallel_config"]
    assert {"capacity_factor", "enable_sdrop"} <= research["moe_config"]
    assert "moe_token_dispatcher_type" in known_keys(Dialect.MCORE)["model.model_config"]
    assert "pipeline_parallel_schedule" in known_keys(Dialect.PYNATIVE)["parallelism"]


def test_free_form_sections_are_not_checked_and_a_far_key_has_no_suggestion():
    text = RESEARCH_1B.read_text(encoding="utf-8").replace(
        "runner_config:\n", "runner_config:\n  zzz_unrelated: 1\n", 1) + "callbacks_extra: 1\n"
    text = text.replace("    data_path:", "    anything_at_all: 1\n    data_path:", 1)
    keys = parse_spec(text, str(RESEARCH_1B)).unknown_keys
    assert [k.path for k in keys] == ["runner_config.zzz_unrelated", "callbacks_extra"]
    assert keys[0] == UnknownKey("runner_config.zzz_unrelated", keys[0].line, None)
    assert "moe_config" not in CHECKED_SECTIONS[Dialect.MCORE]  # said as a whole instead:


def test_an_mcore_top_level_moe_config_is_said_to_belong_under_model_config():
    """MindFormers passes it over model_config and config.json; the console does not read it."""
    text = MCORE_1B.read_text() + "moe_config:\n  expert_num: 16\n"
    line = len(MCORE_1B.read_text().splitlines()) + 1
    [moe] = [p for p in validate(parse_spec(text, "m.yaml"), nodes=1, devices_per_node=8)
             if p.path == "moe_config"]
    assert (moe.severity, moe.line) == ("warning", line)
    assert "move these keys under model.model_config" in moe.message



def test_an_mcore_field_under_its_transformer_config_name_is_an_error_at_its_line():
    """`num_layers: 4` in an mcore model_config was read as nothing: 61 layers, 699 M parameters, no word.
    MindFormers refuses it (DeepseekV3Config sets num_hidden_layers too: 'Mapping Conflicts')."""
    small = ROOT / "tests" / "samples" / "configs" / "mindformers" / "mcore_train_deepseekv3_small.yaml"
    text = small.read_text().replace("    num_hidden_layers: 4", "    num_layers: 4")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row == "    num_layers: 4")
    job = parse_spec(text, "alias.yaml")
    problems = validate(job, nodes=1, devices_per_node=8)
    [alias] = [p for p in problems if p.path == "model.model_config.num_layers"]
    assert (alias.severity, alias.line) == ("error", line)
    assert "TransformerConfig's name for num_hidden_layers" in alias.message
    assert "write num_hidden_layers" in alias.message


@pytest.mark.parametrize(("path", "old", "new", "said"), [
    (ROOT / "tests" / "samples" / "configs" / "deepseek3_1b_pynative.yaml", "parallelism:", "paralelism:",
     "did you mean parallelism?"),
    (RESEARCH_1B, "  model_config:", "  model_confg:", "did you mean model_config?"),
    (MCORE_1B, "use_legacy: False", "use_legacey: False", "did you mean use_legacy?"),
    (MCORE_1B, "use_legacy: False", "use_legacy: Flase", "expected True or False (False: the mcore layout), "
                                                         "got 'Flase'"),
])
def test_a_typo_in_a_key_that_decides_the_dialect_is_said_alone_at_its_line(path: Path, old: str, new: str,
                                                                             said: str):
    """Read in no dialect or the wrong one, the file would give 'unknown config dialect' at line 1, or one
    warning per Hugging Face name: the key that decides is named instead."""
    rows = path.read_text().splitlines()
    line = next(i for i, row in enumerate(rows, 1) if row.startswith(old))
    rows[line - 1] = rows[line - 1].replace(old, new)
    with pytest.raises(SourceError) as raised:
        parse_spec("\n".join(rows), "typo.yaml")
    [problem] = raised.value.problems
    assert problem.line == line and said in problem.message, problem
