"""The embedded default corpus: text every Python installation has, for machines with no dataset.

The text is the docstrings of the standard library's own modules, classes and functions, read with
`ast` from its .py files (tests, IDLE, demos and the generated codecs left out), in sorted order and
source order, each distinct docstring once: the same bytes on every run of the same Python, about
1.5 MB on CPython 3.11. It is laid out like WikiText (a `= module =` heading, a `= = name = =` heading
per docstring, blank lines between paragraphs) so that it goes through the same conversion as WikiText.

`build_corpus(directory)` writes there

    corpus.txt                         the text
    tokenizer.json                     a byte-level BPE trained on it by `tokenizers`, with DeepSeek's
                                       BOS and EOS specials (convert.BOS_TOKEN, convert.EOS_TOKEN)
    corpus_text_document.bin / .idx    the text converted (stitch mode), int32
    manifest.json                      what it was built with, and each file's SHA-256

and does nothing when the manifest says it already holds exactly that. Nothing third-party is copied
into the repository: the text comes from the interpreter that runs this.
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import json
import os
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from model.data import wikitext
from model.data.convert import BOS_TOKEN, EOS_TOKEN, ProgressCallback, convert, dataset_prefix
from model.data.indexed import bin_path, create_temporary, idx_path

DEFAULT_VOCAB_SIZE = 2048
MIN_VOCAB_SIZE = 256 + 2 + 1  # every byte, the two specials, and at least one merge
DEFAULT_SEQ_LENGTH = 256
MAX_TEXT_BYTES = 4 << 20  # a cap on the text; CPython 3.11's standard library gives about 1.5 MB
CORPUS_FORMAT = 1  # bump whenever the text, the tokenizer's training or the layout changes
TEXT_NAME = "corpus.txt"
TOKENIZER_NAME = "tokenizer.json"
OUTPUT_PREFIX = "corpus"
MANIFEST_NAME = "manifest.json"
SKIPPED_DIRECTORIES = frozenset({
    "test", "tests", "idle_test", "idlelib", "turtledemo", "site-packages", "dist-packages",
    "__pycache__", "encodings", "lib2to3", "ensurepip", "venv",
})
_DOCUMENTED = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_sources(root: Path) -> Iterator[tuple[str, Path]]:
    """(module name, file) for the standard library's .py files, in sorted order."""
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if d not in SKIPPED_DIRECTORIES)
        for name in sorted(files):
            if name.endswith(".py"):
                relative = (Path(directory) / name).relative_to(root).with_suffix("")
                parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
                yield ".".join(parts), Path(directory) / name


def docstrings(source: bytes) -> Iterator[tuple[str, str]]:
    """(qualified name, docstring) of a module and everything in it, in source order."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):  # a file this Python cannot parse is not part of the corpus
        return
    module = ast.get_docstring(tree)
    if module:
        yield "", module
    yield from _nested_docstrings(tree.body, "")


def _nested_docstrings(body: list[ast.stmt], scope: str) -> Iterator[tuple[str, str]]:
    for node in body:
        if isinstance(node, _DOCUMENTED):
            name = f"{scope}{node.name}"
            text = ast.get_docstring(node)
            if text:
                yield name, text
            yield from _nested_docstrings(node.body, f"{name}.")


def corpus_text(root: Path | None = None, *, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The corpus in WikiText's layout: deterministic for a given standard library."""
    sections: list[str] = []
    size = 0
    seen: set[str] = set()
    for module, path in stdlib_sources(root or stdlib_root()):
        parts = []
        for name, text in docstrings(path.read_bytes()):
            if text not in seen:
                seen.add(text)
                heading = f"= = {name} = =\n\n" if name else ""
                parts.append(f"{heading}{text}\n\n")
        if parts and size < max_bytes:
            section = f"= {module} =\n\n{''.join(parts)}"
            sections.append(section)
            size += len(section.encode())
    return "".join(sections)


