"""Typed readings of YAML values for the config readers: a wrong type is an `InvalidValue` whose
message says what was expected and what was there (`expected an integer, got 'three'`)."""

from __future__ import annotations

from typing import Any


class InvalidValue(ValueError):
    """A value of the wrong type; the message says what would be valid."""


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})" if not isinstance(value, str) else repr(value)


def as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"expected an integer, got {describe(value)}")
    return value


def as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValue(f"expected a number, got {describe(value)}")
    return float(value)


def as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidValue(f"expected True or False, got {describe(value)}")
    return value


def as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidValue(f"expected a string, got {describe(value)}")
    return value


def as_optional_str(value: Any) -> str | None:
    return None if value is None or value == "" else as_str(value)


def as_optional_int(value: Any) -> int | None:
    return None if value is None else as_int(value)


def as_str_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise InvalidValue(f"expected a list of paths (and blend weights), got {describe(value)}")
    return tuple(str(v) for v in value)


def truthy(value: Any) -> bool:
    if isinstance(value, list):
        return any(truthy(v) for v in value)
    return bool(value)
