"""Derived configs: `--set a.b.c=value` overrides applied to a YAML file that keeps its comments.

The document is edited in ruamel.yaml's round-trip mode, so comments, key order, quoting, flow
lists and anchors survive. Overriding an anchored value (`num_layers: &num_layers 61`) keeps the
anchor on the new value, so every alias (`num_layers: *num_layers` in a callback) follows it.

An override whose path lands on an alias, or passes through one (`callbacks[1].num_layers`, or a key
inside `dataset_config: *train_dataset`), is refused: it would silently change the anchor and every
other alias. The error names the anchor, where it is defined (file:line) and the path to set instead.
"""

from __future__ import annotations

import difflib
import functools
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from model.config import DIALECT_FIELDS
from model.yamlsource import FieldPath, Problem, SourceError, dotted

SET_SOURCE = "--set"

# The DeepSeek-V3 tutorial's changes that turn the 671b template into a 1b model for one 8-NPU server.
# `configs/jobs/pretrain_deepseek3_1b.yaml` is exactly derive(671b template, these overrides).
TUTORIAL_1B_OVERRIDES: tuple[str, ...] = (
    "model.model_config.hidden_size=2048",
    "model.model_config.num_layers=3",
    "model.model_config.num_heads=8",
    "model.model_config.intermediate_size=6144",
    "model.model_config.offset=0",
    "moe_config.expert_num=16",
    "moe_config.first_k_dense_replace=1",
    "parallel_config.data_parallel=2",
    "parallel_config.model_parallel=2",
    "parallel_config.pipeline_stage=2",
    "parallel_config.expert_parallel=2",
    "parallel_config.micro_batch_num=4",
    "parallel.parallel_optimizer_config.optimizer_weight_shard_size=8",
    "lr_schedule.type=ConstantWarmUpLR",
    "lr_schedule.warmup_steps=20",
    "train_dataset.data_loader.config.data_path=['1', '/path/wiki103-megatron_text_document']",
)

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True)
class Override:
    """One `--set path=value`: the document path and the value as YAML text (typed when parsed)."""

    path: FieldPath
    value_text: str

    def __str__(self) -> str:
        return f"{dotted(self.path)}={self.value_text}"


def parse_override(text: str) -> Override:
    """`model.model_config.num_layers=3` -> Override; a list index is written `data_path[1]`."""
    name, sep, value = text.partition("=")
    path = _parse_path(name.strip())
    if not sep or path is None:
        raise SourceError([Problem(SET_SOURCE, None, name.strip(),
                                   f"expected PATH=VALUE with a dotted PATH such as "
                                   f"model.model_config.num_layers=3, got {text!r}")])
    return Override(path, value.strip())


def _parse_path(name: str) -> FieldPath | None:
    parts: list[str | int] = []
    position = 0
    for match in _PART.finditer(name):
        gap = name[position:match.start()]
        if gap not in ("", "."):
            return None
        key, index = match.groups()
        parts.append(int(index) if index is not None else key)
        position = match.end()
    if not parts or position != len(name) or isinstance(parts[0], int):
        return None
    return tuple(parts)


def round_trip_yaml() -> YAML:
    """The one YAML reader/writer for derived configs, in MindFormers' style (`True`, indented lists)."""
    writer = YAML(typ="rt")
    writer.preserve_quotes = True
    writer.width = 4096
    writer.indent(mapping=2, sequence=4, offset=2)
    # read by ruamel's represent_bool, but not declared on YAML
    writer.boolean_representation = ["False", "True"]  # type: ignore[attr-defined]
    return writer


def apply_overrides(text: str, source: str, overrides: Sequence[Override]) -> str:
    """`text` with every override applied, everything else written back as it was."""
    rt = round_trip_yaml()
    try:
        document = rt.load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or exc
        raise SourceError([Problem(source, line, "", f"not valid YAML: {problem}")]) from exc
    problems: list[Problem] = []
    for override in overrides:
        try:
            _apply(document, source, override)
        except SourceError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SourceError(problems)
    out = io.StringIO()
    rt.dump(document, out)
    return out.getvalue()


