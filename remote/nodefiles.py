"""File commands run on a node for a distribution: what is there, its checksums, and moving
verified files from the staging tree into place. Each is one `Transport.run`; file lists go on
stdin, NUL-separated, so no name is ever parsed by a shell and no list outgrows a command line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from remote.manifest import (
    STAGING_DIR,
    Manifest,
    ManifestError,
    manifest_from_listing,
    nul_list,
    parse_find_sizes,
    parse_sha256sum,
    strip_dot,
)
from remote.rsync import home_relative as _path_arg
from remote.transport import Transport

TOOLS = ("rsync", "sha256sum", "stdbuf", "ssh")
# sha256sum on a node's disk; a command's limit grows with what it has to read.
HASH_RATE = 50 * 1024 * 1024
RECEIVERS = ".receivers"
# Receivers an earlier, interrupted transfer left behind (see rsync.RECEIVER): each is stopped,
# its whole process group, if that pid is still an rsync, and waited for (it saves its partial file).
STOP_RECEIVERS = (
    'pids=$1/' + STAGING_DIR + '/' + RECEIVERS + '; [ -f "$pids" ] && while read -r p; do '
    'case $p in *[!0-9]*|"") continue;; esac; '
    '[ "$(cat /proc/"$p"/comm 2>/dev/null)" = rsync ] || continue; kill -15 "-$p" 2>/dev/null; '
    'for _ in 1 2 3 4 5 6 7 8 9 10; do [ -d /proc/"$p" ] || break; sleep 0.5; done; '
    'done < "$pids"; rm -f -- "$pids"; '
)
# What a node has: which tools, then every file under the destination with its size.
INSPECT = (
    'for t in ' + " ".join(TOOLS) + '; do command -v "$t" >/dev/null 2>&1 && printf "%s " "$t"; done; '
    'printf "\\n"; mkdir -p -- "$1/' + STAGING_DIR + '" || exit 3; '
    + STOP_RECEIVERS + 'cd -- "$1" || exit 3; '
    'find . -path "./' + STAGING_DIR + '" -prune -o -type f -printf "%s %P\\0"'
)
HASH = 'cd -- "$1" && xargs -0 -r sha256sum --'
# Items `+./path` are moved from the staging tree ($1) into place ($2); `-./path` are deleted.
SETTLE = (
    'cd -- "$1" || exit 3; xargs -0 -r sh -c \''
    'final=$1; shift; for item; do f=${item#?}; case $item in '
    '+*) mkdir -p -- "$final/${f%/*}" && mv -f -- "$f" "$final/$f" || exit 1;; '
    '*) rm -f -- "$f";; esac; done\' sh "$2"'
)
SOURCE_SIZES = 'cd -- "$1" && find . -path "./' + STAGING_DIR + '" -prune -o -type f -printf "%s %P\\0"'


class NodeFileError(Exception):
    """A file command failed on a node; the message names the node and says what happened."""


@dataclass(frozen=True)
class NodeInventory:
    tools: frozenset[str]
    sizes: dict[str, int]
    """Files already under the destination, by relative path."""


def staging(destination: str) -> str:
    return f"{destination.rstrip('/')}/{STAGING_DIR}"


def receivers_file(destination: str) -> str:
    return f"{staging(destination)}/{RECEIVERS}"


def hash_timeout(transport: Transport, size: int) -> float:
    return transport.node.command_timeout + size / HASH_RATE


def _run_script(transport: Transport, script: str, args: Sequence[str], *, stdin: bytes | None = None,
                timeout: float | None = None, what: str) -> str:
    result = transport.run(["sh", "-c", script, "sh", *args], stdin=stdin, timeout=timeout)
    if not result.ok:
        detail = result.message or (result.stderr.strip().splitlines() or [f"exit {result.exit_code}"])[-1]
        raise NodeFileError(f"{transport.node.name}: {what} failed: {detail}")
    return result.stdout


def inspect(transport: Transport, destination: str) -> NodeInventory:
    """The node's tools and what is already at the destination (the staging tree is created)."""
    out = _run_script(transport, INSPECT, [_path_arg(destination)],
                      what=f"preparing {destination}")
    tools, _, listing = out.partition("\n")
    return NodeInventory(frozenset(tools.split()), parse_find_sizes(listing))


def hashes(transport: Transport, directory: str, paths: Sequence[str], size: int) -> dict[str, str]:
    """SHA-256 of the given relative paths under directory, by path; missing files are left out."""
    if not paths:
        return {}
    result = transport.run(["sh", "-c", HASH, "sh", _path_arg(directory)], stdin=nul_list(paths),
                           timeout=hash_timeout(transport, size))
    if result.error is not None:
        raise NodeFileError(f"{transport.node.name}: checksums under {directory}: {result.message}")
    # a missing file makes sha256sum exit 1 but the others are still printed: those count
    return {strip_dot(path): digest for path, digest in parse_sha256sum(result.stdout).items()}


def settle(transport: Transport, destination: str, good: Sequence[str], bad: Sequence[str]) -> None:
    """Verified files into place under destination (a rename: same file system); bad ones deleted."""
    if not good and not bad:
        return
    items = b"".join(b"+" + item for item in _items(good)) + b"".join(b"-" + item for item in _items(bad))
    _run_script(transport, SETTLE, [_path_arg(staging(destination)), _path_arg(destination)],
                stdin=items, what="moving verified files into place")


def _items(paths: Sequence[str]) -> list[bytes]:
    return [item + b"\0" for item in nul_list(paths).split(b"\0") if item]


def clear_staging(transport: Transport, destination: str) -> None:
    """Remove the (now empty) staging tree; what is left there is only rsync's resume state."""
    transport.run(["rm", "-rf", "--", _path_arg(staging(destination))])


def node_manifest(transport: Transport, source: str) -> Manifest:
    """The manifest of a directory on a node, hashed there."""
    out = _run_script(transport, SOURCE_SIZES, [_path_arg(source)], what=f"listing {source}")
    sizes = parse_find_sizes(out)
    if not sizes:
        raise NodeFileError(f"{transport.node.name}: {source} holds no files")
    digests = hashes(transport, source, sorted(sizes), sum(sizes.values()))
    try:
        return manifest_from_listing(sizes, digests)
    except ManifestError as exc:
        raise NodeFileError(f"{transport.node.name}: {source}: {exc}") from exc


def relay_probe(target_ip: str, ssh: Sequence[str]) -> list[str]:
    """Run on a node: can it log in to its neighbour with its own key and known_hosts?"""
    return [*ssh, target_ip, "true"]

