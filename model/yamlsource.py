"""YAML loading that remembers where every key came from, for errors that name file and line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file, located as precisely as we can."""

    source: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class SourceError(ValueError):
    """An input file has one or more problems; `problems` lists them all."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class LocatedDocument:
    """A plain-Python YAML document plus the 1-based line of every key and item in it."""

    source: str
    data: Any
    lines: dict[FieldPath, int] = field(default_factory=dict)

    def line_of(self, path: FieldPath) -> int | None:
        """The line of `path`, or of its closest located ancestor."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def problem(self, path: FieldPath, message: str) -> Problem:
        return Problem(self.source, self.line_of(path), dotted(path), message)


def dotted(path: FieldPath) -> str:
    """`("nodes", 1, "port")` -> `nodes[1].port`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def load_located(text: str, source: str) -> LocatedDocument:
    """Parse one YAML document; syntax errors and duplicate keys become a SourceError."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        raise SourceError([Problem(source, line, "", f"not valid YAML: {exc.problem}")]) from exc
    doc = LocatedDocument(source, None)
    problems: list[Problem] = []
    builder = _Builder(doc, problems)
    doc.data = builder.convert(root, ()) if root is not None else None
    if problems:
        raise SourceError(problems)
    return doc


def load_located_file(path: Path) -> LocatedDocument:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError([Problem(str(path), None, "", f"cannot read: {exc.strerror}")]) from exc
    return load_located(text, str(path))


class _Builder:
    """Turns composed YAML nodes into Python values, recording lines on the way."""

    def __init__(self, doc: LocatedDocument, problems: list[Problem]) -> None:
        self.doc = doc
        self.problems = problems
        # the stock constructor does the scalar typing and `<<` merges, exactly as safe_load would
        self.constructor = yaml.SafeLoader("")

    def convert(self, node: yaml.Node, path: FieldPath) -> Any:
        self.doc.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.constructor.construct_object(node, deep=True)

    def mapping(self, node: yaml.MappingNode, path: FieldPath) -> dict[Any, Any]:
        self.constructor.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.constructor.construct_object(key_node, deep=True)
            child = (*path, str(key))
            line = key_node.start_mark.line + 1
            if key in result:
                self.problems.append(Problem(
                    self.doc.source, line, dotted(child),
                    f"duplicate key (first set on line {self.doc.lines[child]})",
                ))
                continue
            self.doc.lines[child] = line
            result[key] = self.convert(value_node, child)
        return result
