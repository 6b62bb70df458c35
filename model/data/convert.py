"""Text to a Megatron dataset, with the meaning of the DeepSeek-V3 tutorial's `wikitext_to_bin.py`.

    convert(Path("wiki.train.tokens"), Path("out/wiki_4096"), Path("tokenizer.json"), seq_length=4096)

writes `out/wiki_4096_text_document.bin/.idx` (int32 tokens). The input is cut into documents as
`model.data.wikitext` says. Each document is tokenised by a Hugging Face `tokenizers` tokenizer.json:
when the vocabulary has DeepSeek's begin-of-sentence token (BOS_TOKEN), it goes before every document, as the
tutorial's `LlamaTokenizerFast` puts it (DeepSeek-V3's own tokenizer.json works unchanged); otherwise
the tokenizer's own post-processor decides. Then

- stitch (the default): all documents one after another, cut into chunks of seq_length + 1 tokens,
  each chunk one document of one sequence; a last chunk shorter than that is dropped;
- pad: each document one sequence of exactly seq_length + 1 tokens, cut or padded on the right with
  the tokenizer's padding id, else the id of DeepSeek's EOS_TOKEN (the tutorial's intended pad).

With workers > 1, batches of paragraphs are cleaned and tokenised in that many processes and written
in input order, so the output is the same for any number of workers. The input is read as it goes
and tokens go straight to disk: memory stays bounded whatever the file's size.
"""

from __future__ import annotations

import os
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Literal

from tokenizers import Tokenizer

from model.data import wikitext
from model.data.indexed import DType, IndexedDatasetWriter, bin_path, idx_path

BOS_TOKEN = "<｜begin▁of▁sentence｜>"  # noqa: RUF001 - DeepSeek's, character for character
EOS_TOKEN = "<｜end▁of▁sentence｜>"  # noqa: RUF001
DOCUMENT_SUFFIX = "_text_document"
BATCH_BYTES = 1 << 18  # raw text a worker gets at a time
Mode = Literal["stitch", "pad"]
MODES: tuple[Mode, ...] = ("stitch", "pad")


class ConvertError(Exception):
    """The input, the tokenizer or the output place is wrong; the message names the file."""


@dataclass(frozen=True)
class Progress:
    """How far a conversion is: bytes of input read of its size, and what has been written."""

    bytes_read: int
    total_bytes: int
    documents: int
    sequences: int


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class ConvertResult:
    input: Path
    prefix: Path  # the dataset prefix: `<output prefix>_text_document`, what a config's data_path names
    mode: Mode
    seq_length: int
    documents: int  # text documents read
    sequences: int  # sequences written (each its own document)
    tokens: int  # tokens written
    dropped_tokens: int  # stitch: the short tail; pad: what was cut off long documents
    padded_tokens: int  # pad: padding added

    @property
    def bin_path(self) -> Path:
        return bin_path(self.prefix)

    @property
    def idx_path(self) -> Path:
        return idx_path(self.prefix)


def dataset_prefix(output_prefix: str | os.PathLike[str]) -> Path:
    """The tutorial's naming: `--output-prefix out/wiki` writes `out/wiki_text_document.bin/.idx`."""
    return Path(f"{os.fspath(output_prefix)}{DOCUMENT_SUFFIX}")


def load_tokenizer(path: str | os.PathLike[str]) -> Tokenizer:
    """A tokenizer.json, or a ConvertError that says what is wrong with it."""
    if not Path(path).is_file():
        raise ConvertError(f"{path}: no such tokenizer file")
    try:
        return Tokenizer.from_file(os.fspath(path))
    except Exception as exc:  # noqa: BLE001 - tokenizers raises a bare Exception for a malformed file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConvertError(f"{path}: not a Hugging Face tokenizer.json: {first}") from None


