"""Shared fixtures. The test cluster is built once per session and always torn down."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.testcluster import ClusterPlace, TestCluster, capability_problem


def is_ci(value: str) -> bool:
    """CI systems set CI=true (GitHub, GitLab) or CI=1 (others); either, in any case, is CI."""
    return value.strip().lower() in {"1", "true"}


IN_CI = is_ci(os.environ.get("CI", ""))

# A test run removes whatever an earlier run with the same prefix left behind: two runs at once on
# one machine (two developers, or a run beside a benchmark) need different prefixes and subnets.
# Every cluster of a run lives in this one setting's place: the session's at it, any other one
# derived from it (`derived_place`: the prefix and a letter, further segments of the same subnet).
PREFIX = os.environ.get("ASCEND_TEST_PREFIX", "actest")
SUBNET = os.environ.get("ASCEND_TEST_SUBNET", "10.201")
PLACE = ClusterPlace(PREFIX, SUBNET)


def derived_place(suffix: str, index: int) -> ClusterPlace:
    """The place of a test's own cluster, beside the session's: `suffix` one letter, `index` from 1,
    each (suffix, index) used by one cluster only."""
    try:
        return PLACE.derived(suffix, index)
    except ValueError as exc:
        raise ValueError(f"ASCEND_TEST_PREFIX={PREFIX!r} leaves no room for a test's own cluster "
                         f"({exc}): use at most 9 characters") from exc


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test on the session's cluster is a cluster test, marked or not: `-m "not cluster"` skips it."""
    for item in items:
        if "test_cluster" in getattr(item, "fixturenames", ()) and item.get_closest_marker("cluster") is None:
            item.add_marker(pytest.mark.cluster)


def end_process(pid_file: Path, *, wait: float = 5.0) -> None:
    """Kill the process whose pid a test's own command wrote to `pid_file`, and only that one."""
    deadline = time.monotonic() + wait
    while not pid_file.exists() or not pid_file.read_text().strip():
        if time.monotonic() > deadline:
            raise AssertionError(f"{pid_file} was never written: the test's process did not start")
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):  # it may have ended already
        os.kill(int(pid_file.read_text()), signal.SIGKILL)


def require_cluster_capability() -> None:
    """Skip a test that needs the namespace cluster where it cannot be built; under CI, fail."""
    problem = capability_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI is set but the test cluster cannot be built here: {problem}")
        pytest.skip(f"test cluster unavailable: {problem}")


@pytest.fixture(scope="session")
def test_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    """Four hosts on a bridge plus one reachable only through h0 (the bastion)."""
    require_cluster_capability()
    with TestCluster(tmp_path_factory.mktemp("cluster"), hosts=4, isolated=1,
                     place=PLACE) as cluster:  # stopped even when a test fails
        yield cluster


@pytest.fixture
def known_hosts(test_cluster: TestCluster, tmp_path: Path) -> Path:
    """A known_hosts that trusts every host's current keys."""
    return test_cluster.write_known_hosts(tmp_path / "known_hosts")


@pytest.fixture
def utc() -> Iterator[None]:
    """Local times on screen and in logs read as UTC, whatever this machine's zone."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "UTC")
        time.tzset()
        yield
    time.tzset()
