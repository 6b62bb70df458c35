"""Asking a trained job's model a question: its newest rank-0 checkpoint found on the node that ran rank
0, and `model.predict` run there, in the job directory, through the node's transport (every argument
quoted; the cluster file's `env_setup` lines first, as in `launch.sh`). The answer is MindFormers'
result line (`output result is: [{'text_generation_text': [...]}]`, read by model/answers.py): the
prompt and its continuation. A predict job's result file is read back from its node here too.

For jobs of the `model` style, whose job directory holds `code/model/` and `config.yaml`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from console.jobs.answer import JobAnswer, file_answer
from console.jobs.plan import CODE_DIR, CONFIG_NAME
from console.records import JobRecord
from model.answers import RESULT_FILE, RESULT_MARK, result_texts, shown_text
from remote.inventory import NodeSpec
from remote.pool import NodePool
from remote.transport import RunResult

ASK_TIMEOUT = 600.0
"""Seconds `model.predict` may take on the node (MindSpore's start and a graph compile included)."""
_CHECKPOINT = re.compile(r"_rank_0-(?P<epoch>\d+)_(?P<step>\d+)\.ckpt\Z")


@dataclass(frozen=True)
class Answer:
    """What the model said, or why it said nothing."""

    node: str
    checkpoint: str | None
    """The checkpoint asked, its absolute path on the node."""
    text: str | None
    """The prompt and the model's continuation; None when `error` says why not."""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.text is not None


def newest_checkpoint(names: Iterable[str]) -> str | None:
    """The rank-0 checkpoint of the latest (epoch, step) among file names (`demo_rank_0-1_200.ckpt`)."""
    found = [(int(m["epoch"]), int(m["step"]), name) for name in names
             if (m := _CHECKPOINT.search(name.strip())) is not None]
    return max(found)[2].strip() if found else None


def answer_text(output: str) -> str | None:
    """The first generated text of the last result line in predict's output, without a leading special
    token."""
    for line in reversed(output.splitlines()):
        if RESULT_MARK in line:
            texts = result_texts(line)
            return shown_text(texts[0]) if texts else None
    return None


def checkpoint_dir(config_text: str) -> str:
    """Where rank 0 saves, relative to the job directory: `<output_dir>/checkpoint/rank_0`."""
    try:
        document: Any = yaml.safe_load(config_text)
    except yaml.YAMLError:
        document = None
    output = document.get("output_dir") if isinstance(document, dict) else None
    return posixpath.join(str(output or "./output"), "checkpoint", "rank_0")


def predict_argv(node: NodeSpec, *, checkpoint: str, prompt: str, max_new_tokens: int) -> list[str]:
    """`model.predict` on the node, run from the job directory: `sh -c` runs the cluster file's
    `env_setup` lines (as written, as launch.sh does) and puts the shipped code on PYTHONPATH; every
    other word is an argument of its own."""
    script = "\n".join([*node.env_setup,
                        f'export PYTHONPATH="$PWD/{CODE_DIR}${{PYTHONPATH:+:$PYTHONPATH}}"',
                        'exec "$@"'])
    return ["sh", "-c", script, "sh", node.python, "-m", "model.predict", "--config", CONFIG_NAME,
            "--checkpoint", checkpoint, "--prompt", prompt, "--max-new-tokens", str(max_new_tokens)]


def rank0_node(job: JobRecord) -> tuple[str, str]:
    """(node, job directory) of the job's node_rank 0, from its recorded plan."""
    nodes = job.plan.get("nodes") or []
    first = min(nodes, key=lambda n: int(n["node_rank"]))
    return str(first["node"]), str(first["job_dir"])


@dataclass(frozen=True)
class FoundCheckpoint:
    """A training job's newest rank-0 checkpoint on the node that ran rank 0, or why there is none."""

    node: str
    path: str | None
    """Absolute, on `node`."""
    error: str | None = None


_LIST = 'cd -- "$1" && pwd -P && ls -1'
"""Prints the checkpoint directory's absolute path, then its files: the path arrives as an argument."""


def find_checkpoint(pool: NodePool, job: JobRecord, *, timeout: float = 60.0) -> FoundCheckpoint:
    """The newest rank-0 checkpoint the job saved. Never raises for the node: `error` says why not."""
    name, directory = rank0_node(job)
    saved = checkpoint_dir(job.config_text)
    listing = pool.transport(pool.cluster.node(name)).run(["sh", "-c", _LIST, "sh", saved], cwd=directory,
                                                          timeout=timeout)
    lines = listing.stdout.splitlines() if listing.ok else []
    newest = newest_checkpoint(lines[1:])
    if newest is None:
        why = _failure(listing) if not listing.ok else "none there"
        return FoundCheckpoint(name, None, f"no rank-0 checkpoint in {directory}/{saved} on {name}: {why}")
    return FoundCheckpoint(name, posixpath.join(lines[0].strip(), newest))


def ask_job(pool: NodePool, job: JobRecord, prompt: str, *, max_new_tokens: int = 24,
            timeout: float = ASK_TIMEOUT) -> Answer:
    """Ask the job's newest checkpoint to continue `prompt`. Never raises for the node: a missing
    checkpoint, a failed predict or an unreadable answer is an `Answer` with its `error`."""
    found = find_checkpoint(pool, job, timeout=min(timeout, 60.0))
    if found.path is None:
        return Answer(found.node, None, None, found.error)
    _, directory = rank0_node(job)
    node = pool.cluster.node(found.node)
    argv = predict_argv(node, checkpoint=found.path, prompt=prompt, max_new_tokens=max_new_tokens)
    result = pool.transport(node).run(argv, cwd=directory, timeout=timeout)
    text = answer_text(result.stdout)
    if text is not None:
        return Answer(found.node, found.path, text)
    return Answer(found.node, found.path, None, f"model.predict on {found.node}: {_failure(result)}")


RESULT_FILE_LIMIT = 4 << 20
"""Bytes of a result file read back: answers, not a dump."""


def read_result_file(pool: NodePool, job: JobRecord, *, timeout: float) -> JobAnswer | None:
    """The answer in the result file rank 0 left in its job directory, or None (none there, or the node
    could not be asked)."""
    name, directory = rank0_node(job)
    result = pool.transport(pool.cluster.node(name)).run(
        ["head", "-c", str(RESULT_FILE_LIMIT), "--", RESULT_FILE], cwd=directory, timeout=timeout)
    if not result.ok:
        return None
    return file_answer(name, posixpath.join(directory, RESULT_FILE), result.stdout)


def _failure(result: RunResult) -> str:
    """What went wrong, without the command (its script is ours): the error, or the exit and last line."""
    if result.error is not None or result.exit_code is None:
        return result.message
    last = (result.stderr.strip().splitlines() or result.stdout.strip().splitlines() or [""])[-1]
    verdict = "printed no answer" if result.exit_code == 0 else f"exited {result.exit_code}"
    return f"{verdict} {last}".rstrip()
