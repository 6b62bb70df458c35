"""The launch wizard's data page without Textual: a text file here converted into the job's dataset, a path
here copied to the nodes, weights fetched from a hub onto them, and where each lands on the nodes.

The work is the library's: `model.data.convert.convert` (the embedded corpus's tokenizer by default, as
the job's ranks would build it), `remote.transfer.distribute` and `remote.hub.fetch_weights`. This module
decides the paths and the words the page shows; the page runs it on thread workers.

Every copy goes to one node per machine (`console.jobs.plan.machines`: nodes at one `cluster_ip` share a
disk, as the embedded local cluster's two do), to the same absolute path under the first chosen node's
workdir, because the job config names one path for every rank.
"""

from __future__ import annotations

import heapq
import os
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from console.jobs.plan import machines
from console.jobs.wizard import Template, WizardDraft, derived_text
from model.config import parse_spec
from model.data.convert import ConvertResult, Progress, convert
from model.data.corpus import build_corpus
from remote.hub import ENDPOINT_ENV, WeightsResult, fetch_weights
from remote.inventory import NodeSpec
from remote.manifest import local_files
from remote.pool import NodePool
from remote.relayplan import NodeProgress
from remote.transfer import DistributionResult, ProgressCallback, distribute

Shelf = Literal["datasets", "weights"]
"""The directory under the workdir a copy goes to."""
PARALLEL_BYTES = 64 << 20
"""Texts from this size are tokenised by several processes; below, starting them costs more than it saves."""
MAX_WORKERS = 4
LISTED_FILES = 3
"""The largest files a copy's summary names."""
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


def size_text(size: float) -> str:
    """Bytes the way a person reads them: `512 B`, `3.4 MB`, `1.4 TB` (powers of 1000, as rsync says)."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def on_this_machine(nodes: Sequence[NodeSpec]) -> bool:
    """Every node runs here (the local transport): a path here is already a path on them."""
    return bool(nodes) and all(node.transport == "local" for node in nodes)


# --- converting a text here ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Conversion:
    """A text file here and how it becomes the job's dataset."""

    text: Path
    tokenizer: Path | None
    """None: the embedded corpus's, built for the model's vocab_size."""
    output_prefix: Path
    """convert writes `<output_prefix>_text_document.bin/.idx`, in a directory of their own."""
    seq_length: int
    vocab_size: int
    workers: int


def conversion(draft: WizardDraft, template: Template) -> Conversion:
    """The draft's text file, converted for the model the draft derives (its seq_length and vocab).

    Next to the text, in `<stem>_<seq_length>/`: a directory that holds only the dataset, so that it can be
    copied to the nodes as it is. Raises SourceError when the fields do not derive, ValueError when the
    text or the tokenizer is not a file here.
    """
    text = Path(draft.data_text).expanduser().absolute()
    tokenizer = Path(draft.tokenizer).expanduser().absolute() if draft.tokenizer else None
    for what, path in (("text file", text), ("tokenizer", tokenizer)):
        if path is not None and not path.is_file():
            raise ValueError(f"{path}: no such {what} on this machine")
    model = parse_spec(derived_text(draft, template), str(template.path)).model
    name = f"{text.stem}_{model.seq_length}"
    return Conversion(text, tokenizer, text.parent / name / name, model.seq_length, model.vocab_size,
                      convert_workers(text.stat().st_size, os.cpu_count() or 1))


def convert_workers(size: int, cpus: int) -> int:
    return 1 if size < PARALLEL_BYTES else max(1, min(MAX_WORKERS, cpus))


def convert_text(plan: Conversion, progress: Callable[[Progress], None]) -> ConvertResult:
    """Convert (blocking), building the embedded corpus's tokenizer first when none was given."""
    tokenizer = plan.tokenizer or build_corpus(vocab_size=plan.vocab_size,
                                               seq_length=plan.seq_length).tokenizer_path
    plan.output_prefix.parent.mkdir(parents=True, exist_ok=True)
    return convert(plan.text, plan.output_prefix, tokenizer, seq_length=plan.seq_length, mode="stitch",
                   workers=plan.workers, progress=progress)


def conversion_text(progress: Progress) -> str:
    return (f"{size_text(progress.bytes_read)} of {size_text(progress.total_bytes)} read · "
            f"{progress.documents:,} documents · {progress.sequences:,} sequences")


def converted_text(result: ConvertResult) -> str:
    return (f"✓ {result.documents:,} documents → {result.sequences:,} sequences of {result.seq_length + 1} "
            f"tokens: {result.prefix}")


# --- where a copy lands ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Targets:
    """The nodes a copy is sent to (one per machine) and those that share a target's disk."""

    nodes: tuple[NodeSpec, ...]
    sharing: Mapping[str, str]
    """A chosen node not sent to -> the target on its machine."""

    @property
    def names(self) -> str:
        return ", ".join(node.name for node in self.nodes)

    def sharing_text(self) -> str:
        said = [f"{node} shares {target}'s machine and its copy" for node, target in self.sharing.items()]
        return f" ({'; '.join(said)})" if said else ""


def targets(nodes: Sequence[NodeSpec]) -> Targets:
    groups = machines(nodes)
    return Targets(tuple(group[0] for group in groups),
                   {member.name: group[0].name for group in groups for member in group[1:]})