def derive(template_path: Path, overrides: Sequence[str]) -> str:
    """The text of a config derived from `template_path` by `--set` overrides, with a header naming them."""
    parsed = [parse_override(text) for text in overrides]
    try:
        text = template_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError([Problem(str(template_path), None, "", f"cannot read: {exc.strerror}")]) from exc
    body = _without_derivation_header(apply_overrides(text, str(template_path), parsed))
    header = [f"# Derived from {template_path.name} with:"]
    header += [f"#   --set {override}" for override in parsed] or ["#   (no overrides)"]
    return "\n".join(header) + "\n" + body


def _without_derivation_header(text: str) -> str:
    """A template that was itself derived keeps one header, the new one, not a stack of them."""
    lines = text.split("\n")
    if not lines or not lines[0].startswith("# Derived from "):
        return text
    end = 1
    while end < len(lines) and lines[end].startswith("#   "):
        end += 1
    return "\n".join(lines[end:])


def _apply(document: Any, source: str, override: Override) -> None:
    _refuse_aliases(document, source, override.path)
    parent, key = _locate(document, source, override.path)
    if isinstance(parent, CommentedMap) and key not in parent:
        parent[key] = _parse_value(override, None)  # a field the spec knows, added
        return
    old = parent[key]
    anchor = _anchor_of(old)
    value = _parse_value(override, anchor)
    if anchor is None:
        parent[key] = value
    else:
        _replace_everywhere(document, old, value)


def _locate(document: Any, source: str, path: FieldPath) -> tuple[Any, str | int]:
    """The container holding `path`'s last part, and that part; unknown paths name the nearest key."""
    node, line = document, 1
    for depth, part in enumerate(path):
        here = path[:depth]
        if isinstance(node, CommentedMap) and isinstance(part, str):
            if part not in node:
                if depth == len(path) - 1 and path in known_field_paths():
                    return node, part  # absent from this file, but a field every reader knows
                raise SourceError([Problem(source, line, dotted(path), _unknown_key(node, part, here))])
            line = node.lc.key(part)[0] + 1
        elif isinstance(node, CommentedSeq) and isinstance(part, int):
            if part >= len(node):
                raise SourceError([Problem(source, line, dotted(path),
                                           f"{dotted(here)} has {len(node)} items; no index {part}")])
            line = node.lc.item(part)[0] + 1
        else:
            kind = "a list" if isinstance(node, CommentedSeq) else "a mapping" \
                if isinstance(node, CommentedMap) else "a value"
            raise SourceError([Problem(source, line, dotted(path),
                                       f"{dotted(here) or 'the document'} is {kind}; cannot take {part!r}")])
        if depth == len(path) - 1:
            return node, part
        node = node[part]
    raise AssertionError("empty override path")  # parse_override never makes one


@functools.cache
def known_field_paths() -> frozenset[FieldPath]:
    """Document paths the spec reads in some dialect: `--set` may add these where they are absent
    (turning on context parallel or interleave in a template that never mentioned them)."""
    return frozenset(spec_field.path for fields in DIALECT_FIELDS.values() for spec_field in fields)


def _unknown_key(node: CommentedMap, part: str, here: FieldPath) -> str:
    keys = [str(k) for k in node]
    where = dotted(here) or "the top level"
    close = difflib.get_close_matches(part, keys, n=1, cutoff=0.5)
    if close:
        return f"no key {part!r} under {where}; nearest existing key: {dotted((*here, close[0]))}"
    return f"no key {part!r} under {where}; it has: {', '.join(keys)}"


@dataclass(frozen=True)
class _Site:
    """Where a node sits: its path and 1-based line."""

    path: FieldPath
    line: int | None


