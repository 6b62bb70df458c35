"""Megatron indexed datasets (`PREFIX.bin` + `PREFIX.idx`, the "MMIDIDX" format): a streaming writer and
a memory-mapped reader, byte-compatible with Megatron-Core's and MindFormers' `IndexedDatasetBuilder`.

The `.idx`, little-endian (docs/indexed-dataset.md has the table):

    magic b"MMIDIDX\\x00\\x00" | <Q version 1 | <B dtype code | <Q sequence count S | <Q document count D
    int32 sequence_lengths[S] | int64 sequence_pointers[S] | int64 document_indices[D]

D is the number of documents + 1: document_indices starts with 0 and then holds, for each document, the
index of the sequence after its last one. The `.bin` is every sequence's tokens, one after another.

Standard library only (`array`, `struct`, `mmap`): the console host converts data without numpy.
"""

from __future__ import annotations

import enum
import mmap
import os
import secrets
import struct
import sys
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
HEADER = struct.Struct("<9sQBQQ")  # magic, version, dtype code, sequence count, document count
LITTLE_ENDIAN = sys.byteorder == "little"
_POINTER_BLOCK = 1 << 16  # sequences whose pointers are computed and written at a time


class DType(enum.IntEnum):
    """Megatron's dtype codes, with the `array` typecode that holds each."""

    UINT8 = 1
    INT8 = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    FLOAT64 = 6
    FLOAT32 = 7
    UINT16 = 8

    @property
    def typecode(self) -> str:
        return _TYPECODES[self]

    @property
    def itemsize(self) -> int:
        return array(self.typecode).itemsize


_TYPECODES = {DType.UINT8: "B", DType.INT8: "b", DType.INT16: "h", DType.INT32: "i",
              DType.INT64: "q", DType.FLOAT64: "d", DType.FLOAT32: "f", DType.UINT16: "H"}
assert [array(code).itemsize for code in "bhiqfd"] == [1, 2, 4, 8, 4, 8], "unusual C type sizes"


class IndexedDatasetError(ValueError):
    """A `.bin`/`.idx` pair that cannot be read or written; the message names the file."""


def bin_path(prefix: str | os.PathLike[str]) -> Path:
    return Path(f"{os.fspath(prefix)}.bin")


def idx_path(prefix: str | os.PathLike[str]) -> Path:
    return Path(f"{os.fspath(prefix)}.idx")


def create_temporary(final: Path) -> tuple[Path, int]:
    """A new, hidden `.partial` file beside `final` (same file system, so a rename puts it in place),
    created exclusively with the mode the umask gives; returns its path and an open descriptor."""
    path = final.with_name(f".{final.name}.{os.getpid()}.{secrets.token_hex(6)}.partial")
    return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)


def _to_disk_order(values: array[int] | array[float]) -> array[int] | array[float]:
    if LITTLE_ENDIAN:
        return values
    swapped = array(values.typecode, values)
    swapped.byteswap()
    return swapped


