"""`python -m model.predict --config JOB.yaml --checkpoint CKPT --prompt "..."`: generate text.

Prints the answer as MindFormers' predict does (`output result is: [{'text_generation_text': [...]}]`,
the prompt included) and writes it to `<output_dir>/text_generation_result.txt`. Under msrun every rank
joins the cluster (msrun's scheduler waits for all of them) and generates; rank 0 writes the file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from model.config import JobSpec
from model.runconfig import RunConfig
from model.train import CONFIG_ERROR, load_or_report, log, setup_logging

RESULT_FILE = "text_generation_result.txt"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m model.predict", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True,
                        help="the job config the model was trained with")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="a .ckpt file, or a checkpoint directory (rank_0's newest is used); "
                             "default: the config's load_checkpoint")
    parser.add_argument("--prompt", action="append", required=True, help="text to continue (repeatable)")
    parser.add_argument("--tokenizer", type=Path, default=None,
                        help="tokenizer.json (default: processor.tokenizer.tokenizer_file, else the "
                             "embedded corpus's)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--do-sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default=None, help="overrides output_dir in the config")
    return parser.parse_args(argv)


def result_line(text: str) -> str:
    """MindFormers' rendering: the repr of its result list (Python 3 keeps CJK characters as they are)."""
    return f"output result is: {[{'text_generation_text': [text]}]}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8", errors="replace")  # msrun's log file, whatever the locale
    setup_logging()
    loaded = load_or_report(args.config, args.output_dir)
    if loaded is None:
        return CONFIG_ERROR
    job, run = loaded
    try:
        texts = predict(job, run, args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for text in texts:
        log.info(result_line(text))
    return 0


def predict(job: JobSpec, run: RunConfig, args: argparse.Namespace) -> list[str]:
    from model.data.convert import EOS_TOKEN, load_tokenizer
    from model.deepseek.generate import Sampling
    from model.deepseek.predictor import Predictor  # MindSpore loads here, after the cheap checks

    tokenizer = load_tokenizer(tokenizer_path(job, run, args.tokenizer))
    if tokenizer.get_vocab_size() > job.model.vocab_size:
        raise ValueError(f"the tokenizer has {tokenizer.get_vocab_size()} tokens, more than the model's "
                         f"vocab_size {job.model.vocab_size}: not the tokenizer this model was trained with")
    checkpoint = args.checkpoint or (Path(job.training.load_checkpoint) if job.training.load_checkpoint
                                     else None)
    if checkpoint is None:
        raise ValueError("no checkpoint: give --checkpoint or set load_checkpoint in the config")
    predictor = Predictor(job, checkpoint, prefix=run.checkpoint.prefix)
    eos = tokenizer.token_to_id(EOS_TOKEN)
    sampling = Sampling(greedy=not args.do_sample, temperature=args.temperature, top_k=args.top_k,
                        top_p=args.top_p, seed=args.seed)
    texts = []
    for prompt in args.prompt:
        ids = tokenizer.encode(prompt).ids
        new = predictor.continue_tokens(ids, max_new_tokens=args.max_new_tokens,
                                        stop_tokens=frozenset() if eos is None else frozenset({eos}),
                                        sampling=sampling)
        texts.append(tokenizer.decode(ids + new, skip_special_tokens=False))
    if predictor.rank == 0:
        output = Path(run.output_dir)
        output.mkdir(parents=True, exist_ok=True)
        (output / RESULT_FILE).write_text("".join(f"{text}\n" for text in texts), encoding="utf-8")
    return texts


def tokenizer_path(job: JobSpec, run: RunConfig, given: Path | None) -> Path:
    if given is not None:
        return given
    if run.tokenizer_file:
        return Path(run.tokenizer_file)
    from model.data.corpus import build_corpus
    return build_corpus(vocab_size=job.model.vocab_size, seq_length=job.model.seq_length).tokenizer_path


if __name__ == "__main__":
    sys.exit(main())
