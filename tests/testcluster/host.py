"""One host of the test cluster, as tests see it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TestHost:
    """One host of the test cluster, as tests see it."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    """"h0", "h1", ... for hosts on the main bridge; "i0", ... for isolated hosts."""
    address: str
    """Its address on its own network; for isolated hosts reachable only from the bastion."""
    hostname: str
    """Its UTS hostname, e.g. "actest-h0"."""
    netns: str
    """Its network namespace name, e.g. "actest-h0"."""
    state_dir: Path
    """Host keys, sshd_config, sshd pid file, sshd log, bin/ (the stand-ins)."""
    storage: Path
    """Root-namespace path of its private storage, seen by the host at node_storage_path."""
