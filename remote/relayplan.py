"""Planning a distribution, pure: waves of files, who relays to whom, and progress with rate and ETA.

A distribution is a chain: the source (the console, or one node) sends to the first node, which
relays to the second, and so on. The file set is cut into waves; a node relays a wave as soon as it
has verified it, so every link of the chain is busy at once and each byte crosses the source's
uplink once. A node that cannot be reached from its predecessor hangs off the source instead, and so does
the successor of a node that fails on the way.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

from remote.manifest import ManifestEntry

# A wave is small enough to keep the chain's links busy at once (a link waits for one wave before
# relaying it) and large enough that an rsync start and a checksum round trip are cheap beside it.
WAVE_BYTES = 64 * 1024 * 1024
WAVE_FILES = 200
# Quoted paths of one wave stay well under the 128 KiB a single shell argument may hold.
WAVE_PATH_CHARS = 48_000
RATE_WINDOW = 5.0
SOURCE = "console"
"""The console as a source, as the user sees it named (a node may have this name too)."""
ROOT = "@source"
"""The source as a key beside the nodes' (the chain's root, a copy's owner): no node name can hold an
'@' (remote.inventory's name rule), so a node named like the source, or the source node itself, never
takes its place."""


@dataclass(frozen=True)
class Wave:
    index: int
    entries: tuple[ManifestEntry, ...]

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)


def plan_waves(entries: Sequence[ManifestEntry], *, wave_bytes: int = WAVE_BYTES,
               wave_files: int = WAVE_FILES, path_chars: int = WAVE_PATH_CHARS) -> tuple[Wave, ...]:
    """Consecutive groups of files in manifest order; a file larger than a wave is a wave of its own."""
    waves: list[Wave] = []
    current: list[ManifestEntry] = []
    size = chars = 0
    for entry in entries:
        cost = len(entry.path) * 4 + 16  # worst case of shell quoting, and the source prefix
        if current and (size + entry.size > wave_bytes or len(current) >= wave_files
                        or chars + cost > path_chars):
            waves.append(Wave(len(waves), tuple(current)))
            current, size, chars = [], 0, 0
        current.append(entry)
        size, chars = size + entry.size, chars + cost
    if current:
        waves.append(Wave(len(waves), tuple(current)))
    return tuple(waves)


@dataclass(frozen=True)
class Hop:
    """One node of the distribution and where it receives from (the root: the source itself)."""

    node: str
    upstream: str


def plan_chain(order: Sequence[str], *, root: str = ROOT,
               can_relay: Callable[[str, str], bool] = lambda _a, _b: True) -> tuple[Hop, ...]:
    """Nodes in order, each fed by the last node before it that can reach it, else by the root.

    `can_relay(sender, receiver)` says whether sender can push to receiver over the cluster network.
    """
    hops: list[Hop] = []
    previous = root
    for node in order:
        if previous != root and can_relay(previous, node):
            hops.append(Hop(node, previous))
        else:
            hops.append(Hop(node, root))
        previous = node
    return tuple(hops)


def plan_copies(places: Sequence[tuple[str, Hashable]], *,
                origin: tuple[str, Hashable] | None = None) -> tuple[tuple[str, str | None], ...]:
    """Which nodes are sent a copy: each (node, place) in order, with None when it gets its own, else the
    owner of the copy it shares (one place, one copy: the first node of a place is sent to).

    `origin`, with a node as the source: (that node, the place of its SRC). A node whose place it is
    shares the source's directory itself (owner ROOT, whole from the start); the source node there is
    left out, its files already where they should be.
    """
    first: dict[Hashable, str] = {} if origin is None else {origin[1]: ROOT}
    copies: list[tuple[str, str | None]] = []
    for node, place in places:
        owner = first.setdefault(place, node)
        if owner == ROOT and origin is not None and node == origin[0]:
            continue
        copies.append((node, None if owner == node else owner))
    return tuple(copies)


@dataclass(frozen=True)
class NodeProgress:
    """One node's transfer at one moment: an immutable snapshot for a progress display."""

    node: str
    state: str
    """checking | waiting | sending | verifying | done | failed."""
    upstream: str
    bytes_done: int
    bytes_total: int
    files_done: int
    files_total: int
    files_skipped: int
    rate: float
    """Bytes a second over the last few seconds."""
    eta: float | None
    """Seconds to go at that rate; None while unknown."""
    message: str = ""


@dataclass
class RateMeter:
    """Bytes over time → a rate over a sliding window, and an ETA."""

    window: float = RATE_WINDOW
    clock: Callable[[], float] = time.monotonic
    _samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, done: int) -> None:
        now = self.clock()
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] > self.window:
            self._samples.popleft()

    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def eta(self, remaining: int) -> float | None:
        rate = self.rate()
        if remaining <= 0:
            return 0.0
        return remaining / rate if rate > 0 else None
