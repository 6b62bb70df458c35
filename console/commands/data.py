"""`ascend-console data`: make and check Megatron datasets (`convert`, `corpus`, `inspect`).

A command with sub-commands: each is a (help, add_arguments, execute) triple in SUBCOMMANDS, the way
the top-level commands are modules in console.cli.COMMANDS.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from console import exitcodes
from console.arguments import positive_int
from console.render import print_error, print_json, stderr_console, stdout_console
from model.data.convert import MODES, ConvertError, ConvertResult, convert
from model.data.convert import Progress as ConvertProgress
from model.data.corpus import (
    DEFAULT_SEQ_LENGTH,
    DEFAULT_VOCAB_SIZE,
    MIN_VOCAB_SIZE,
    BuiltCorpus,
    build_corpus,
)
from model.data.indexed import IndexedDataset, IndexedDatasetError, idx_path
from remote.inventory import Cluster

HELP = "make and check Megatron datasets: convert text, build the default corpus, inspect a .bin/.idx"
FIRST_TOKENS = 16


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", type=Path, required=True, metavar="FILE",
                        help="WikiText-style text (e.g. wiki.train.tokens): blank lines between documents")
    parser.add_argument("--output-prefix", type=Path, required=True, metavar="PREFIX",
                        help="writes PREFIX_text_document.bin and .idx")
    parser.add_argument("--vocab-file", type=Path, required=True, metavar="FILE",
                        help="a Hugging Face tokenizer.json (DeepSeek-V3's works as it is)")
    parser.add_argument("--seq-length", type=positive_int, required=True, metavar="N",
                        help="the model's sequence length: sequences hold N + 1 tokens")
    parser.add_argument("--workers", type=positive_int, default=1, metavar="K",
                        help="tokenising processes (default: 1); the output is the same for any K")
    parser.add_argument("--pad-or-stitch", choices=MODES, default="stitch",
                        help="stitch: documents end to end, cut every N + 1 tokens (default); "
                             "pad: one document a sequence, cut or padded to N + 1")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, required=True, metavar="DIR",
                        help="directory for the corpus text, tokenizer.json and the dataset")
    parser.add_argument("--vocab-size", type=positive_int, default=DEFAULT_VOCAB_SIZE, metavar="N",
                        help=f"BPE vocabulary size (default: {DEFAULT_VOCAB_SIZE})")
    parser.add_argument("--seq-length", type=positive_int, default=DEFAULT_SEQ_LENGTH, metavar="N",
                        help=f"sequence length of the dataset (default: {DEFAULT_SEQ_LENGTH})")
    parser.add_argument("--json", action="store_true", help="print what was built as JSON")


def add_inspect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prefix", type=Path, help="the dataset: PREFIX for PREFIX.bin and PREFIX.idx")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


class Subcommand(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    execute: Callable[[argparse.Namespace], int]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    subcommands = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    for name, subcommand in SUBCOMMANDS.items():
        sub = subcommands.add_parser(name, help=subcommand.help, description=subcommand.help)
        subcommand.add_arguments(sub)


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    try:
        return SUBCOMMANDS[args.data_command].execute(args)
    except (ConvertError, IndexedDatasetError) as exc:
        print_error(str(exc))
        return exitcodes.CONFIG


def execute_convert(args: argparse.Namespace) -> int:
    if not args.input.is_file():
        raise exitcodes.UsageError(f"--input {args.input}: no such file")
    if not args.vocab_file.is_file():
        raise exitcodes.UsageError(f"--vocab-file {args.vocab_file}: no such file")
    with progress_bar(f"converting {args.input.name}") as report:
        result = convert(args.input, args.output_prefix, args.vocab_file, seq_length=args.seq_length,
                         mode=args.pad_or_stitch, workers=args.workers, progress=report)
    if args.json:
        print_json(convert_document(result))
    else:
        print_converted(result)
    return exitcodes.OK


def execute_corpus(args: argparse.Namespace) -> int:
    if args.vocab_size < MIN_VOCAB_SIZE:
        raise exitcodes.UsageError(f"--vocab-size {args.vocab_size}: a byte-level BPE needs at least "
                                   f"{MIN_VOCAB_SIZE} (256 bytes, 2 special tokens and one merge)")
    with progress_bar("tokenising the corpus") as report:
        built = build_corpus(args.output, vocab_size=args.vocab_size, seq_length=args.seq_length,
                             progress=report)
    if args.json:
        print_json(corpus_document(built))
        return exitcodes.OK
    what = "built" if built.built else "already built, unchanged"
    console = stdout_console()
    console.print(f"{escape(str(built.directory))}: {what}")
    for label, path in (("text", built.text_path), ("tokenizer", built.tokenizer_path),
                        ("dataset", built.prefix)):
        console.print(f"  {label:<9} {escape(str(path))}")
    console.print(f'  data_path: ["1", "{escape(str(built.prefix))}"]')
    return exitcodes.OK


def execute_inspect(args: argparse.Namespace) -> int:
    prefix = args.prefix.with_suffix("") if args.prefix.suffix in (".bin", ".idx") else args.prefix
    if not idx_path(prefix).is_file():
        raise exitcodes.UsageError(f"{idx_path(prefix)}: no such file")
    with IndexedDataset(prefix) as dataset:
        dataset.verify()
        document = inspect_document(dataset)
    if args.json:
        print_json(document)
        return exitcodes.OK
    table = Table(title=escape(str(prefix)), title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value")
    for key in ("dtype", "sequences", "documents", "tokens", "bin_bytes", "idx_bytes"):
        value = document[key]
        table.add_row(key.replace("_", " "), f"{value:,}" if isinstance(value, int) else str(value))
    lengths = document["sequence_lengths"]
    if lengths:
        table.add_row("sequence length", f"{lengths['min']:,} to {lengths['max']:,}")
        table.add_row(f"sequence 0, first {FIRST_TOKENS}", " ".join(map(str, document["first_tokens"])))
    stdout_console().print(table)
    return exitcodes.OK


SUBCOMMANDS = {
    "convert": Subcommand("text to PREFIX_text_document.bin/.idx, as the tutorial's wikitext_to_bin.py",
                          add_convert_arguments, execute_convert),
    "corpus": Subcommand("build the default corpus (the Python standard library's docstrings), its "
                         "tokenizer and dataset", add_corpus_arguments, execute_corpus),
    "inspect": Subcommand("check a .bin/.idx pair and show its counts, dtype, sizes and first tokens",
                          add_inspect_arguments, execute_inspect),
}


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[ConvertProgress], None]]:
    """A bar on stderr over the input's bytes, and the callback that moves it."""
    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), DownloadColumn(),
                  TextColumn("{task.fields[documents]:,} documents"), TimeRemainingColumn(),
                  console=stderr_console(), transient=True) as bar:
        task = bar.add_task(escape(description), total=None, documents=0)

        def report(progress: ConvertProgress) -> None:
            bar.update(task, completed=progress.bytes_read, total=progress.total_bytes,
                       documents=progress.documents)

        yield report


