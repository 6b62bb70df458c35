"""Predict for real on a local cluster (two nodes on this machine, a real msrun): the tiny job trained
once for the module, then `predict JOB --prompt` finds its last checkpoint on its nodes, launches
model.predict under msrun on the same nodes and prints the continuation; `logs --answer --json` reads
the same answer from the store; the result file is in the predict job's directory. A predict job named
as the training job, and a checkpoint missing on the nodes, are refused with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.answers import RESULT_FILE, file_texts
from tests.rank_jobs import write_job
from tests.test_logs_local import Console, local_console

PROMPT = "Return the number of"


@pytest.fixture(scope="module")
def here(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Console]:
    """A local cluster, its own state and corpus, and the console's command line on them."""
    directory = tmp_path_factory.mktemp("predict")
    return directory, local_console(directory)


@pytest.fixture(scope="module")
def trained(here: tuple[Path, Console]) -> str:
    """The tiny job trained for 10 steps on both nodes; its id."""
    directory, console = here
    job = write_job(directory, "train_dataset.data_loader.sizes=[80, 0, 0]")
    done = console("launch", str(job), "--follow", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    return str(json.loads(done.stdout.splitlines()[0])["job_id"])


def test_predict_from_a_training_job_by_its_id_prints_the_continuation(here: tuple[Path, Console],
                                                                        trained: str):
    directory, console = here
    done = console("predict", trained, "--prompt", PROMPT, "--max-new-tokens", "8", "--json")
    assert done.returncode == 0, done.stdout + done.stderr[-3000:] + rank_log_tails(directory)
    outcome = json.loads(done.stdout)
    checkpoint = Path(outcome["checkpoint"])
    assert checkpoint.is_relative_to(directory / "n0" / "jobs" / trained) and checkpoint.suffix == ".ckpt"
    [answer] = outcome["answer"]["answers"]
    assert answer["text"].startswith(PROMPT) and len(answer["text"]) > len(PROMPT), answer
    assert 0 < answer["tokens"] <= 8 and answer["first_token_seconds"] > 0
    predicted = outcome["job_id"]

    logs = console("logs", predicted, "--answer", "--json", timeout=120)
    assert logs.returncode == 0, logs.stderr
    assert json.loads(logs.stdout)["answers"][0]["text"] == answer["text"]
    saved = directory / "n0" / "jobs" / predicted / RESULT_FILE
    assert file_texts(saved.read_text(encoding="utf-8"))[0].endswith(answer["text"])

    again = console("predict", predicted, "--prompt", PROMPT, timeout=120)
    assert again.returncode == 1
    assert f"{predicted} is a predict job: name a training job" in " ".join(again.stderr.split())
    unanswered = console("logs", trained, "--answer", timeout=120)
    assert unanswered.returncode == 64
    assert f"{trained} is a train job: only a predict job answers" in " ".join(unanswered.stderr.split())


def test_a_checkpoint_missing_on_the_nodes_is_named_with_each_node(here: tuple[Path, Console]):
    directory, console = here
    job = write_job(directory)
    done = console("launch", str(job), "--kind", "predict", "--prompt", PROMPT, "--checkpoint",
                   "/nowhere/tiny.ckpt", timeout=300)
    assert done.returncode == 1
    said = " ".join(done.stdout.split() + done.stderr.split())
    for node in ("n0", "n1"):
        assert f"checkpoint /nowhere/tiny.ckpt is not on {node}" in said


def rank_log_tails(directory: Path) -> str:
    """The end of every predict job's rank logs on n0: why a run ended badly, said in the failure."""
    return "".join(f"\n--- {log}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                   for log in sorted(directory.glob("n0/jobs/*-predict/logs/worker_*.log")))