class Encoder:
    """Paragraphs to token ids, the tutorial's way (one BOS before each document where there is one)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.bos_id = tokenizer.token_to_id(BOS_TOKEN)

    def encode(self, paragraphs: list[str]) -> list[array[int]]:
        texts = [text for text in map(wikitext.document, paragraphs) if text is not None]
        if self.bos_id is None:
            return [array("i", e.ids) for e in self.tokenizer.encode_batch(texts)]
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        return [array("i", [self.bos_id, *e.ids]) for e in encodings]


def pad_id(tokenizer: Tokenizer, source: str | os.PathLike[str]) -> int:
    """The id pad mode fills with: the tokenizer's padding id, else EOS_TOKEN's."""
    if tokenizer.padding is not None:
        return int(tokenizer.padding["pad_id"])
    eos = tokenizer.token_to_id(EOS_TOKEN)
    if eos is None:
        raise ConvertError(f"{source}: pad mode needs a padding id: the tokenizer has no padding "
                           f"settings and no {EOS_TOKEN} token")
    return eos


@dataclass(frozen=True)
class _Batch:
    paragraphs: list[str]
    bytes_read: int  # input consumed up to the end of this batch


def _batches(path: Path) -> Iterator[_Batch]:
    """Raw paragraphs, about BATCH_BYTES at a time, with how far into the file each batch ends."""
    consumed = 0

    def lines() -> Iterator[str]:
        nonlocal consumed
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                consumed += len(raw)
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ConvertError(f"{path}:{number}: not UTF-8 text ({exc.reason} at byte "
                                       f"{exc.start} of the line)") from None

    batch: list[str] = []
    size = 0
    for paragraph in wikitext.raw_paragraphs(lines()):
        batch.append(paragraph)
        size += len(paragraph)
        if size >= BATCH_BYTES:
            yield _Batch(batch, consumed)
            batch, size = [], 0
    yield _Batch(batch, consumed)


_worker_encoder: Encoder | None = None


def _start_worker(tokenizer_path: str) -> None:
    global _worker_encoder  # noqa: PLW0603 - one encoder per worker process, built once
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # the processes are the parallelism
    _worker_encoder = Encoder(load_tokenizer(tokenizer_path))


def _encode_in_worker(paragraphs: list[str]) -> list[array[int]]:
    assert _worker_encoder is not None, "worker started without its tokenizer"
    return _worker_encoder.encode(paragraphs)


def _encoded(batches: Iterator[_Batch], tokenizer_path: Path,
             workers: int) -> Iterator[tuple[list[array[int]], _Batch]]:
    """Each batch's documents as token ids, in input order; at most 2 x workers batches in flight."""
    if workers == 1:
        encoder = Encoder(load_tokenizer(tokenizer_path))
        for batch in batches:
            yield encoder.encode(batch.paragraphs), batch
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_start_worker,
                             initargs=(os.fspath(tokenizer_path),)) as pool:
        pending: deque[tuple[Future[list[array[int]]], _Batch]] = deque()
        for batch in batches:
            pending.append((pool.submit(_encode_in_worker, batch.paragraphs), batch))
            if len(pending) >= 2 * workers:
                future, done = pending.popleft()
                yield future.result(), done
        while pending:
            future, done = pending.popleft()
            yield future.result(), done


class _Stitcher:
    """Documents end to end, written out in chunks of `size` tokens; the short tail is left over."""

    def __init__(self, writer: IndexedDatasetWriter, size: int) -> None:
        self.writer = writer
        self.size = size
        self.buffer: array[int] = array("i")

    def add(self, tokens: array[int]) -> None:
        self.buffer.extend(tokens)
        start = 0
        while len(self.buffer) - start >= self.size:
            self.writer.add_document(self.buffer[start:start + self.size])
            start += self.size
        del self.buffer[:start]


def _pad(tokens: array[int], size: int, fill: int) -> array[int]:
    if len(tokens) >= size:
        return tokens[:size]
    return tokens + array("i", [fill]) * (size - len(tokens))


def convert(input_path: Path, output_prefix: Path, tokenizer_path: Path, *, seq_length: int,
            mode: Mode = "stitch", workers: int = 1,
            progress: ProgressCallback | None = None) -> ConvertResult:
    """Write `<output_prefix>_text_document.bin/.idx` from a WikiText-style text file."""
    if seq_length < 1 or workers < 1 or mode not in MODES:
        raise ValueError(f"seq_length {seq_length} and workers {workers} must be 1 or more, "
                         f"mode one of {MODES} (got {mode!r})")
    if not input_path.is_file():
        raise ConvertError(f"{input_path}: no such input file")
    tokenizer = load_tokenizer(tokenizer_path)
    fill = pad_id(tokenizer, tokenizer_path) if mode == "pad" else 0
    prefix = dataset_prefix(output_prefix)
    if not prefix.parent.is_dir():
        raise ConvertError(f"{prefix.parent}: no such directory for the output")
    size = seq_length + 1
    total = input_path.stat().st_size
    documents = dropped = padded = 0
    with IndexedDatasetWriter(prefix, dtype=DType.INT32) as writer:
        stitcher = _Stitcher(writer, size)
        for encoded, batch in _encoded(_batches(input_path), tokenizer_path, workers):
            for tokens in encoded:
                if mode == "stitch":
                    stitcher.add(tokens)
                else:
                    dropped += max(len(tokens) - size, 0)
                    padded += max(size - len(tokens), 0)
                    writer.add_document(_pad(tokens, size, fill))
            documents += len(encoded)
            if progress is not None:
                progress(Progress(batch.bytes_read, total, documents, writer.sequence_count))
        dropped += len(stitcher.buffer)
        if writer.sequence_count == 0:
            raise ConvertError(f"{input_path}: {documents} documents, {len(stitcher.buffer)} tokens: "
                               f"not enough for one sequence of seq_length + 1 = {size} tokens")
        sequences, tokens_written = writer.sequence_count, writer.token_count
    return ConvertResult(input=input_path, prefix=prefix, mode=mode, seq_length=seq_length,
                         documents=documents, sequences=sequences, tokens=tokens_written,
                         dropped_tokens=dropped, padded_tokens=padded)
