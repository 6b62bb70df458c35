"""tests/conftest.py: CI as the usual CI systems announce it, so the cluster layer never skips there."""

from __future__ import annotations

import pytest

from tests.conftest import is_ci


@pytest.mark.parametrize("value", ["1", "true", "True", "TRUE", " true\n"])
def test_ci_set_as_ci_systems_set_it_counts(value: str):
    assert is_ci(value)


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_ci_unset_or_off_does_not(value: str):
    assert not is_ci(value)