class IndexedDatasetWriter:
    """Writes sequences to `PREFIX.bin` as they come; `finalize` writes `PREFIX.idx`.

    Tokens go straight to disk; only the index (4 bytes a sequence, 8 a document) stays in memory, as
    in Megatron's builder. Both files are written under temporary names in the target directory and
    renamed at the end, `.bin` first, so a reader never sees a half-written dataset. As a context
    manager it finalizes on success and removes its temporary files on an exception.
    """

    def __init__(self, prefix: str | os.PathLike[str], *, dtype: DType = DType.INT32) -> None:
        self.prefix = Path(prefix)
        self.dtype = dtype
        self._lengths: array[int] = array("i")
        self._documents: array[int] = array("q", [0])
        self._tokens = 0
        directory = self.prefix.parent
        if not directory.is_dir():
            raise IndexedDatasetError(f"{directory}: no such directory for the dataset {self.prefix.name}")
        self._bin_tmp, handle = create_temporary(bin_path(self.prefix))
        self._bin: BinaryIO | None = os.fdopen(handle, "wb")

    @property
    def sequence_count(self) -> int:
        return len(self._lengths)

    @property
    def document_count(self) -> int:
        return len(self._documents) - 1

    @property
    def token_count(self) -> int:
        return self._tokens

    def add_sequence(self, tokens: Iterable[int] | Iterable[float]) -> None:
        """One sequence, part of the document that `end_document` closes."""
        if self._bin is None:
            raise IndexedDatasetError(f"{bin_path(self.prefix)}: the writer is already closed")
        try:
            values = tokens if isinstance(tokens, array) and tokens.typecode == self.dtype.typecode \
                else array(self.dtype.typecode, tokens)
        except (OverflowError, TypeError) as exc:
            raise IndexedDatasetError(f"{bin_path(self.prefix)}: a value does not fit "
                                      f"{self.dtype.name.lower()}: {exc}") from None
        if len(values) > 0x7FFFFFFF:
            raise IndexedDatasetError(f"{bin_path(self.prefix)}: a sequence of {len(values)} tokens is "
                                      "longer than the format's int32 lengths allow")
        _to_disk_order(values).tofile(self._bin)
        self._lengths.append(len(values))
        self._tokens += len(values)

    def end_document(self) -> None:
        """The sequences added since the last document form one document."""
        self._documents.append(len(self._lengths))

    def add_document(self, tokens: Sequence[int], lengths: Sequence[int] | None = None) -> None:
        """A document of one sequence, or of several whose `lengths` add up to `len(tokens)`."""
        sizes = [len(tokens)] if lengths is None else list(lengths)
        if sum(sizes) != len(tokens) or any(size < 0 for size in sizes):
            raise IndexedDatasetError(f"{bin_path(self.prefix)}: sequence lengths {sizes} do not split "
                                      f"a document of {len(tokens)} tokens")
        start = 0
        for size in sizes:
            self.add_sequence(tokens[start:start + size])
            start += size
        self.end_document()

    def finalize(self) -> None:
        """Write the index and put both files in place. Open sequences become a last document."""
        if self._bin is None:
            raise IndexedDatasetError(f"{bin_path(self.prefix)}: the writer is already closed")
        if self._documents[-1] != len(self._lengths):
            self.end_document()
        idx_tmp, handle = create_temporary(idx_path(self.prefix))
        try:
            self._bin.flush()
            os.fsync(self._bin.fileno())
            self._bin.close()
            self._bin = None
            with os.fdopen(handle, "wb") as index:
                self._write_index(index)
                index.flush()
                os.fsync(index.fileno())
            os.replace(self._bin_tmp, bin_path(self.prefix))
            os.replace(idx_tmp, idx_path(self.prefix))
        except BaseException:
            idx_tmp.unlink(missing_ok=True)
            self.abort()
            raise

    def _write_index(self, index: BinaryIO) -> None:
        count = len(self._lengths)
        index.write(HEADER.pack(MAGIC, VERSION, int(self.dtype), count, len(self._documents)))
        _to_disk_order(self._lengths).tofile(index)
        offset = 0
        for start in range(0, count, _POINTER_BLOCK):
            pointers: array[int] = array("q")
            for length in self._lengths[start:start + _POINTER_BLOCK]:
                pointers.append(offset)
                offset += length * self.dtype.itemsize
            _to_disk_order(pointers).tofile(index)
        _to_disk_order(self._documents).tofile(index)

    def abort(self) -> None:
        """Forget everything written: the temporary files go, any earlier dataset stays."""
        if self._bin is not None:
            self._bin.close()
            self._bin = None
        self._bin_tmp.unlink(missing_ok=True)

    def __enter__(self) -> IndexedDatasetWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is None:
            self.finalize()
        else:
            self.abort()


