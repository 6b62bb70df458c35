"""`ascend-console derive` end to end: the tutorial's 1b config from the 671b template."""

import json
import os
import subprocess
import sys
from pathlib import Path

from model.overrides import TUTORIAL_1B_OVERRIDES

JOBS = Path(__file__).resolve().parent.parent / "configs" / "jobs"


def derive(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console.cli", "derive", *args],
                          capture_output=True, text=True, timeout=60, env={**os.environ})


def test_derive_writes_the_tutorial_config_and_validates_it(tmp_path: Path):
    out = tmp_path / "1b.yaml"
    sets = [arg for override in TUTORIAL_1B_OVERRIDES for arg in ("--set", override)]
    done = derive(str(JOBS / "pretrain_deepseek3_671b.yaml"), *sets, "-o", str(out),
                  "--nodes", "1", "--devices-per-node", "8", "--json")
    assert done.returncode == 0, done.stderr
    assert out.read_text() == (JOBS / "pretrain_deepseek3_1b.yaml").read_text()
    report = json.loads(done.stdout)
    assert [p["severity"] for p in report["problems"]] == ["warning"]


def test_derive_for_two_nodes_writes_and_exits_1_naming_data_parallel(tmp_path: Path):
    done = derive(str(JOBS / "pretrain_deepseek3_1b.yaml"), "-o", str(tmp_path / "x.yaml"),
                  "--nodes", "2", "--devices-per-node", "8")
    assert done.returncode == 1
    assert "parallel_config.data_parallel" in done.stderr and "set data_parallel to 4" in done.stderr


def test_a_bad_override_writes_nothing(tmp_path: Path):
    out = tmp_path / "x.yaml"
    done = derive(str(JOBS / "pretrain_deepseek3_1b.yaml"), "--set", "parallel_config.dat_parallel=4",
                  "-o", str(out))
    assert done.returncode == 78 and not out.exists()
    assert "nearest existing key: parallel_config.data_parallel" in done.stderr


def test_deriving_from_a_derived_config_keeps_one_header(tmp_path: Path):
    out = tmp_path / "again.yaml"
    done = derive(str(JOBS / "pretrain_deepseek3_1b.yaml"), "--set", "parallel_config.micro_batch_num=8",
                  "-o", str(out), "--nodes", "1", "--devices-per-node", "8")
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert text.count("# Derived from") == 1 and "micro_batch_num=8" in text.splitlines()[1]
