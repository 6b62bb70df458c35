"""`ascend-console estimate` end to end on the shipped job templates."""

import json
import os
import subprocess
import sys
from pathlib import Path

JOBS = Path(__file__).resolve().parent.parent / "configs" / "jobs"


def estimate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console.cli", "estimate", *args],
                          capture_output=True, text=True, timeout=60, env={**os.environ})


def test_the_1b_tutorial_config_on_one_node(tmp_path: Path):
    done = estimate(str(JOBS / "pretrain_deepseek3_1b.yaml"), "--nodes", "1", "--devices-per-node", "8",
                    "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["fits"] is True and len(report["memory_per_device_bytes"]) == 2
    assert 0.9e9 < report["params_total"] < 1.1e9
    assert [p["severity"] for p in report["problems"]] == ["warning"]


def test_the_671b_template_counts_671b_and_37b():
    report = json.loads(estimate(str(JOBS / "pretrain_deepseek3_671b.yaml"), "--nodes", "128",
                                 "--devices-per-node", "8", "--json").stdout)
    assert round(report["params_total"] / 1e9) == 671
    assert 36e9 < report["params_activated"] < 38e9
    assert len(report["memory_per_device_bytes"]) == 16


def test_overrides_and_errors_exit_non_zero():
    done = estimate(str(JOBS / "pretrain_deepseek3_1b.yaml"), "--set", "parallel_config.data_parallel=4",
                    "--nodes", "1", "--devices-per-node", "8", "--json")
    assert done.returncode == 1
    [error] = [p for p in json.loads(done.stdout)["problems"] if p["severity"] == "error"]
    assert error["path"] == "parallel_config.data_parallel" and error["line"] is not None


def test_a_wrong_type_is_one_clear_error_with_file_and_line(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    text = (JOBS / "pretrain_deepseek3_1b.yaml").read_text()
    bad.write_text(text.replace("num_layers: &num_layers 3", "num_layers: &num_layers three"))
    done = estimate(str(bad))
    assert done.returncode == 78
    assert f"{bad}:" in done.stderr and "num_layers" in done.stderr and "three" in done.stderr


def test_impossible_sizes_and_unknown_units_are_errors_not_tracebacks():
    base = [str(JOBS / "pretrain_deepseek3_1b.yaml"), "--nodes", "1", "--devices-per-node", "8"]
    for override, expected in [
        ("parallel_config.model_parallel=0", "model_parallel must be a whole number >= 1, got 0"),
        ("runner_config.batch_size=-1", "batch_size must be a whole number >= 1, got -1"),
        ("model.model_config.param_init_type=float64", "unknown dtype 'float64'"),
        ("context.max_device_memory=58GiB", "unreadable memory size '58GiB'"),
    ]:
        done = estimate(*base, "--set", override)
        assert done.returncode in (1, 78) and expected in done.stderr, (override, done.stderr)
        assert "Traceback" not in done.stderr


def test_the_pynative_sample_with_two_stages_is_not_held_to_micro_batch_num():
    done = estimate(str(Path(__file__).parent / "samples" / "configs" / "deepseek3_1b_pynative.yaml"),
                    "--nodes", "1", "--devices-per-node", "8", "--json")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_measured_step_time_gives_mfu():
    done = estimate(str(JOBS / "pretrain_deepseek3_1b.yaml"), "--nodes", "1", "--devices-per-node", "8",
                    "--step-seconds", "0.5", "--peak-tflops", "100", "--json")
    report = json.loads(done.stdout)
    # 4096 tokens x batch 1 x 4 micro-batches x dp 2
    assert report["tokens_per_step"] == 32768
    expected = report["flops_per_token"] * 32768 / 0.5 / (8 * 100e12)
    assert abs(report["mfu"] - expected) < 1e-12


def test_set_may_add_a_field_the_spec_knows_but_not_a_typo():
    base = [str(JOBS / "pretrain_deepseek3_1b.yaml"), "--nodes", "1", "--devices-per-node", "8", "--json"]
    added = estimate(*base, "--set", "parallel_config.context_parallel=2",
                     "--set", "parallel_config.data_parallel=1")
    assert added.returncode == 0, added.stderr
    assert not [p for p in json.loads(added.stdout)["problems"] if p["severity"] == "error"]
    typo = estimate(*base, "--set", "parallel_config.contxt_parallel=2")
    assert typo.returncode == 78 and "no key 'contxt_parallel'" in typo.stderr


def test_inference_mode_reports_weights_and_the_mla_cache_under_the_training_keys():
    base = [str(JOBS / "pretrain_deepseek3_1b.yaml"), "--nodes", "1", "--devices-per-node", "8", "--json"]
    training = json.loads(estimate(*base).stdout)
    done = estimate(*base, "--inference", "--batch", "4", "--seq-length", "8192")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["mode"], report["batch"], report["seq_length"], training["mode"]) == (
        "inference", 4, 8192, "training")
    shared = {"params_total", "params_activated", "memory_per_device_bytes", "memory_stages", "fits",
              "problems", "tightest_stage", "memory_limit_bytes"}
    assert shared <= report.keys() & training.keys()
    assert report["params_total"] == training["params_total"]
    # 3 layers + MTP over 2 stages: 2 and 1 main-model layers, each caching 576 bf16 values a token
    assert [s["kv_cache"] for s in report["memory_stages"]] == [4 * 8192 * n * 576 * 2 for n in (2, 1)]
    assert report["memory_per_device_bytes"] == [
        s["weights"] + s["kv_cache"] + s["workspace"] for s in report["memory_stages"]]
    # serving has no micro-batches or optimizer: the training warning about the optimizer shard goes
    assert training["problems"] and not report["problems"]


def test_inference_that_does_not_fit_exits_non_zero_and_says_so():
    done = estimate(str(JOBS / "pretrain_deepseek3_671b.yaml"), "--nodes", "1", "--devices-per-node", "8",
                    "--set", "parallel_config.data_parallel=1", "--set", "parallel_config.model_parallel=8",
                    "--set", "parallel_config.pipeline_stage=1", "--set", "parallel_config.expert_parallel=8",
                    "--set", "model.model_config.offset=0", "--inference")
    assert done.returncode == 1
    assert "does NOT fit" in done.stdout and "KV cache" in done.stdout


def test_an_impossible_layout_says_the_problem_and_prints_no_stage_table():
    done = estimate(str(JOBS / "pretrain_deepseek3_671b.yaml"), "--nodes", "16", "--devices-per-node", "8",
                    "--set", "parallel_config.pipeline_stage=100")
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) <= 3 and all(line.startswith("error: ") for line in lines), done.stderr
    assert "pipeline_stage (100) cannot exceed num_layers (61)" in done.stderr
    report = json.loads(estimate(str(JOBS / "pretrain_deepseek3_671b.yaml"), "--nodes", "16",
                                 "--devices-per-node", "8", "--set", "parallel_config.pipeline_stage=100",
                                 "--json").stdout)
    assert report["memory_stages"] == [] and report["fits"] is False
    assert any("cannot exceed num_layers" in p["message"] for p in report["problems"])