def convert_document(result: ConvertResult) -> dict[str, Any]:
    document = {field.name: getattr(result, field.name) for field in dataclasses.fields(result)}
    document.update(input=str(result.input), prefix=str(result.prefix), dtype="int32",
                    bin=str(result.bin_path), idx=str(result.idx_path),
                    bin_bytes=result.bin_path.stat().st_size, idx_bytes=result.idx_path.stat().st_size)
    return document


def print_converted(result: ConvertResult) -> None:
    console = stdout_console()
    console.print(f"{result.documents:,} documents -> {result.sequences:,} sequences of "
                  f"{result.seq_length + 1:,} tokens ({result.mode}), {result.tokens:,} tokens")
    if result.dropped_tokens or result.padded_tokens:
        console.print(f"  dropped {result.dropped_tokens:,} tokens, padded {result.padded_tokens:,}")
    console.print(f"  {escape(str(result.bin_path))}")
    console.print(f"  {escape(str(result.idx_path))}")
    console.print(f'  data_path: ["1", "{escape(str(result.prefix))}"]')


def corpus_document(built: BuiltCorpus) -> dict[str, Any]:
    return {"directory": str(built.directory), "built": built.built, "text": str(built.text_path),
            "tokenizer": str(built.tokenizer_path), "prefix": str(built.prefix),
            "vocab_size": built.vocab_size, "seq_length": built.seq_length,
            "sequences": built.sequences, "tokens": built.tokens}


def inspect_document(dataset: IndexedDataset) -> dict[str, Any]:
    lengths = [dataset.length(i) for i in range(len(dataset))]
    return {
        "prefix": str(dataset.prefix),
        "dtype": dataset.dtype.name.lower(),
        "sequences": dataset.sequence_count,
        "documents": dataset.document_count,
        "tokens": dataset.token_count,
        "bin_bytes": dataset.bin_size,
        "idx_bytes": dataset.idx_size,
        "sequence_lengths": {"min": min(lengths), "max": max(lengths)} if lengths else None,
        "first_tokens": dataset.tokens(0)[:FIRST_TOKENS] if lengths else [],
    }