def destination(nodes: Sequence[NodeSpec], shelf: Shelf, name: str) -> str:
    """`<workdir>/<shelf>/<name>` of the first node: one absolute path, the same on every node."""
    return posixpath.join(nodes[0].workdir, shelf, name)


# --- copying a path here -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Copy:
    """What a copy will send and where, said before it starts."""

    source: Path
    destination: str
    """The directory on every target."""
    path_on_nodes: str
    """What the job config names: the copied directory, the copied file, or a dataset prefix in it."""
    targets: Targets
    files: int
    total_bytes: int
    largest: tuple[tuple[str, int], ...]


def plan_copy(source: Path, nodes: Sequence[NodeSpec], shelf: Shelf, *, prefix: str = "") -> Copy:
    """List `source` here (a directory or one file; sizes only, nothing hashed yet) and say where it goes.

    A file lands in `<workdir>/<shelf>/`; a directory becomes `<workdir>/<shelf>/<its name>`, and `prefix`
    names a dataset inside it. Raises ValueError when there is nothing to copy (remote.manifest's error).
    """
    source = source.expanduser().absolute()
    sizes = [(relative, path.stat().st_size) for relative, path in local_files(source)]
    if not sizes:
        raise ValueError(f"{source}: no files to copy")
    if source.is_file():
        where = destination(nodes, shelf, "")
        used = posixpath.join(where, source.name)
    else:
        where = destination(nodes, shelf, source.name)
        used = posixpath.join(where, prefix) if prefix else where
    largest = tuple(heapq.nlargest(LISTED_FILES, sizes, key=lambda item: item[1]))
    return Copy(source, where.rstrip("/"), used, targets(nodes), len(sizes), sum(size for _, size in sizes),
                largest)


def copy_lines(copy: Copy) -> list[str]:
    files = ", ".join(f"{name} {size_text(size)}" for name, size in copy.largest)
    more = f" and {copy.files - len(copy.largest)} more" if copy.files > len(copy.largest) else ""
    return [f"copy {copy.files} file(s), {size_text(copy.total_bytes)}: {files}{more}",
            f"to {copy.targets.names}:{copy.destination}{copy.targets.sharing_text()}"]


def run_copy(pool: NodePool, copy: Copy, on_progress: ProgressCallback) -> DistributionResult:
    """Copy and verify (blocking); raises DistributionError when the source cannot be read."""
    return distribute(pool, copy.targets.nodes, copy.source, copy.destination, on_progress=on_progress)


def copied_text(result: DistributionResult) -> str:
    if not result.ok:
        return "✗ " + "; ".join(f"{node.node}: {node.error or 'not verified'}" for node in result.failed)
    skipped = sum(node.files_skipped for node in result.nodes)
    already = f", {skipped} already there" if skipped else ""
    return (f"✓ {len(result.manifest)} file(s), {size_text(result.manifest.total_bytes)} verified on "
            f"{', '.join(n.node for n in result.nodes)}{already} in {result.elapsed:.1f}s")


def copy_progress(progress: Mapping[str, NodeProgress]) -> tuple[int, int, str]:
    """Bytes done and in all over the nodes, and a line saying where each stands."""
    done = sum(p.bytes_done for p in progress.values())
    total = sum(p.bytes_total for p in progress.values())
    states = " · ".join(f"{p.node} {p.state} {size_text(p.bytes_done)}/{size_text(p.bytes_total)}"
                        + (f" from {p.upstream}" if p.state == "sending" else "") for p in progress.values())
    return done, total, states


# --- fetching from a hub -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetch:
    """A hub download onto the first target, then a copy from it to the other targets."""

    repo_id: str
    destination: str
    targets: Targets


def plan_fetch(repo_id: str, nodes: Sequence[NodeSpec]) -> Fetch:
    """Where `owner/name` lands: `<workdir>/weights/<name>`. ValueError for an id that is not one."""
    if not _REPO_ID.fullmatch(repo_id):
        raise ValueError(f"{repo_id!r} is not a hub repository id: OWNER/NAME, e.g. "
                         "MindSpore-Lab/DeepSeek-V3")
    return Fetch(repo_id, destination(nodes, "weights", repo_id.split("/")[1]), targets(nodes))


def fetch_lines(fetch: Fetch) -> list[str]:
    first, *others = fetch.targets.nodes
    then = f", then copy to {', '.join(n.name for n in others)}" if others else ""
    return [f"download {fetch.repo_id} on {first.name} with openmind_hub{then}",
            f"to {fetch.destination}{fetch.targets.sharing_text()}"]


def run_fetch(pool: NodePool, fetch: Fetch, on_progress: ProgressCallback) -> WeightsResult:
    """Download and copy (blocking); raises HubError or DistributionError. The endpoint is
    $OPENMIND_HUB_ENDPOINT here, as `fetch-weights` takes it, else the node's own."""
    return fetch_weights(pool, fetch.targets.nodes, fetch.repo_id, fetch.destination,
                         endpoint=os.environ.get(ENDPOINT_ENV), on_progress=on_progress)


def fetched_text(fetch: Fetch, result: WeightsResult) -> str:
    mark = "✓" if result.ok else "✗"
    copied = "" if result.distribution is None else f"; copied: {copied_text(result.distribution)[2:]}"
    return f"{mark} {fetch.repo_id} downloaded on {result.node} to {fetch.destination}{copied}"
