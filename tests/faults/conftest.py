"""Fixtures the fault modules share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.consoles import Site


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """Two local nodes and a console state of their own; whatever a test left running is stopped."""
    made = Site(tmp_path)
    try:
        yield made
    finally:
        job = made.the_job()
        made.stop_leftovers(job.id if job else "")


@pytest.fixture
def state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The console's state directory for this test (its store and logs), in the environment of every
    console command the test runs."""
    directory = tmp_path / "state"
    monkeypatch.setenv("ASCEND_CONSOLE_STATE", str(directory))
    return directory