class IndexedDataset:
    """A memory-mapped `PREFIX.bin`/`PREFIX.idx` pair.

    Opening checks the header (magic, version, dtype), that the `.idx` is as long as its counts say
    and that the `.bin` is as long as the index says; `verify()` checks every pointer and document.
    `tokens(i)` is sequence i as a list; `view(i)` the same without a copy (valid until `close`).
    """

    def __init__(self, prefix: str | os.PathLike[str]) -> None:
        self.prefix = Path(prefix)
        self.idx_path = idx_path(prefix)
        self.bin_path = bin_path(prefix)
        self._idx: mmap.mmap | bytes = b""
        self._bin: mmap.mmap | bytes = b""
        try:
            self._idx = _map(self.idx_path)
            self._bin = _map(self.bin_path)
            self._read_header()
        except BaseException:
            self.close()
            raise

    def _read_header(self) -> None:
        size = len(self._idx)
        if size < HEADER.size:
            raise self._error(f"{size} bytes, shorter than the {HEADER.size}-byte header")
        magic, version, code, sequences, documents = HEADER.unpack_from(self._idx, 0)
        if magic != MAGIC:
            raise self._error(f"not a Megatron indexed dataset index: starts with {magic!r}, not {MAGIC!r}")
        if version != VERSION:
            raise self._error(f"index version {version}; only version {VERSION} exists")
        if code not in DType.__members__.values():
            raise self._error(f"unknown dtype code {code} (valid: 1 to 8)")
        self.dtype = DType(code)
        if documents < 1:
            raise self._error("document count 0: the document index must start with 0")
        expected = HEADER.size + 12 * sequences + 8 * documents
        if size not in (expected, expected + sequences):  # + one mode byte a sequence: multimodal
            raise self._error(f"{size} bytes, but {sequences} sequences and {documents - 1} documents "
                              f"need {expected}: truncated or not written by a Megatron builder")
        self.sequence_count: int = sequences
        self._lengths = self._table(HEADER.size, sequences, "i")
        self._pointers = self._table(HEADER.size + 4 * sequences, sequences, "q")
        self._documents = self._table(HEADER.size + 12 * sequences, documents, "q")
        self.document_count: int = documents - 1
        if self._documents[0] != 0 or self._documents[-1] != sequences:
            raise self._error(f"document index runs from {self._documents[0]} to {self._documents[-1]}, "
                              f"not from 0 to the sequence count {sequences}")
        self._check_bin_size()

    def _table(self, offset: int, count: int, typecode: str) -> Sequence[int]:
        raw = memoryview(self._idx)[offset:offset + count * array(typecode).itemsize]
        if LITTLE_ENDIAN:
            return raw.cast(typecode)  # type: ignore[call-overload, no-any-return]
        values = array(typecode, raw)
        values.byteswap()
        return values

    def _check_bin_size(self) -> None:
        size = len(self._bin)
        expected = 0
        if self.sequence_count:
            expected = self._pointers[-1] + self._lengths[-1] * self.dtype.itemsize
        if size != expected:
            raise IndexedDatasetError(f"{self.bin_path}: {size} bytes, but {self.idx_path} says "
                                      f"{expected}: the two files do not belong together or one is truncated")

    def _error(self, message: str) -> IndexedDatasetError:
        return IndexedDatasetError(f"{self.idx_path}: {message}")

    def verify(self) -> None:
        """Every pointer follows from the lengths and every document index rises: O(sequences)."""
        offset = 0
        for i in range(self.sequence_count):
            if self._pointers[i] != offset or self._lengths[i] < 0:
                raise self._error(f"sequence {i}: pointer {self._pointers[i]} and length "
                                  f"{self._lengths[i]}, expected pointer {offset}")
            offset += self._lengths[i] * self.dtype.itemsize
        previous = 0
        for d, end in enumerate(self._documents):
            if end < previous:
                raise self._error(f"document index {d} is {end}, below the one before ({previous})")
            previous = end

    def __len__(self) -> int:
        return self.sequence_count

    def length(self, i: int) -> int:
        """Tokens in sequence i."""
        return self._lengths[self._check(i)]

    def view(self, i: int) -> memoryview:
        """Sequence i in place, typed by the dataset's dtype (little-endian hosts only)."""
        i = self._check(i)
        start = self._pointers[i]
        raw = memoryview(self._bin)[start:start + self._lengths[i] * self.dtype.itemsize]
        if not LITTLE_ENDIAN:
            raise IndexedDatasetError(f"{self.bin_path}: in-place views need a little-endian host; "
                                      "use tokens()")
        return raw.cast(self.dtype.typecode)  # type: ignore[call-overload, no-any-return]

    def tokens(self, i: int) -> list[int]:
        """Sequence i as a list of ints (floats for a float dataset)."""
        i = self._check(i)
        start = self._pointers[i]
        values = array(self.dtype.typecode, self._bin[start:start + self._lengths[i] * self.dtype.itemsize])
        if not LITTLE_ENDIAN:
            values.byteswap()
        return values.tolist()

    def document_sequences(self, d: int) -> range:
        """The sequence indices of document d."""
        if not 0 <= d < self.document_count:
            raise IndexError(f"document {d} out of range: {self.document_count} documents")
        return range(self._documents[d], self._documents[d + 1])

    @property
    def token_count(self) -> int:
        return len(self._bin) // self.dtype.itemsize

    @property
    def bin_size(self) -> int:
        return len(self._bin)

    @property
    def idx_size(self) -> int:
        return len(self._idx)

    def _check(self, i: int) -> int:
        if not -self.sequence_count <= i < self.sequence_count:
            raise IndexError(f"sequence {i} out of range: {self.sequence_count} sequences")
        return i % self.sequence_count

    def close(self) -> None:
        """Unmap both files. Views from `view()` must be released first."""
        for name in ("_lengths", "_pointers", "_documents"):
            table = self.__dict__.pop(name, None)
            if isinstance(table, memoryview):
                table.release()
        for mapping in (self._idx, self._bin):
            if isinstance(mapping, mmap.mmap):
                mapping.close()

    def __enter__(self) -> IndexedDataset:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def _map(path: Path) -> mmap.mmap | bytes:
    """The file, memory-mapped read-only (an empty file cannot be mapped: it is b"")."""
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                return b""
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise IndexedDatasetError(f"{path}: no such file") from None
    except OSError as exc:
        raise IndexedDatasetError(f"{path}: cannot read: {exc.strerror}") from None