def test_problems_come_before_the_tables_and_alike_stages_share_a_row():
    done = estimate(str(JOBS / "pretrain_deepseek3_671b.yaml"), "--nodes", "128", "--devices-per-node", "8",
                    "--inference")
    lines = done.stdout.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("stage ")))
    stage_rows = [line for line in lines[header + 1:] if line[:6].strip().replace("-", "").isdigit()]
    # 16 stages: the first (embedding) and last (head) differ, the fourteen between are alike
    assert [row.split()[0] for row in stage_rows] == ["0", "1-14", "15"], done.stdout
    erroneous = estimate(str(JOBS / "pretrain_deepseek3_671b.yaml"), "--nodes", "32",
                         "--devices-per-node", "8")
    assert erroneous.stdout.splitlines()[0].startswith("error: "), erroneous.stdout


def test_at_80_columns_no_header_or_figure_is_cut():
    done = subprocess.run([sys.executable, "-m", "console.cli", "estimate", "pretrain_deepseek3_671b.yaml",
                           "--nodes", "128", "--devices-per-node", "8"], cwd=JOBS,
                          capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "80"})
    assert "…" not in done.stdout
    assert "stage layers weights grads optimizer activations workspace total headroom" in done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) <= 80, done.stdout


def test_on_cpu_nodes_memory_is_judged_against_the_hosts_memory_not_hbm():
    meminfo = Path("/proc/meminfo").read_text()
    total_kb = int(next(line.split()[1] for line in meminfo.splitlines() if line.startswith("MemTotal:")))
    tiny = str(JOBS / "tiny_local.yaml")
    local = json.loads(estimate(tiny, "--json").stdout)  # the embedded local cluster: 2 CPU nodes, 1 rank

    assert local["memory_limit_bytes"] == total_kb * 1024
    assert local["memory_limit_source"].startswith("host memory (")
    assert "host memory (" in estimate(tiny).stdout
    # a layout larger than these machines is asked about NPUs
    asked = json.loads(estimate(tiny, "--nodes", "4", "--devices-per-node", "8", "--json").stdout)
    assert asked["memory_limit_source"] == "HBM" and asked["memory_limit_bytes"] == 64 << 30


