"""Python's garbage collector, calmed for a console that keeps many small objects for a long time.

A job screen keeps up to 20,000 lines in each log pane: with eight busy panes, several hundred thousand
small objects that live for minutes and hold no reference cycles (refcounting frees them). Each full
collection walks all of them, on the event loop: a key press then waits a few hundred milliseconds
(bench/log_pane.py). Moving what has survived a while into the permanent generation (`gc.freeze`)
every few seconds keeps full collections short; young objects are still collected as usual.
"""

from __future__ import annotations

import gc

FREEZE_EVERY = 5.0
"""Seconds between freezes: long enough that short-lived objects die young first."""


def freeze_survivors() -> None:
    """Collect the young generations, then set aside whatever is still alive."""
    gc.collect(1)
    gc.freeze()
