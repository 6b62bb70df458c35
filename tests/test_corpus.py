"""The embedded default corpus: the same bytes on every build, built once, and a tokenizer that
round-trips any text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from console.cli import main
from console.exitcodes import OK, USAGE
from model.data import corpus
from model.data.convert import BOS_TOKEN, EOS_TOKEN
from model.data.corpus import BuiltCorpus, build_corpus, corpus_text, docstrings
from model.data.indexed import IndexedDataset

VOCAB, SEQ = 512, 64
FILES = ("corpus.txt", "tokenizer.json", "corpus_text_document.bin", "corpus_text_document.idx")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltCorpus:
    return build_corpus(tmp_path_factory.mktemp("corpus"), vocab_size=VOCAB, seq_length=SEQ)


def test_docstrings_in_source_order_with_qualified_names():
    source = b'"""Module."""\nclass K:\n    """Klass."""\n    def m(self):\n        """Method."""\n' \
             b'def f():\n    pass\nasync def g():\n    """G."""\n'
    assert list(docstrings(source)) == [("", "Module."), ("K", "Klass."), ("K.m", "Method."), ("g", "G.")]
    assert list(docstrings(b"def broken(:\n")) == []


def test_corpus_text_is_wikitext_shaped_and_bounded():
    text = corpus_text()
    assert text.startswith("= __future__ =\n\n")
    assert "= = JSONDecoder = =" in text and "= json.decoder =" in text
    assert 500_000 < len(text.encode()) < corpus.MAX_TEXT_BYTES + 200_000
    modules = [line[2:-2] for line in text.splitlines() if line.startswith("= ") and line.count("=") == 2]
    assert len(modules) == len(set(modules)) > 300
    assert not any(name.startswith(("test.", "idlelib", "encodings")) for name in modules)


def test_build_writes_everything_a_config_needs(built):
    assert built.built and built.prefix == built.directory / "corpus_text_document"
    for name in FILES:
        assert (built.directory / name).is_file(), name
    with IndexedDataset(built.prefix) as dataset:
        assert dataset.sequence_count == built.sequences > 100
        assert {dataset.length(i) for i in (0, len(dataset) - 1)} == {SEQ + 1}
        first = dataset.tokens(0)
    tokenizer = Tokenizer.from_file(str(built.tokenizer_path))
    assert tokenizer.get_vocab_size() == VOCAB
    assert first[0] == tokenizer.token_to_id(BOS_TOKEN) and max(first) < VOCAB
    assert tokenizer.token_to_id(EOS_TOKEN) is not None


def test_tokenizer_round_trips_any_text_and_adds_bos(built):
    tokenizer = Tokenizer.from_file(str(built.tokenizer_path))
    for text in ("Return the value of x.", "深度求索 DeepSeek-V3, 你好!", "tab\tand\nnewline"):
        encoding = tokenizer.encode(text)
        assert encoding.tokens[0] == BOS_TOKEN
        assert tokenizer.decode(encoding.ids) == text


def test_a_second_build_is_a_no_op(built):
    before = {name: (built.directory / name).stat().st_mtime_ns for name in FILES}
    again = build_corpus(built.directory, vocab_size=VOCAB, seq_length=SEQ)
    assert not again.built and again == BuiltCorpus(built.directory, VOCAB, SEQ, built.sequences,
                                                    built.tokens, built=False)
    assert {name: (built.directory / name).stat().st_mtime_ns for name in FILES} == before


def test_cli_corpus_reports_the_built_corpus(built, capsys):
    code = main(["data", "corpus", "--output", str(built.directory), "--vocab-size", str(VOCAB),
                 "--seq-length", str(SEQ), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == OK and report["built"] is False
    assert (report["prefix"], report["tokenizer"]) == (str(built.prefix), str(built.tokenizer_path))


def test_the_same_bytes_from_another_interpreter_and_a_rebuild_after_damage(built, tmp_path):
    """Build in a fresh process (its own hash seeds) and compare; then damage a file and rebuild."""
    script = ("import sys; from pathlib import Path; from model.data.corpus import build_corpus; "
              f"build_corpus(Path(sys.argv[1]), vocab_size={VOCAB}, seq_length={SEQ})")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                          timeout=240, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (built.directory / name).read_bytes(), name
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["parameters"]["vocab_size"] == VOCAB
    (tmp_path / "corpus_text_document.bin").write_bytes(b"damaged")
    assert build_corpus(tmp_path, vocab_size=VOCAB, seq_length=SEQ).built
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (built.directory / name).read_bytes(), name
    other = build_corpus(tmp_path, vocab_size=VOCAB, seq_length=SEQ * 2)
    assert other.built and other.sequences < built.sequences


def test_a_vocabulary_smaller_than_the_bytes_is_refused(tmp_path, capsys):
    assert main(["data", "corpus", "--output", str(tmp_path), "--vocab-size", "100"]) == USAGE
    assert "--vocab-size 100" in capsys.readouterr().err
    with pytest.raises(ValueError, match="vocab_size must be at least 259"):
        build_corpus(tmp_path, vocab_size=258)
    assert list(tmp_path.iterdir()) == []


def test_default_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ASCEND_CONSOLE_CORPUS", str(tmp_path / "here"))
    assert corpus.default_corpus_dir() == tmp_path / "here"
    monkeypatch.delenv("ASCEND_CONSOLE_CORPUS")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert corpus.default_corpus_dir() == tmp_path / "ascend-console" / "corpus"
