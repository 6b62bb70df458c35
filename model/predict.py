"""`python -m model.predict --config JOB.yaml --checkpoint CKPT --prompt "..."`: generate text.

Prints the answer as MindFormers' predict does (`output result is: [{'text_generation_text': [...]}]`,
one mapping per prompt, the prompt included; then where it saved it and `Predict Over!`), after one
speed line per prompt in MindFormers' wording with the time to the first token added (model/answers.py).
The job directory is the config's directory (a job's config.yaml lives in its job directory) unless
`--job-dir` says otherwise: relative checkpoint and tokenizer paths are read from it, and the result
file (MindFormers' repr of the list) is written there. Under msrun every rank joins the cluster (msrun's
scheduler waits for all of them) and generates; rank 0 writes the file.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from model.answers import PREDICT_OVER, RESULT_FILE, SAVED_MARK, Speed, result_line, result_repr, speed_line
from model.config import JobSpec
from model.runconfig import RunConfig
from model.train import CONFIG_ERROR, load_or_report, log, setup_logging

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["RESULT_FILE", "main"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m model.predict", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True,
                        help="the job config the model was trained with")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="a .ckpt file, or a checkpoint directory (rank_0's newest is used), absolute "
                             "or relative to the job directory; default: the config's load_checkpoint")
    parser.add_argument("--prompt", action="append", required=True, type=prompt_text,
                        help="text to continue (repeatable)")
    parser.add_argument("--tokenizer", type=Path, default=None,
                        help="tokenizer.json (default: processor.tokenizer.tokenizer_file, else the "
                             "embedded corpus's)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--do-sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--job-dir", type=Path, default=None,
                        help="where relative paths are read from and the result file goes "
                             "(default: the config's directory)")
    return parser.parse_args(argv)


def prompt_text(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a prompt must hold some text to continue")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8", errors="replace")  # msrun's log file, whatever the locale
    setup_logging()
    loaded = load_or_report(args.config, None)
    if loaded is None:
        return CONFIG_ERROR
    job, run = loaded
    job_dir = args.job_dir if args.job_dir is not None else args.config.resolve().parent
    try:
        texts, rank = predict(job, run, args, job_dir)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    log.info(result_line(texts))
    if rank == 0:
        saved = job_dir / RESULT_FILE
        saved.write_text(result_repr(texts), encoding="utf-8")
        log.info(f"{SAVED_MARK}{saved}")
    log.info(PREDICT_OVER)
    return 0


def in_job_dir(path: Path, job_dir: Path) -> Path:
    """A path as given when absolute; else read from the job directory."""
    return path if path.is_absolute() else job_dir / path


class Stopwatch:
    """One prompt's generation: started when made, the first token's time taken when heard."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.first: float | None = None

    def heard(self, _token: int) -> None:
        if self.first is None:
            self.first = time.monotonic() - self.started

    def speed(self, tokens: int) -> Speed:
        seconds = time.monotonic() - self.started
        return Speed(seconds, tokens, tokens / seconds if seconds > 0 else 0.0, self.first)


def predict(job: JobSpec, run: RunConfig, args: argparse.Namespace,
            job_dir: Path) -> tuple[list[str], int]:
    """Each prompt's text (the prompt and its continuation, decoded), and this process's rank; each
    prompt's speed is logged as it ends."""
    from model.data.convert import EOS_TOKEN
    from model.deepseek.generate import Sampling
    from model.deepseek.predictor import Predictor  # MindSpore loads here, after the cheap checks

    tokenizer = model_tokenizer(job, run, args.tokenizer, job_dir)
    checkpoint = args.checkpoint or (Path(job.training.load_checkpoint) if job.training.load_checkpoint
                                     else None)
    if checkpoint is None:
        raise ValueError("no checkpoint: give --checkpoint or set load_checkpoint in the config")
    predictor = Predictor(job, in_job_dir(checkpoint, job_dir), prefix=run.checkpoint.prefix)
    eos = tokenizer.token_to_id(EOS_TOKEN)
    sampling = Sampling(greedy=not args.do_sample, temperature=args.temperature, top_k=args.top_k,
                        top_p=args.top_p, seed=args.seed)
    generated = []
    for prompt in args.prompt:
        ids = tokenizer.encode(prompt).ids
        watch = Stopwatch()
        new = predictor.continue_tokens(ids, max_new_tokens=args.max_new_tokens,
                                        stop_tokens=frozenset() if eos is None else frozenset({eos}),
                                        sampling=sampling, on_token=watch.heard)
        speed = watch.speed(len(new))
        log.info(speed_line(speed))
        generated.append(tokenizer.decode(ids + new, skip_special_tokens=False))
    return generated, predictor.rank


def model_tokenizer(job: JobSpec, run: RunConfig, given: Path | None, job_dir: Path) -> Tokenizer:
    """The tokenizer `tokenizer_path` names; one larger than the model's vocabulary is refused."""
    from model.data.convert import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_path(job, run, given, job_dir))
    if tokenizer.get_vocab_size() > job.model.vocab_size:
        raise ValueError(f"the tokenizer has {tokenizer.get_vocab_size()} tokens, more than the model's "
                         f"vocab_size {job.model.vocab_size}: not the tokenizer this model was trained with")
    return tokenizer


def tokenizer_path(job: JobSpec, run: RunConfig, given: Path | None, job_dir: Path) -> Path:
    if given is not None:
        return in_job_dir(given, job_dir)
    if run.tokenizer_file:
        return in_job_dir(Path(run.tokenizer_file), job_dir)
    from model.data.corpus import build_corpus
    return build_corpus(vocab_size=job.model.vocab_size, seq_length=job.model.seq_length).tokenizer_path


if __name__ == "__main__":
    sys.exit(main())
