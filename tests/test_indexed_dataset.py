"""Megatron indexed datasets: byte-exact against MindFormers' builder, read back by us and by an
independent reader written here from the format's table (docs/indexed-dataset.md)."""

from __future__ import annotations

import itertools
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.data.indexed import (
    DType,
    IndexedDataset,
    IndexedDatasetError,
    IndexedDatasetWriter,
    bin_path,
    idx_path,
)

SAMPLES = Path(__file__).parent / "samples" / "indexed"
TINY = SAMPLES / "tiny_text_document"
# 3 documents of one 5-token sequence each: stitch mode with seq_length 4 over the tokens 1..15
TINY_DOCUMENTS = [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13, 14, 15]]


def from_xxd(text: str) -> bytes:
    """The bytes of an `xxd` dump: the hex groups between the offset and the text column."""
    return bytes.fromhex("".join(line[10:49].replace(" ", "") for line in text.splitlines()))


def independent_read(prefix: Path) -> tuple[int, list[list[int]], list[int]]:
    """Dtype code, sequences and document index, read with struct alone from the layout table."""
    index = idx_path(prefix).read_bytes()
    assert index[:9] == b"MMIDIDX\x00\x00"
    (version,) = struct.unpack_from("<Q", index, 9)
    assert version == 1
    code = index[17]
    count, documents = struct.unpack_from("<QQ", index, 18)
    lengths = struct.unpack_from(f"<{count}i", index, 34)
    pointers = struct.unpack_from(f"<{count}q", index, 34 + 4 * count)
    document_index = list(struct.unpack_from(f"<{documents}q", index, 34 + 12 * count))
    assert len(index) == 34 + 12 * count + 8 * documents
    letter, size = {1: ("B", 1), 2: ("b", 1), 3: ("h", 2), 4: ("i", 4), 5: ("q", 8), 8: ("H", 2)}[code]
    data = bin_path(prefix).read_bytes()
    sequences = [list(struct.unpack_from(f"<{n}{letter}", data, p))
                 for n, p in zip(lengths, pointers, strict=True)]
    assert len(data) == sum(lengths) * size
    return code, sequences, document_index


def write(prefix: Path, documents: list[list[list[int]]], dtype: DType = DType.INT32) -> None:
    with IndexedDatasetWriter(prefix, dtype=dtype) as writer:
        for document in documents:
            for sequence in document:
                writer.add_sequence(sequence)
            writer.end_document()


def test_the_samples_are_the_reference_dumps():
    for ext in ("idx", "bin"):
        dump = (SAMPLES / f"tiny_text_document.{ext}.xxd").read_text()
        assert from_xxd(dump) == (SAMPLES / f"tiny_text_document.{ext}").read_bytes()


def test_writer_reproduces_mindformers_tiny_dataset_byte_for_byte(tmp_path):
    prefix = tmp_path / "tiny_text_document"
    with IndexedDatasetWriter(prefix) as writer:
        for document in TINY_DOCUMENTS:
            writer.add_document(document)
    assert idx_path(prefix).read_bytes() == idx_path(TINY).read_bytes()
    assert bin_path(prefix).read_bytes() == bin_path(TINY).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny_text_document.bin", "tiny_text_document.idx"]


def test_reader_reads_the_mindformers_dataset():
    with IndexedDataset(TINY) as dataset:
        assert (dataset.sequence_count, dataset.document_count, dataset.dtype) == (3, 3, DType.INT32)
        assert [dataset.tokens(i) for i in range(3)] == TINY_DOCUMENTS
        assert dataset.tokens(-1) == [11, 12, 13, 14, 15]
        assert list(dataset.document_sequences(1)) == [1]
        assert (dataset.token_count, dataset.bin_size, dataset.idx_size) == (15, 60, 102)
        view = dataset.view(2)
        assert list(view) == [11, 12, 13, 14, 15]
        view.release()
        dataset.verify()
        with pytest.raises(IndexError):
            dataset.tokens(3)


documents_strategy = st.lists(st.lists(st.lists(st.integers(0, 2**31 - 1), max_size=12), min_size=1,
                                       max_size=3), max_size=8)


@settings(max_examples=60, deadline=None)
@given(documents=documents_strategy)
def test_round_trip_through_both_readers(documents):
    with tempfile.TemporaryDirectory() as directory:
        prefix = Path(directory) / "d_text_document"
        write(prefix, documents)
        sequences = [sequence for document in documents for sequence in document]
        code, read, document_index = independent_read(prefix)
        assert (code, read) == (4, sequences)
        ends = [0]
        for document in documents:
            ends.append(ends[-1] + len(document))
        assert document_index == ends
        with IndexedDataset(prefix) as dataset:
            assert [dataset.tokens(i) for i in range(len(dataset))] == sequences
            assert dataset.document_count == len(documents)
            assert [list(dataset.document_sequences(d)) for d in range(len(documents))] == \
                [list(range(a, b)) for a, b in itertools.pairwise(ends)]
            dataset.verify()


RANGES = {DType.UINT8: (0, 255), DType.INT8: (-128, 127), DType.INT16: (-2**15, 2**15 - 1),
          DType.INT64: (-2**63, 2**63 - 1), DType.UINT16: (0, 2**16 - 1)}


