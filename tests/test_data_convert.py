"""Text to Megatron datasets: WikiText clean-up, stitch and pad chunking to the token, worker-count
independence, and `ascend-console data` end to end with its errors."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from console.cli import main
from console.exitcodes import CONFIG, OK, USAGE
from model.data import convert as convert_module
from model.data import wikitext
from model.data.convert import BOS_TOKEN, EOS_TOKEN, ConvertError, Encoder, Progress, convert, load_tokenizer
from model.data.indexed import IndexedDataset, idx_path

WORDS = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
BOS, EOS = 1, 2  # then [UNK] 0 and a=3 .. j=12
IDS = {"BOS": BOS, "EOS": EOS, "UNK": 0, **{word: index for index, word in enumerate(WORDS, start=3)}}


def ids(words: str) -> list[int]:
    return [IDS[word] for word in words.split()]


def word_tokenizer(path: Path, *, specials: bool = True) -> Path:
    """Whitespace words to fixed ids, so that chunk boundaries can be checked token by token."""
    vocab = {"[UNK]": 0, **({BOS_TOKEN: BOS, EOS_TOKEN: EOS} if specials else {"x": 1, "y": 2})}
    vocab.update({word: index for index, word in enumerate(WORDS, start=3)})
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.save(str(path))
    return path


def dataset(prefix: Path) -> list[list[int]]:
    with IndexedDataset(prefix) as read:
        assert read.document_count == read.sequence_count  # every sequence its own document
        return [read.tokens(i) for i in range(len(read))]


# --- WikiText clean-up ----------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "cleaned"), [
    ("a 2 @,@ 000 @-@ strong army of 1 @.@ 5 men", "a 2,000-strong army of 1.5 men"),
    ("it rained ; then : nothing , really . Then ? no ! yes",
     "it rained; then: nothing, really. Then? no! yes"),
    ("the end .", "the end."),
    ("( in brackets ) and [ square ] and { curly }", "(in brackets) and [square] and {curly}"),
    ('he said " hello there " twice', 'he said "hello there" twice'),
    ("the players ' union", "the players' union"),
    ("the team 's coach", "the team's coach"),
    ("players ' and team 's", "players'and team's"),  # the tutorial pairs the two apostrophes
    ("10 \N{DEGREE SIGN} C , N years", "10\N{DEGREE SIGN}C, 1 years"),
    ("in N N years", "in 1 N years"),  # the tutorial's replace does not overlap
    ("= = Section = =", "== Section =="),
    (" first line \n second line ", " first line\nsecond line "),
])
def test_clean_undoes_wikitext_tokenisation(raw, cleaned):
    assert wikitext.clean(raw) == cleaned


RAW = "".join(f"{line}\n" for line in [
    " ", " = Alpha =", " ", " Alpha is a letter @-@ like sign .", " It has two lines .", " ", " = = Use = =",
    " ", " Used ( mostly ) in N texts .", "\t", " Third paragraph", " = not a heading inside a paragraph =",
    " ", " = = = Deep = = =",
])


def test_documents_are_paragraphs_without_headings():
    assert list(wikitext.documents(RAW.splitlines(keepends=True))) == [
        "Alpha is a letter-like sign.\nIt has two lines.",
        "Used (mostly) in 1 texts.",
        "Third paragraph\n= not a heading inside a paragraph =",
    ]


def test_raw_paragraphs_break_at_whitespace_only_lines_and_the_end():
    assert list(wikitext.raw_paragraphs(["x\n", "y\r\n", "  \t\n", "z"])) == ["x\ny", "z"]
    assert list(wikitext.raw_paragraphs(["\n", " \n"])) == []


# --- tokenising and chunking ----------------------------------------------------------------------

def test_bos_goes_before_each_document_when_the_tokenizer_has_deepseeks(tmp_path):
    encoder = Encoder(load_tokenizer(word_tokenizer(tmp_path / "t.json")))
    encoded = encoder.encode(["a b", "= H =", "c"])
    assert [list(document) for document in encoded] == [ids("BOS a b"), ids("BOS c")]
    plain = Encoder(load_tokenizer(word_tokenizer(tmp_path / "p.json", specials=False)))
    assert [list(document) for document in plain.encode(["a b"])] == [ids("a b")]


TEXT = " a b c \n \n = Title = \n \n d e \n \n f g h i \n"  # documents [BOS a b c] [BOS d e] [BOS f g h i]


def test_stitch_cuts_seq_length_plus_one_and_drops_the_tail(tmp_path):
    (tmp_path / "in.txt").write_text(TEXT)
    result = convert(tmp_path / "in.txt", tmp_path / "out", word_tokenizer(tmp_path / "t.json"), seq_length=4)
    assert result.prefix == tmp_path / "out_text_document"
    assert dataset(result.prefix) == [ids("BOS a b c BOS"), ids("d e BOS f g")]
    assert (result.documents, result.sequences, result.tokens, result.dropped_tokens) == (3, 2, 10, 2)


def test_stitch_exact_multiple_drops_nothing(tmp_path):
    (tmp_path / "in.txt").write_text(TEXT)
    result = convert(tmp_path / "in.txt", tmp_path / "out", word_tokenizer(tmp_path / "t.json"), seq_length=5)
    assert dataset(result.prefix) == [ids("BOS a b c BOS d"), ids("e BOS f g h i")]
    assert result.dropped_tokens == 0


def test_pad_makes_one_sequence_per_document_cut_or_padded_with_eos(tmp_path):
    (tmp_path / "in.txt").write_text(TEXT + " \n a b c d e f g \n")
    result = convert(tmp_path / "in.txt", tmp_path / "out", word_tokenizer(tmp_path / "t.json"), seq_length=4,
                     mode="pad")
    assert dataset(result.prefix) == [ids("BOS a b c EOS"), ids("BOS d e EOS EOS"), ids("BOS f g h i"),
                                      ids("BOS a b c d")]
    assert (result.sequences, result.dropped_tokens, result.padded_tokens) == (4, 3, 3)


def test_pad_uses_the_tokenizers_own_padding_id(tmp_path):
    path = word_tokenizer(tmp_path / "t.json")
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_padding(pad_id=0, pad_token="[UNK]")
    tokenizer.save(str(path))
    (tmp_path / "in.txt").write_text(" d e \n")
    result = convert(tmp_path / "in.txt", tmp_path / "out", path, seq_length=4, mode="pad")
    assert dataset(result.prefix) == [ids("BOS d e UNK UNK")]


def test_pad_without_a_pad_token_is_an_error(tmp_path):
    (tmp_path / "in.txt").write_text(TEXT)
    with pytest.raises(ConvertError, match="pad mode needs a padding id"):
        convert(tmp_path / "in.txt", tmp_path / "out", word_tokenizer(tmp_path / "p.json", specials=False),
                seq_length=4, mode="pad")


def test_too_little_text_writes_nothing(tmp_path):
    (tmp_path / "in.txt").write_text(" a b \n")
    with pytest.raises(ConvertError, match=r"1 documents, 3 tokens: not enough for one sequence of .* = 9"):
        convert(tmp_path / "in.txt", tmp_path / "out", word_tokenizer(tmp_path / "t.json"), seq_length=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "t.json"]


def many_paragraphs(path: Path, count: int) -> Path:
    lines = []
    for n in range(count):
        words = " ".join(WORDS[(n * 7 + k) % len(WORDS)] for k in range(1 + n % 13))
        lines.append(f" = = Part {n} = = \n \n {words} \n \n" if n % 10 == 0 else f" {words} \n \n")
    path.write_text("".join(lines))
    return path


@pytest.mark.parametrize("mode", ["stitch", "pad"])
def test_two_workers_write_the_same_bytes_as_one(tmp_path, monkeypatch, mode):
    monkeypatch.setattr(convert_module, "BATCH_BYTES", 64)  # many batches, so several are in flight
    source = many_paragraphs(tmp_path / "in.txt", 400)
    tokenizer = word_tokenizer(tmp_path / "t.json")
    seen: list[Progress] = []
    one = convert(source, tmp_path / "one", tokenizer, seq_length=7, mode=mode)
    two = convert(source, tmp_path / "two", tokenizer, seq_length=7, mode=mode, workers=2,
                  progress=seen.append)
    for suffix in (".bin", ".idx"):
        assert Path(f"{one.prefix}{suffix}").read_bytes() == Path(f"{two.prefix}{suffix}").read_bytes()
    assert one.documents == 400 and (one.sequences, one.tokens) == (two.sequences, two.tokens)
    assert len(seen) > 10 and seen[-1].bytes_read == seen[-1].total_bytes == source.stat().st_size
    assert [p.documents for p in seen] == sorted(p.documents for p in seen)


def test_input_and_tokenizer_errors_name_the_file(tmp_path):
    tokenizer = word_tokenizer(tmp_path / "t.json")
    with pytest.raises(ConvertError, match=r"missing\.txt: no such input file"):
        convert(tmp_path / "missing.txt", tmp_path / "out", tokenizer, seq_length=4)
    (tmp_path / "in.txt").write_text(TEXT)
    (tmp_path / "bad.json").write_text('{"model": "nonsense"}')
    with pytest.raises(ConvertError, match=r"bad\.json: not a Hugging Face tokenizer\.json"):
        convert(tmp_path / "in.txt", tmp_path / "out", tmp_path / "bad.json", seq_length=4)
    (tmp_path / "latin1.txt").write_bytes(b" a b \n \n caf\xe9 \n")
    with pytest.raises(ConvertError, match=r"latin1\.txt:3: not UTF-8 text"):
        convert(tmp_path / "latin1.txt", tmp_path / "out", tokenizer, seq_length=1)
    with pytest.raises(ConvertError, match=r"nowhere: no such directory"):
        convert(tmp_path / "in.txt", tmp_path / "nowhere" / "out", tokenizer, seq_length=4)


# --- ascend-console data --------------------------------------------------------------------------

def test_cli_convert_then_inspect(tmp_path, capsys):
    (tmp_path / "in.txt").write_text(TEXT)
    tokenizer = word_tokenizer(tmp_path / "t.json")
    code = main(["data", "convert", "--input", str(tmp_path / "in.txt"), "--output-prefix",
                 str(tmp_path / "wiki"), "--vocab-file", str(tokenizer), "--seq-length", "4",
                 "--workers", "1", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == OK
    assert report["prefix"] == str(tmp_path / "wiki_text_document")
    assert (report["sequences"], report["tokens"], report["dtype"]) == (2, 10, "int32")
    assert (report["bin_bytes"], report["idx_bytes"]) == (40, 34 + 12 * 2 + 8 * 3)
    assert main(["data", "inspect", str(tmp_path / "wiki_text_document"), "--json"]) == OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["first_tokens"] == ids("BOS a b c BOS") and summary["documents"] == 2
    assert main(["data", "inspect", str(tmp_path / "wiki_text_document.idx")]) == OK
    assert "int32" in capsys.readouterr().out
    assert main(["data", "inspect", str(tmp_path / "wiki")]) == USAGE
    assert "wiki.idx: no such file" in capsys.readouterr().err


def test_cli_errors_and_their_exit_codes(tmp_path, capsys):
    tokenizer = word_tokenizer(tmp_path / "t.json")
    (tmp_path / "in.txt").write_text(TEXT)
    common = ["--output-prefix", str(tmp_path / "out"), "--seq-length", "4"]
    assert main(["data", "convert", "--input", str(tmp_path / "no.txt"), "--vocab-file", str(tokenizer),
                 *common]) == USAGE
    assert "--input" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["data", "convert", "--input", str(tmp_path / "in.txt"), "--vocab-file",
                 str(tmp_path / "bad.json"), *common]) == CONFIG
    assert "bad.json: not a Hugging Face tokenizer.json" in capsys.readouterr().err
    assert main(["data", "convert", "--input", str(tmp_path / "in.txt"), "--vocab-file", str(tokenizer),
                 *common]) == OK
    index = bytearray(idx_path(tmp_path / "out_text_document").read_bytes())
    index[9:17] = struct.pack("<Q", 3)
    idx_path(tmp_path / "out_text_document").write_bytes(bytes(index))
    capsys.readouterr()
    assert main(["data", "inspect", str(tmp_path / "out_text_document")]) == CONFIG
    assert "out_text_document.idx: index version 3" in capsys.readouterr().err.replace("\n", "")
    with pytest.raises(SystemExit) as exited:
        main(["data", "convert", "--input", "x", "--seq-length", "0"])
    assert exited.value.code == USAGE
