"""A cluster of real SSH hosts on this machine, for integration tests and benchmarks.

Each host is a network namespace on a Linux bridge with its own address, an "anchor" process
(`sleep infinity`) that owns the host's mount and UTS namespaces (its hostname, its private
storage at `TestCluster.node_storage_path`, its hardware stand-ins at /usr/local/sbin), and a
real OpenSSH sshd entered into those namespaces. The anchor keeps hostname and mounts alive while
sshd is killed and restarted, and gives `exec()` something to enter while sshd is down.

Layout under `root`:
    client_key, client_key.pub      the key authorised for root on every host
    <prefix>-h0/                    state_dir: host keys, sshd_config, sshd.pid, sshd.log, bin/
    storage/h0/                     the host's private storage

Everything in the kernel is named with the prefix, so a crashed run's leftovers are found and
removed by the next start(). Needs root: see capability_problem(). No pytest import here: bench/
scripts use this package too.

Modules: `cluster` (TestCluster), `host` (TestHost), `network` (bridges, veths, neighbours),
`sshd` (keys, config, readiness), `hardware` (the stand-ins), `leftovers` (finding and removing
what a run left), `processes` (pids, kills), `commands` (bounded tool runs, ClusterError).
"""

from tests.testcluster.cluster import DEFAULT_PLACE, ClusterPlace, TestCluster, capability_problem
from tests.testcluster.commands import ClusterError
from tests.testcluster.hardware import STANDINS
from tests.testcluster.host import TestHost
from tests.testcluster.leftovers import leftovers, remove_leftovers

__all__ = [
    "DEFAULT_PLACE",
    "STANDINS",
    "ClusterError",
    "ClusterPlace",
    "TestCluster",
    "TestHost",
    "capability_problem",
    "leftovers",
    "remove_leftovers",
]
