"""Generation: the latent cache gives what full recomputation gives, and `model.predict` answers in
MindFormers' form from a checkpoint our trainer wrote, Chinese prompts included, whatever the locale,
reading relative paths from the job directory (the config's) and writing its result file there."""

import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from model.answers import file_texts, parse_speed, result_texts
from model.deepseek.generate import Sampling, generate
from model.deepseek.network import DeepseekV3
from model.predict import RESULT_FILE
from tests.deepseek_specs import SMALL
from tests.rank_jobs import REPO, rank_environment, run_single_rank, write_job

BOS = "<｜begin▁of▁sentence｜>"  # noqa: RUF001 - DeepSeek's special token, character for character
PROMPT = "请介绍一下北京的景点"


def test_cached_generation_matches_recomputing_everything():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_device("CPU")
    ms.set_seed(3)
    network = DeepseekV3(SMALL)
    prompt = [5, 17, 99, 3]
    cached = generate(network, prompt, max_new_tokens=6)
    tokens = list(prompt)
    for _ in range(6):
        logits = network.logits(Tensor(np.array([tokens], np.int32))).asnumpy()
        tokens.append(int(np.argmax(logits[0, -1])))
    assert cached == tokens[len(prompt):]
    sampled = [generate(network, prompt, max_new_tokens=6, sampling=Sampling(greedy=False, top_k=20, seed=9))
               for _ in range(2)]
    assert sampled[0] == sampled[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    directory = tmp_path_factory.mktemp("trained")
    job = write_job(directory)
    corpus = directory / "corpus"
    done = run_single_rank(job, corpus, directory / "out", "--max-steps", "20")
    assert done.returncode == 0, done.stderr[-3000:]
    return job, corpus, directory / "out"


def run_predict(trained, *extra: str, env_changes: dict[str, str] | None = None):
    job, corpus, _ = trained
    env = {**rank_environment(corpus), **(env_changes or {})}
    return subprocess.run([sys.executable, "-m", "model.predict", "--config", str(job), *extra], env=env,
                          cwd=REPO, capture_output=True, timeout=300, check=False)


def test_predict_answers_a_chinese_prompt_in_mindformers_form_in_any_locale(trained):
    job_dir = trained[0].parent  # the checkpoint given relative to it; predict runs from the repository
    done = run_predict(trained, "--checkpoint", "out/checkpoint", "--prompt", PROMPT, "--prompt", "def",
                       "--max-new-tokens", "12", env_changes={"LC_ALL": "C", "PYTHONIOENCODING": "latin-1"})
    stdout = done.stdout.decode("utf-8")
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    [line] = [line for line in stdout.splitlines() if "output result is:" in line]
    assert f"output result is: [{{'text_generation_text': ['{BOS}{PROMPT}" in line
    texts = result_texts(line)
    assert texts is not None and len(texts) == 2 and texts[1].startswith(BOS + "def")
    assert len(texts[0]) > len(BOS + PROMPT)
    written = (job_dir / RESULT_FILE).read_text(encoding="utf-8")
    assert file_texts(written) == texts
    assert f"output result is saved at: {job_dir / RESULT_FILE}" in stdout and "Predict Over!" in stdout
    speeds = [s for row in stdout.splitlines() if (s := parse_speed(row)) is not None]
    assert len(speeds) == 2 and all(s.first_token_seconds is not None and 0 < s.tokens <= 12 for s in speeds)


def test_predict_without_a_checkpoint_says_so(trained):
    done = run_predict(trained, "--prompt", "x", "--checkpoint", str(trained[2] / "nowhere"))
    assert done.returncode == 1
    assert b"checkpoint not found" in done.stderr and b"nowhere" in done.stderr


def test_predict_refuses_a_blank_prompt_before_loading_anything(trained):
    done = run_predict(trained, "--prompt", "x", "--prompt", "  ")
    assert done.returncode == 2 and b"a prompt must hold some text to continue" in done.stderr


def test_predict_refuses_a_tokenizer_larger_than_the_vocabulary(trained, tmp_path):
    from model.data.corpus import build_corpus
    bigger = build_corpus(tmp_path, vocab_size=1024, seq_length=64)
    done = run_predict(trained, "--prompt", "x", "--checkpoint", str(trained[2] / "checkpoint"),
                       "--tokenizer", str(bigger.tokenizer_path))
    assert done.returncode == 1
    assert b"more than the model's vocab_size 512" in done.stderr


MEMORISED = "The quick brown fox jumps over the lazy dog near the quiet river bank."


@pytest.fixture(scope="module")
def memorised(tmp_path_factory):
    """The small model trained on one sentence, over and over, until it knows it by heart."""
    from model.data.convert import convert
    from model.data.corpus import build_corpus

    directory = tmp_path_factory.mktemp("memorised")
    tokenizer = build_corpus(directory / "corpus", vocab_size=512, seq_length=64).tokenizer_path
    text = directory / "text.txt"
    text.write_text("\n\n".join([MEMORISED] * 400) + "\n", encoding="utf-8")
    convert(text, directory / "memo", tokenizer, seq_length=64, mode="stitch")
    prefix = directory / "memo_text_document"
    job = write_job(directory, f"train_dataset.data_loader.config.data_path=['1', '{prefix}']",
                    "train_dataset.data_loader.sizes=[800, 0, 0]")
    done = run_single_rank(job, directory / "corpus", directory / "out")
    assert done.returncode == 0, done.stderr[-3000:]
    return job, tokenizer, directory


def test_a_model_that_memorised_a_sentence_says_it_back(memorised):
    job, tokenizer, directory = memorised
    done = subprocess.run([sys.executable, "-m", "model.predict", "--config", str(job), "--checkpoint",
                           str(directory / "out" / "checkpoint"), "--tokenizer", str(tokenizer),
                           "--prompt", "The quick brown fox",
                           "--max-new-tokens", "48"], env=rank_environment(directory / "corpus"), cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = (directory / RESULT_FILE).read_text(encoding="utf-8")
    assert MEMORISED in file_texts(answer)[0], answer


def test_a_prompt_longer_than_the_model_can_see_is_refused():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    network = DeepseekV3(SMALL)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        generate(network, list(range(SMALL.max_position_embeddings)), max_new_tokens=4)