def train_tokenizer(documents: Iterable[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE (every byte is a token: no text is unknown) that puts BOS before a text."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[BOS_TOKEN, EOS_TOKEN],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(documents, trainer)
    bos = tokenizer.token_to_id(BOS_TOKEN)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A", pair=f"{BOS_TOKEN} $A {BOS_TOKEN} $B", special_tokens=[(BOS_TOKEN, bos)])
    return tokenizer


@dataclass(frozen=True)
class BuiltCorpus:
    """Where the default corpus is. `prefix` is what a config's data_path names and IndexedDataset opens."""

    directory: Path
    vocab_size: int
    seq_length: int
    sequences: int
    tokens: int
    built: bool  # False: it was already there and nothing was written

    @property
    def text_path(self) -> Path:
        return self.directory / TEXT_NAME

    @property
    def tokenizer_path(self) -> Path:
        return self.directory / TOKENIZER_NAME

    @property
    def prefix(self) -> Path:
        return dataset_prefix(self.directory / OUTPUT_PREFIX)


def default_corpus_dir() -> Path:
    """$ASCEND_CONSOLE_CORPUS, else ascend-console/corpus in the user's cache directory."""
    if os.environ.get("ASCEND_CONSOLE_CORPUS"):
        return Path(os.environ["ASCEND_CONSOLE_CORPUS"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ascend-console" / "corpus"


def build_corpus(directory: Path | None = None, *, vocab_size: int = DEFAULT_VOCAB_SIZE,
                 seq_length: int = DEFAULT_SEQ_LENGTH, workers: int = 1,
                 progress: ProgressCallback | None = None) -> BuiltCorpus:
    """Text, tokenizer and dataset in `directory` (default: `default_corpus_dir()`), unless already there.

    Safe to call from several processes at once (ranks started together): a lock file serialises
    them and the later ones find the corpus built.
    """
    if vocab_size < MIN_VOCAB_SIZE or seq_length < 1:
        raise ValueError(f"vocab_size must be at least {MIN_VOCAB_SIZE} (256 bytes, 2 specials, a merge) "
                         f"and seq_length at least 1 (got {vocab_size}, {seq_length})")
    directory = directory or default_corpus_dir()
    directory.mkdir(parents=True, exist_ok=True)
    wanted = _parameters(vocab_size, seq_length)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = _read_manifest(directory)
        if manifest is not None and manifest["parameters"] == wanted and _files_match(directory, manifest):
            return BuiltCorpus(directory, vocab_size, seq_length, manifest["sequences"], manifest["tokens"],
                               built=False)
        (directory / MANIFEST_NAME).unlink(missing_ok=True)
        text = corpus_text()
        _write_atomically(directory / TEXT_NAME, text.encode())
        tokenizer = train_tokenizer(wikitext.documents(text.splitlines()), vocab_size)
        _write_atomically(directory / TOKENIZER_NAME, tokenizer.to_str(pretty=True).encode())
        result = convert(directory / TEXT_NAME, directory / OUTPUT_PREFIX, directory / TOKENIZER_NAME,
                         seq_length=seq_length, mode="stitch", workers=workers, progress=progress)
        built = BuiltCorpus(directory, vocab_size, seq_length, result.sequences, result.tokens, built=True)
        manifest = {"parameters": wanted, "sequences": result.sequences, "tokens": result.tokens,
                    "sha256": {path.name: _sha256(path) for path in _built_files(built)}}
        _write_atomically(directory / MANIFEST_NAME, json.dumps(manifest, indent=2).encode())
        return built


def _parameters(vocab_size: int, seq_length: int) -> dict[str, Any]:
    return {"format": CORPUS_FORMAT, "vocab_size": vocab_size, "seq_length": seq_length,
            "python": sys.version, "stdlib": str(stdlib_root())}


def _built_files(built: BuiltCorpus) -> list[Path]:
    return [built.text_path, built.tokenizer_path, bin_path(built.prefix), idx_path(built.prefix)]


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and "parameters" in manifest else None


def _files_match(directory: Path, manifest: dict[str, Any]) -> bool:
    recorded = manifest.get("sha256", {})
    if not isinstance(recorded, dict) or not recorded:
        return False
    for name, digest in recorded.items():
        path = directory / name
        if not path.is_file() or _sha256(path) != digest:
            return False
    return True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    temporary, handle = create_temporary(path)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
