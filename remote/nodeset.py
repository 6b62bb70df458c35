"""Node-set notation as ClusterShell and pdsh write it: `node[0-3,7],gpu[01-02]`."""

from __future__ import annotations

import re
from collections.abc import Iterable

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
_NUMBERED = re.compile(r"^(.*?)(\d+)$")


class NodeSetError(ValueError):
    pass


def expand(pattern: str) -> list[str]:
    """Expand a node-set pattern into names, in the order written, without repeats."""
    names: list[str] = []
    for term in _split_top_level(pattern):
        for name in _expand_term(term):
            if name not in names:
                names.append(name)
    return names


def fold(names: Iterable[str]) -> str:
    """The shortest-ish pattern that `expand` turns back into `names` (as a set)."""
    groups: dict[tuple[str, int], list[int]] = {}
    plain: list[str] = []
    for name in names:
        match = _NUMBERED.match(name)
        if match is None:
            plain.append(name)
            continue
        prefix, digits = match.groups()
        width = len(digits) if digits.startswith("0") and len(digits) > 1 else 0
        groups.setdefault((prefix, width), []).append(int(digits))
    parts = [_fold_group(prefix, width, numbers) for (prefix, width), numbers in groups.items()]
    return ",".join(parts + plain)


def _split_top_level(pattern: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in pattern:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise NodeSetError(f"unbalanced ']' in node set {pattern!r}")
        if char == "," and depth == 0:
            terms.append(current.strip())
            current = ""
        else:
            current += char
    if depth != 0:
        raise NodeSetError(f"unbalanced '[' in node set {pattern!r}")
    terms.append(current.strip())
    if any(not term for term in terms):
        raise NodeSetError(f"empty name in node set {pattern!r}")
    return terms


def _expand_term(term: str) -> list[str]:
    open_at = term.find("[")
    if open_at < 0:
        return [term]
    close_at = term.index("]", open_at)
    prefix, body, rest = term[:open_at], term[open_at + 1 : close_at], term[close_at + 1 :]
    tails = _expand_term(rest) if rest else [""]
    return [f"{prefix}{number}{tail}" for number in _expand_ranges(body, term) for tail in tails]


def _expand_ranges(body: str, term: str) -> list[str]:
    numbers: list[str] = []
    for item in body.split(","):
        match = _RANGE.match(item.strip())
        if match is None:
            raise NodeSetError(f"bad range {item!r} in {term!r}: write N or N-M, e.g. node[0-3,7]")
        low, high = match.group(1), match.group(2) or match.group(1)
        if int(high) < int(low):
            raise NodeSetError(f"range {item!r} in {term!r} runs backwards")
        width = len(low) if low.startswith("0") else 0
        numbers += [str(n).zfill(width) for n in range(int(low), int(high) + 1)]
    return numbers


def _fold_group(prefix: str, width: int, numbers: list[int]) -> str:
    ordered = sorted(set(numbers))
    if len(ordered) == 1:
        return f"{prefix}{str(ordered[0]).zfill(width)}"
    spans: list[str] = []
    start = previous = ordered[0]
    for number in [*ordered[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        low, high = str(start).zfill(width), str(previous).zfill(width)
        spans.append(low if start == previous else f"{low}-{high}")
        if number is not None:
            start = previous = number
    return f"{prefix}[{','.join(spans)}]"