def _children(node: Any) -> list[tuple[str | int, Any, int | None]]:
    """(key or index, child, line) of a mapping or list, in document order; no line for what an earlier
    override added."""
    if isinstance(node, CommentedMap):
        return [(key, node[key], _line(node.lc.key, key)) for key in node]
    if isinstance(node, CommentedSeq):
        return [(index, item, _line(node.lc.item, index)) for index, item in enumerate(node)]
    return []


def _line(position: Callable[[Any], tuple[int, int]], key: str | int) -> int | None:
    try:
        return position(key)[0] + 1
    except KeyError:
        return None


def _anchor_sites(node: Any, path: FieldPath = (), sites: dict[int, _Site] | None = None) -> dict[int, _Site]:
    """Each anchored node (by identity) -> where the anchor is defined: its first occurrence."""
    sites = {} if sites is None else sites
    for key, child, line in _children(node):
        if id(child) in sites:
            continue  # an alias: its content was walked at the anchor
        if _anchor_of(child) is not None:
            sites[id(child)] = _Site((*path, key), line)
        _anchor_sites(child, (*path, key), sites)
    return sites


def _refuse_aliases(document: Any, source: str, path: FieldPath) -> None:
    """A SourceError when `path` lands on or passes through an alias rather than the anchor itself."""
    sites, node = _anchor_sites(document), document
    for depth, part in enumerate(path):
        here = {key: (child, line) for key, child, line in _children(node)}
        if part not in here:
            return  # _locate reports unknown paths
        node, line = here[part]
        anchor = _anchor_of(node)
        site = sites.get(id(node))
        if anchor is None or site is None or site.path == path[:depth + 1]:
            continue
        instead = dotted((*site.path, *path[depth + 1:]))
        raise SourceError([Problem(source, line, dotted(path),
                                   f"{dotted(path[:depth + 1])} is an alias (*{anchor}) of the anchor "
                                   f"&{anchor} defined at {source}:{site.line or '?'} ({dotted(site.path)}); "
                                   f"setting it would change the anchor and every alias of it. Set {instead} "
                                   f"instead")])


def _anchor_of(value: Any) -> str | None:
    anchor = getattr(value, "anchor", None)
    name = getattr(anchor, "value", None)
    return name if isinstance(name, str) else None


def _parse_value(override: Override, anchor: str | None) -> Any:
    """The value as YAML would type it; carrying `anchor` when it replaces an anchored value."""
    text = mindformers_scalar(override.value_text)
    try:
        return round_trip_yaml().load(f"&{anchor} {text}" if anchor else text)
    except YAMLError as exc:
        raise SourceError([Problem(SET_SOURCE, None, dotted(override.path),
                                   f"value is not valid YAML: {text!r}")]) from exc


def mindformers_scalar(text: str) -> str:
    """A scalar written so that MindFormers (PyYAML, YAML 1.1) reads what a person meant by it.

    PyYAML reads `1e-5` as a string (a float needs a dot and a signed exponent: `1.0e-5`), and
    `yes`/`on` as booleans; these are written `1.0e-5` and `True`. Other text is left as written.
    """
    stripped = text.strip()
    try:
        meant = yaml.safe_load(stripped)
    except yaml.YAMLError:
        return text  # ruamel reports it with the override's path
    if isinstance(meant, bool):
        return str(meant)
    if isinstance(meant, str) and _FLOAT_TEXT.fullmatch(stripped):
        mantissa, _, exponent = stripped.lower().partition("e")
        mantissa = mantissa if "." in mantissa else f"{mantissa}.0"
        exponent = exponent if exponent[:1] in ("+", "-") else f"+{exponent}"
        return f"{mantissa}e{exponent}"
    return text


_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _replace_everywhere(node: Any, old: Any, new: Any) -> None:
    """Replace every reference to `old` (the anchor and its aliases) by `new`, by identity."""
    if isinstance(node, CommentedMap):
        for key in list(node):
            if node[key] is old:
                node[key] = new
            else:
                _replace_everywhere(node[key], old, new)
    elif isinstance(node, CommentedSeq):
        for index, item in enumerate(node):
            if item is old:
                node[index] = new
            else:
                _replace_everywhere(item, old, new)