SAMPLES = Path(__file__).resolve().parent / "samples" / "configs" / "mindformers"


def test_the_published_research_predict_config_on_the_tutorials_4_by_8_fits_with_its_paged_cache():
    done = estimate(str(SAMPLES / "research_predict_deepseek3_671b.yaml"), "--inference", "--nodes", "4",
                    "--devices-per-node", "8", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["fits"] is True and report["problems"] == []
    assert report["kv_cache"].startswith("512 blocks x 16 tokens")
    [stage] = report["memory_stages"]
    # MindFormers allocates num_blocks x block_size x 1 x (kv_lora_rank + qk_rope_head_dim) per layer in
    # compute_dtype (text_generator.py), and tensor parallelism does not split the MLA latent
    assert stage["kv_cache"] == 512 * 16 * (512 + 64) * 61 * 2
    # bfloat16 weights of the 671B main model over model_parallel 32: embedding and head split too
    assert abs(stage["weights"] - report["params_total"] * 2 / 32) < 0.01 * stage["weights"]
    assert report["memory_limit_source"] == "max_device_memory 61GB"
    text = estimate(str(SAMPLES / "research_predict_deepseek3_671b.yaml"), "--inference", "--nodes", "4",
                    "--devices-per-node", "8").stdout
    assert "512 blocks x 16 tokens" in text and "fits:" in text
    # asked for a batch, the cache is that batch's, not the configured blocks
    asked = json.loads(estimate(str(SAMPLES / "research_predict_deepseek3_671b.yaml"), "--inference",
                                "--nodes", "4", "--devices-per-node", "8", "--batch", "2", "--json").stdout)
    assert asked["kv_cache"] == "2 x 4096 tokens"


def test_the_published_mcore_predict_config_reads_its_config_json_and_fits_on_4_by_8(tmp_path: Path):
    """The mcore predict config spells out no architecture: with the recorded config.json in its
    pretrained_model_dir the estimate is the 671B's, each value marked as from config.json; without it,
    the class defaults and a warning that says the directory could not be read."""
    hf_dir = tmp_path / "hf_dir"
    hf_dir.mkdir()
    (hf_dir / "config.json").write_bytes((SAMPLES / "deepseek-v3-config.json").read_bytes())
    base = [str(SAMPLES / "mcore_predict_deepseek3_671b.yaml"), "--inference", "--nodes", "4",
            "--devices-per-node", "8"]
    done = estimate(*base, "--set", f"pretrained_model_dir={hf_dir}", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["fits"] is True
    [fp8] = report["warnings"]  # the recorded config.json is the fp8 release: said, estimated as bf16
    assert "fp8 weights" in fp8
    assert report["defaulted"]["model.model_config.num_attention_heads"] == "config.json"
    assert round(report["params_total"] / 1e9) == 671
    [stage] = report["memory_stages"]
    assert stage["kv_cache"] == 512 * 128 * (512 + 64) * 61 * 2
    assert report["memory_limit_source"] == "max_device_memory 59GB"
    text = estimate(*base, "--set", f"pretrained_model_dir={hf_dir}")
    assert "from config.json" in text.stdout and "num_attention_heads" in text.stdout, text.stdout
    unread = estimate(*base, "--json")
    report = json.loads(unread.stdout)
    assert report["defaulted"]["model.model_config.num_attention_heads"] == "class default"
    [warning] = report["warnings"]
    assert "/path/hf_dir" in warning and "could not be read" in warning
    said = estimate(*base)
    assert "warning:" in said.stdout and "/path/hf_dir" in said.stdout


def test_a_job_file_that_is_not_there_exits_66_with_one_error_line(tmp_path: Path):
    done = estimate(str(tmp_path / "nope.yaml"))
    assert done.returncode == 66
    assert done.stderr.strip() == f"error: {tmp_path / 'nope.yaml'}: cannot read: No such file or directory"
