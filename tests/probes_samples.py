"""The reference samples cut into tests/samples/ (see its README.md), plus hypothesis strategies that
mangle them, shared by the probe parser tests."""

from __future__ import annotations

from pathlib import Path

from hypothesis import strategies as st

SAMPLES = Path(__file__).parent / "samples"
RECORDINGS = Path(__file__).parent / "standins" / "recordings"


def sample(name: str) -> str:
    """A sample's text exactly as stored (no newline translation)."""
    return (SAMPLES / name).read_bytes().decode()


def samples(folder: str) -> dict[str, str]:
    return {path.name: sample(f"{folder}/{path.name}") for path in sorted((SAMPLES / folder).glob("*.txt"))}


def recording(state: str, name: str) -> str:
    return (RECORDINGS / state / name).read_bytes().decode()


@st.composite
def mangled(draw: st.DrawFn, texts: list[str]) -> str:
    """One of `texts` after a few random edits: deletions, insertions, truncation, line shuffles."""
    text = draw(st.sampled_from(texts))
    for _ in range(draw(st.integers(1, 4))):
        text = draw(st.sampled_from((_delete, _insert, _truncate, _shuffle, _drop_line)))(draw, text)
    return text


def _position(draw: st.DrawFn, text: str) -> int:
    return draw(st.integers(0, len(text)))


def _delete(draw: st.DrawFn, text: str) -> str:
    start = _position(draw, text)
    return text[:start] + text[start + draw(st.integers(1, 40)):]


def _insert(draw: st.DrawFn, text: str) -> str:
    at = _position(draw, text)
    # mostly the table's own characters, which make near-misses; sometimes anything at all
    table_like = st.text(st.sampled_from("|+-= /:.0123456789abcXOK\t\n\r\x00\u2028é"), max_size=30)
    noise = draw(table_like | st.text(max_size=10))
    return text[:at] + noise + text[at:]


def _truncate(draw: st.DrawFn, text: str) -> str:
    return text[:_position(draw, text)]


def _shuffle(draw: st.DrawFn, text: str) -> str:
    """Swap two lines (a subtle reorder) or, less often, shuffle them all."""
    lines = text.splitlines(keepends=True)
    if len(lines) < 2:
        return text
    if draw(st.integers(0, 3)) == 0:
        return "".join(draw(st.permutations(lines)))
    i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
    lines[i], lines[j] = lines[j], lines[i]
    return "".join(lines)


def _drop_line(draw: st.DrawFn, text: str) -> str:
    lines = text.splitlines(keepends=True)
    if not lines:
        return text
    del lines[draw(st.integers(0, len(lines) - 1))]
    return "".join(lines)
