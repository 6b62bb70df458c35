"""Pipeline layer placement as MindFormers' pynative trainer writes it, turned into research-era offsets.

Pynative configs say which layers each stage holds with `parallelism.pipeline_parallel_layers_per_stage`;
the rest of this package (validate.py, estimate.py) reasons in research-era `offset`s, where stage slot i
holds (num_layers + mtp_depth) // (pp x interleave) + offset_i layers and the MTP layers come last.

What MindFormers' own code says (mindformers/pynative/distributed/pipeline_parallel.py, `PpLayerSetting`):
the field is `"auto"` (or left out: null) for an even split, which requires num_hidden_layers to be
divisible by pp x interleave, or a list with one string per pipeline rank, each holding one inclusive
`start-end` range (or a single layer id) per interleave chunk, separated by commas: `["0-1,4-5", "2-3,6-7"]`;
chunk c of rank r is virtual stage c x pp + r. A plain list of layer counts per stage (`[2, 1]`) is also
accepted here; that form we could not find in MindFormers' code, it is a convenience.
"""

from __future__ import annotations

from dataclasses import dataclass

# One count per pipeline stage, per interleave chunk: counts[chunk][stage].
Counts = tuple[tuple[int, ...], ...]
Offset = int | tuple[int, ...] | tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class LayerPlan:
    """Main-model layers per stage slot, as the file gave them."""

    counts: Counts


def parse_layers_per_stage(value: object) -> LayerPlan | None:
    """None for an even split (`auto`, null); else the per-stage counts. ValueError says what is valid."""
    if value is None or value == "auto":
        return None
    if isinstance(value, list) and value and all(type(v) is int for v in value):
        if any(v < 0 for v in value):
            raise ValueError(f"layer counts cannot be negative, got {value}")
        return LayerPlan(counts=(tuple(v for v in value if isinstance(v, int)),))
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return LayerPlan(counts=_counts_from_ranges([v for v in value if isinstance(v, str)]))
    raise ValueError(f"expected 'auto', a list with one 'start-end' range string per pipeline stage "
                     f"(interleave chunks separated by commas, e.g. ['0-1', '2']) or a list of layer counts "
                     f"per stage, got {value!r}")


def _counts_from_ranges(per_rank: list[str]) -> Counts:
    """Counts per chunk per rank; the ranges must follow one another from layer 0 in virtual-stage order."""
    ranks = [[_layer_range(part) for part in text.split(",")] for text in per_rank]
    chunks = len(ranks[0])
    if any(len(chunk_ranges) != chunks for chunk_ranges in ranks):
        raise ValueError(f"every stage needs the same number of comma-separated chunks, got {per_rank}")
    expected = 0
    for chunk in range(chunks):
        for rank, chunk_ranges in enumerate(ranks):
            start, end = chunk_ranges[chunk]
            if start != expected:
                raise ValueError(f"stage {rank} chunk {chunk} starts at layer {start}, but layer {expected} "
                                 f"is next: ranges must follow one another from layer 0 (chunk c of stage "
                                 f"r is virtual stage c x pp + r)")
            expected = end + 1
    return tuple(tuple(r[chunk][1] - r[chunk][0] + 1 for r in ranks) for chunk in range(chunks))


def _layer_range(text: str) -> tuple[int, int]:
    ends = text.strip().split("-")
    try:
        start, end = int(ends[0]), int(ends[-1])
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a layer range: expected 'start-end' or one layer "
                         f"id") from None
    if len(ends) > 2 or start > end or start < 0:
        raise ValueError(f"{text.strip()!r} is not a layer range: expected 'start-end' with start <= end")
    return start, end


def even_counts(num_layers: int, pp: int, chunks: int) -> Counts:
    """MindFormers' `auto`: num_layers // (pp x chunks) on every slot. If that does not divide (MindFormers
    refuses; validate.py says so), the remainder goes to the last slots so an estimate can still be shown."""
    slots = max(pp, 1) * max(chunks, 1)
    flat = [num_layers // slots] * slots
    for i in range(num_layers % slots):
        flat[slots - 1 - i] += 1
    return tuple(tuple(flat[c * pp:(c + 1) * pp]) for c in range(max(chunks, 1)))


def offsets_from_counts(counts: Counts, num_layers: int, mtp_depth: int) -> Offset:
    """Research-era offsets that place the same layers: the MTP layers join the last slot, and each slot's
    offset is its count minus (num_layers + mtp_depth) // slots. One chunk gives a flat per-stage tuple,
    or one int when every stage has the same offset."""
    slots = sum(len(chunk) for chunk in counts)
    base = (num_layers + mtp_depth) // max(slots, 1)
    last = (len(counts) - 1, len(counts[-1]) - 1)
    rows = tuple(tuple(n + (mtp_depth if (c, s) == last else 0) - base for s, n in enumerate(chunk))
                 for c, chunk in enumerate(counts))
    if len(rows) > 1:
        return rows
    return rows[0][0] if len(set(rows[0])) == 1 else rows[0]  # the same on every stage: one int, as written
