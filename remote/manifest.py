"""What a file set is: relative path, size and SHA-256 of every file, and the text tools that tell it.

Pure apart from `scan_directory` (which reads local files). The parsers read what GNU `find` and
`sha256sum` print on a node, so names with spaces, quotes, leading dashes or newlines survive.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Where files wait, under the destination, until their checksum is verified; never in a manifest.
STAGING_DIR = ".ascend-incoming"
# rsync keeps an interrupted file here (per directory, inside the staging tree) to resume from it.
PARTIAL_DIR = ".ascend-partial"
RESERVED = (STAGING_DIR, PARTIAL_DIR)
HASH_CHUNK = 1024 * 1024


class ManifestError(ValueError):
    """A file set that cannot be distributed as it is (unsafe name, missing source)."""


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    """Relative POSIX path, never absolute, never with `..`."""
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    entries: tuple[ManifestEntry, ...]

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def by_path(self) -> dict[str, ManifestEntry]:
        return {e.path: e for e in self.entries}

    def to_json(self) -> list[dict[str, object]]:
        return [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in self.entries]


def checked_path(path: str) -> str:
    """A manifest path as given, or ManifestError if it could escape the destination."""
    parts = PurePosixPath(path).parts
    if not path or path.startswith("/") or ".." in parts or "\0" in path:
        raise ManifestError(f"unsafe path in a file set: {path!r}")
    if parts[0] in RESERVED:
        raise ManifestError(f"{path!r}: {parts[0]} is reserved for files in transit")
    return path


def make_manifest(entries: Iterable[ManifestEntry]) -> Manifest:
    """Entries sorted by path, each path checked, none twice."""
    ordered = sorted(entries, key=lambda e: e.path)
    for before, after in itertools.pairwise(ordered):
        if before.path == after.path:
            raise ManifestError(f"{before.path!r} is listed twice")
    return Manifest(tuple(ManifestEntry(checked_path(e.path), e.size, e.sha256) for e in ordered))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def local_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(relative path, file) for every regular file under root, symlinks followed to their files;
    a single file is a set of one."""
    if root.is_file():
        yield root.name, root
        return
    if not root.is_dir():
        raise ManifestError(f"{root}: no such file or directory")
    for directory, subdirs, names in os.walk(root, followlinks=True):
        here = Path(directory)
        if here == root:
            subdirs[:] = [d for d in subdirs if d not in RESERVED]
        subdirs.sort()
        for name in sorted(names):
            if (here / name).is_file():
                yield (here / name).relative_to(root).as_posix(), here / name


def scan_directory(root: Path) -> Manifest:
    """The manifest of a local directory (or one file), hashing every file."""
    return make_manifest(ManifestEntry(rel, path.stat().st_size, sha256_file(path))
                         for rel, path in local_files(root))


def parse_find_sizes(output: str) -> dict[str, int]:
    """`find . -type f -printf '%s %P\\0'` → {relative path: size}."""
    sizes: dict[str, int] = {}
    for record in output.split("\0"):
        size, sep, path = record.partition(" ")
        if sep and size.isdigit() and path:
            sizes[path] = int(size)
    return sizes


def parse_sha256sum(output: str) -> dict[str, str]:
    """GNU `sha256sum` lines → {path: hex digest}. A name holding a backslash, newline or CR is
    printed escaped on a line that starts with a backslash."""
    digests: dict[str, str] = {}
    for line in output.split("\n"):
        escaped = line.startswith("\\")
        body = line[1:] if escaped else line
        digest, name = body[:64], body[66:]
        if len(body) < 67 or body[64] != " " or not _is_hex(digest):
            continue
        digests[_unescape(name) if escaped else name] = digest
    return digests


def _is_hex(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


_ESCAPES = {"\\": "\\", "n": "\n", "r": "\r"}


def _unescape(name: str) -> str:
    out, chars = [], iter(name)
    for char in chars:
        out.append(_ESCAPES.get(next(chars, ""), "") if char == "\\" else char)
    return "".join(out)


def manifest_from_listing(sizes: Mapping[str, int], digests: Mapping[str, str]) -> Manifest:
    """A node's manifest from its `find` sizes and `sha256sum` digests; a file not hashed is an error."""
    missing = sorted(set(sizes) - set(digests))
    if missing:
        raise ManifestError(f"could not hash {len(missing)} file(s), first {missing[0]!r}")
    return make_manifest(ManifestEntry(path, size, digests[path]) for path, size in sizes.items())


def nul_list(paths: Iterable[str]) -> bytes:
    """Paths as xargs -0 reads them, each `./`-prefixed so none can look like an option."""
    return b"".join(f"./{p}".encode() + b"\0" for p in paths)


def strip_dot(path: str) -> str:
    return path[2:] if path.startswith("./") else path