@settings(max_examples=40, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(sorted(RANGES)))
def test_round_trip_in_every_integer_dtype(data, dtype):
    low, high = RANGES[dtype]
    sequences = data.draw(st.lists(st.lists(st.integers(low, high), max_size=9), min_size=1, max_size=5))
    with tempfile.TemporaryDirectory() as directory:
        prefix = Path(directory) / "d"
        write(prefix, [sequences], dtype)
        assert independent_read(prefix)[:2] == (int(dtype), sequences)
        with IndexedDataset(prefix) as dataset:
            assert dataset.dtype == dtype
            assert [dataset.tokens(i) for i in range(len(dataset))] == sequences


def test_a_multi_sequence_document_and_open_sequences_at_finalize(tmp_path):
    prefix = tmp_path / "d"
    with IndexedDatasetWriter(prefix) as writer:
        writer.add_document([1, 2, 3, 4, 5], [2, 3])
        writer.add_sequence([9])
    with IndexedDataset(prefix) as dataset:
        assert [dataset.tokens(i) for i in range(3)] == [[1, 2], [3, 4, 5], [9]]
        assert [list(dataset.document_sequences(d)) for d in range(2)] == [[0, 1], [2]]


def test_an_empty_dataset_is_valid(tmp_path):
    write(tmp_path / "d", [])
    with IndexedDataset(tmp_path / "d") as dataset:
        assert (dataset.sequence_count, dataset.document_count, dataset.token_count) == (0, 0, 0)


def test_failed_write_leaves_no_files_and_keeps_the_old_dataset(tmp_path):
    prefix = tmp_path / "d"
    write(prefix, [[[1, 2, 3]]])
    before = idx_path(prefix).read_bytes(), bin_path(prefix).read_bytes()
    with pytest.raises(RuntimeError), IndexedDatasetWriter(prefix) as writer:
        writer.add_sequence([7, 8, 9, 10])
        raise RuntimeError("interrupted")
    assert (idx_path(prefix).read_bytes(), bin_path(prefix).read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.bin", "d.idx"]


def test_nothing_is_visible_before_finalize(tmp_path):
    writer = IndexedDatasetWriter(tmp_path / "d")
    writer.add_sequence([1, 2])
    assert not bin_path(tmp_path / "d").exists() and not idx_path(tmp_path / "d").exists()
    writer.finalize()
    assert bin_path(tmp_path / "d").exists() and idx_path(tmp_path / "d").exists()


def test_writer_errors_name_the_file(tmp_path):
    with pytest.raises(IndexedDatasetError, match="no such directory"):
        IndexedDatasetWriter(tmp_path / "missing" / "d")
    writer = IndexedDatasetWriter(tmp_path / "d", dtype=DType.INT16)
    with pytest.raises(IndexedDatasetError, match=r"d\.bin: a value does not fit int16"):
        writer.add_sequence([1, 70000])
    with pytest.raises(IndexedDatasetError, match="do not split"):
        writer.add_document([1, 2, 3], [1, 1])
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def corrupt(tmp_path: Path, offset: int, data: bytes, *, truncate: int | None = None) -> Path:
    prefix = tmp_path / "bad"
    idx = bytearray(idx_path(TINY).read_bytes())
    idx[offset:offset + len(data)] = data
    idx_path(prefix).write_bytes(bytes(idx[:truncate]))
    bin_path(prefix).write_bytes(bin_path(TINY).read_bytes())
    return prefix


@pytest.mark.parametrize(("offset", "data", "truncate", "message"), [
    (0, b"NOTMEGATR", None, r"not a Megatron indexed dataset index"),
    (9, struct.pack("<Q", 2), None, r"index version 2"),
    (17, bytes([9]), None, r"unknown dtype code 9"),
    (0, b"", 101, r"101 bytes, but 3 sequences and 3 documents need 102"),
    (0, b"", 20, r"shorter than the 34-byte header"),
    (18, struct.pack("<Q", 4), None, r"4 sequences and 3 documents need"),
    (94, struct.pack("<q", 2), None, r"document index runs from 0 to 2"),
    (26, struct.pack("<Q", 0), None, r"document count 0"),
])
def test_corrupted_index_errors_name_the_file(tmp_path, offset, data, truncate, message):
    prefix = corrupt(tmp_path, offset, data, truncate=truncate)
    with pytest.raises(IndexedDatasetError, match=message) as caught:
        IndexedDataset(prefix)
    assert str(caught.value).startswith(f"{idx_path(prefix)}: ")


def test_bin_of_the_wrong_size(tmp_path):
    prefix = corrupt(tmp_path, 0, b"")
    bin_path(prefix).write_bytes(bin_path(TINY).read_bytes()[:-4])
    with pytest.raises(IndexedDatasetError, match=r"bad\.bin: 56 bytes, but .*bad\.idx says 60"):
        IndexedDataset(prefix)


def test_missing_files(tmp_path):
    with pytest.raises(IndexedDatasetError, match=r"nothing\.idx: no such file"):
        IndexedDataset(tmp_path / "nothing")
    idx_path(tmp_path / "half").write_bytes(idx_path(TINY).read_bytes())
    with pytest.raises(IndexedDatasetError, match=r"half\.bin: no such file"):
        IndexedDataset(tmp_path / "half")


def test_verify_finds_a_pointer_that_does_not_follow_the_lengths(tmp_path):
    prefix = corrupt(tmp_path, 34 + 12 + 8, struct.pack("<q", 24))
    with IndexedDataset(prefix) as dataset, \
            pytest.raises(IndexedDatasetError, match="sequence 1: pointer 24"):
        dataset.verify()
