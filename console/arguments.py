"""Argument types shared by the headless commands: bad values are usage errors, not tracebacks."""

from __future__ import annotations

import argparse


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds (got {text})")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {text})")
    return value


def endpoint_url(text: str) -> str:
    """An OpenAI-compatible endpoint's root URL (console/serving/client.base_url)."""
    from console.serving.client import base_url  # httpx loads only for the commands that need it

    try:
        return base_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
