"""Times as the console shows them."""

from __future__ import annotations

import time


def clock_text(moment: float) -> str:
    """Local wall-clock time of day, to the second."""
    return time.strftime("%H:%M:%S", time.localtime(moment))
