"""Tests of the test-cluster builder itself, with the real OpenSSH client.

The clusters here live in places of their own derived from the run's one setting (tests/conftest.py),
so they coexist with the suite's shared cluster fixture, and two runs with different settings
coexist on one machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import PLACE, derived_place, require_cluster_capability
from tests.testcluster import (
    STANDINS,
    ClusterError,
    ClusterPlace,
    TestCluster,
    TestHost,
    leftovers,
)

pytestmark = pytest.mark.cluster

BUILDER = derived_place("b", 1)
CRASH = derived_place("c", 2)
FAIL = derived_place("f", 3)
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    require_cluster_capability()
    with TestCluster(tmp_path_factory.mktemp("cluster"), hosts=3, isolated=1, place=BUILDER) as built:
        yield built


@pytest.fixture
def known_hosts(cluster: TestCluster, tmp_path: Path) -> Path:
    """Written per test: a test may rotate host keys."""
    return cluster.write_known_hosts(tmp_path / "known_hosts")


def ssh(cluster: TestCluster, known_hosts: Path, address: str, command: str,
        *, connect_timeout: int = 5) -> subprocess.CompletedProcess[str]:
    """The real OpenSSH client, strict about host keys, never prompting."""
    argv = [
        "ssh", "-F", "/dev/null", "-i", str(cluster.client_key),
        "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}",
        f"root@{address}", command,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_each_host_answers_with_its_own_hostname(cluster, known_hosts):
    for host in cluster.hosts:
        result = ssh(cluster, known_hosts, host.address, "hostname")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == host.hostname


def test_accepted_logins_counts_each_ssh_login(cluster, known_hosts):
    before = cluster.accepted_logins("h2")
    for _ in range(2):
        assert ssh(cluster, known_hosts, cluster.host("h2").address, "true").returncode == 0
    assert cluster.accepted_logins("h2") - before == 2


def test_storage_is_private_to_each_host(cluster, known_hosts):
    h0, h1 = cluster.host("h0"), cluster.host("h1")
    path = f"{cluster.node_storage_path}/written-on-h0"
    written = ssh(cluster, known_hosts, h0.address, f"echo hello > {path}")
    assert written.returncode == 0, written.stderr

    assert cluster.exec("h0", ["cat", path]).stdout == "hello\n"
    assert (h0.storage / "written-on-h0").read_text() == "hello\n"
    assert cluster.exec("h1", ["test", "-e", path]).returncode == 1
    assert ssh(cluster, known_hosts, h1.address, f"test -e {path}").returncode == 1
    assert not Path(path).exists(), "the host's mount leaked into the root namespace"


def test_cut_makes_connects_time_out_and_heal_restores(cluster, known_hosts):
    h2 = cluster.host("h2")
    cluster.cut("h2")
    try:
        cut = ssh(cluster, known_hosts, h2.address, "hostname", connect_timeout=2)
        assert cut.returncode == 255
        assert "timed out" in cut.stderr, cut.stderr  # not refused, not "no route"
    finally:
        cluster.heal("h2")
    healed = ssh(cluster, known_hosts, h2.address, "hostname")
    assert healed.stdout.strip() == h2.hostname, healed.stderr


def test_kill_sshd_ends_sessions_and_start_sshd_brings_it_back(cluster, known_hosts):
    h1 = cluster.host("h1")
    session = subprocess.Popen(
        ["ssh", "-F", "/dev/null", "-i", str(cluster.client_key),
         "-o", f"UserKnownHostsFile={known_hosts}", "-o", "BatchMode=yes",
         f"root@{h1.address}", "echo started; sleep 120"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert session.stdout is not None
        assert session.stdout.readline() == "started\n"
        cluster.kill_sshd("h1")
        assert session.wait(timeout=10) == 255  # its session died with the listener
    finally:
        session.kill()
        session.communicate()
    assert "refused" in ssh(cluster, known_hosts, h1.address, "true").stderr

    cluster.start_sshd("h1")
    back = ssh(cluster, known_hosts, h1.address, "hostname")
    assert back.stdout.strip() == h1.hostname, back.stderr


def test_rotated_host_key_is_refused_by_the_old_known_hosts(cluster, known_hosts, tmp_path):
    h2 = cluster.host("h2")
    old_line = cluster.host_key_line("h2")
    cluster.rotate_host_key("h2")
    assert cluster.host_key_line("h2") != old_line

    stale = ssh(cluster, known_hosts, h2.address, "hostname")
    assert stale.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in stale.stderr

    fresh = cluster.write_known_hosts(tmp_path / "fresh_known_hosts", ["h2"])
    assert ssh(cluster, fresh, h2.address, "hostname").stdout.strip() == h2.hostname


def test_stand_ins_print_the_recorded_hardware_state(cluster, known_hosts):
    h0, h1 = cluster.host("h0"), cluster.host("h1")
    table = (STANDINS / "recordings" / "healthy" / "npu-smi-info.txt").read_text()
    healthy = ssh(cluster, known_hosts, h0.address, "npu-smi info")
    assert (healthy.returncode, healthy.stdout) == (0, table)
    link = ssh(cluster, known_hosts, h0.address, "hccn_tool -i 3 -link -g")
    assert link.stdout == "link status: UP\n"

    cluster.set_hardware("h0", "no-driver")
    try:
        missing = ssh(cluster, known_hosts, h0.address, "npu-smi info")
        assert missing.returncode == 127
        assert "npu-smi: command not found" in missing.stderr
        assert ssh(cluster, known_hosts, h1.address, "npu-smi info").stdout == table
    finally:
        cluster.set_hardware("h0", "healthy")
    assert ssh(cluster, known_hosts, h0.address, "npu-smi info").stdout == table


def test_stand_ins_refuse_commands_they_have_no_recording_for(cluster, known_hosts):
    unknown = ssh(cluster, known_hosts, cluster.host("h0").address, "npu-smi frobnicate")
    assert unknown.returncode == 1
    assert "no recording" in unknown.stderr and unknown.stdout == ""
    with pytest.raises(ValueError, match="no hardware state"):
        cluster.set_hardware("h0", "on-fire")


def test_stand_ins_exist_only_on_the_test_hosts(cluster):
    assert cluster.exec("h1", ["sh", "-c", "command -v npu-smi"]).stdout.strip() \
        == "/usr/local/sbin/npu-smi"
    assert not Path("/usr/local/sbin/npu-smi").exists()


def test_isolated_host_is_reachable_only_through_the_bastion(cluster, known_hosts, tmp_path):
    bastion, isolated = cluster.host("h0"), cluster.isolated_hosts[0]
    config = cluster.write_ssh_config(tmp_path / "ssh_config", known_hosts)
    jumped = subprocess.run(
        ["ssh", "-F", str(config), "-J", f"root@{bastion.address}",
         f"root@{isolated.address}", "hostname"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert jumped.stdout.strip() == isolated.hostname, jumped.stderr

    direct = ssh(cluster, known_hosts, isolated.address, "hostname", connect_timeout=2)
    assert direct.returncode == 255
    assert "timed out" in direct.stderr, direct.stderr


def test_exec_runs_in_the_hosts_namespaces(cluster):
    for host in cluster.all_hosts:
        result = cluster.exec(host.name, ["sh", "-c", "hostname; ip -o -4 addr show eth0"])
        hostname, addresses = result.stdout.split("\n", 1)
        assert hostname == host.hostname
        assert f" {host.address}/24 " in addresses


def test_cluster_yaml_describes_the_reachable_hosts(cluster, known_hosts, tmp_path):
    path = cluster.cluster_yaml(tmp_path / "cluster.yaml", known_hosts=known_hosts,
                                extra_defaults={"devices": 4, "python": "python3"})
    document = yaml.safe_load(path.read_text())
    assert document["name"] == BUILDER.prefix
    assert document["defaults"] == {
        "user": "root", "port": 22, "identity_file": str(cluster.client_key),
        "known_hosts": str(known_hosts), "workdir": "/srv/actest", "devices": 4,
        "transport": "ssh", "python": "python3",
    }
    assert document["nodes"] == [{"name": h.name, "host": h.address} for h in cluster.hosts]


def _sshd_configs_in_use(under: Path) -> list[str]:
    """Command lines of running processes that name a file under `under`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(under) in argv:
            found.append(argv.replace("\0", " "))
    return found


CRASHING_RUN = """
import sys, time
from pathlib import Path
from tests.testcluster import ClusterPlace, TestCluster
place = ClusterPlace(sys.argv[2], sys.argv[3], int(sys.argv[4]))
TestCluster(Path(sys.argv[1]), hosts=2, place=place).start()
print("up", flush=True)
time.sleep(600)
"""


def test_start_removes_a_crashed_runs_leftovers_and_stop_removes_everything(tmp_path):
    require_cluster_capability()
    crashed = subprocess.Popen(
        [sys.executable, "-c", CRASHING_RUN, str(tmp_path / "crashed"), CRASH.prefix, CRASH.subnet_base,
         str(CRASH.segment)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert crashed.stdout is not None and crashed.stdout.readline() == "up\n"
    finally:
        crashed.send_signal(signal.SIGKILL)  # no stop(): everything it built is left behind
        crashed.communicate()
    assert any(item.startswith("netns") for item in leftovers(CRASH.prefix))

    cluster = TestCluster(tmp_path / "next", hosts=2, place=CRASH)
    try:
        cluster.start()
        assert cluster.exec("h1", ["hostname"]).stdout.strip() == f"{CRASH.prefix}-h1"
    finally:
        cluster.stop()
    assert leftovers(CRASH.prefix) == []
    assert _sshd_configs_in_use(tmp_path) == []
    ip_netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert CRASH.prefix not in ip_netns.stdout
    cluster.stop()  # idempotent


def test_a_failed_start_says_why_and_leaves_nothing_behind(tmp_path, monkeypatch):
    require_cluster_capability()
    config = TestCluster._sshd_config

    def broken_on_h1(self: TestCluster, host: TestHost) -> str:
        return config(self, host) + ("NoSuchOption yes\n" if host.name == "h1" else "")

    monkeypatch.setattr(TestCluster, "_sshd_config", broken_on_h1)
    cluster = TestCluster(tmp_path, hosts=2, place=FAIL)
    with pytest.raises(ClusterError, match=r"(?s)sshd on h1 .*Bad configuration option"):
        cluster.start()
    assert leftovers(FAIL.prefix) == []


def test_every_cluster_of_a_run_lives_in_a_place_derived_from_its_one_setting():
    places = [PLACE, BUILDER, CRASH, FAIL]
    assert all(p.prefix.startswith(PLACE.prefix) and p.subnet_base == PLACE.subnet_base for p in places)
    segments = [s for p in places for s in (p.segment, p.segment + 1)]  # main and isolated
    assert len(set(segments)) == len(segments), segments
    assert len({p.prefix for p in places}) == len(places)
    other_run = ClusterPlace("zz", "10.250").derived("b", 1)
    assert (other_run.prefix, other_run.address(0, 10), other_run.address(1, 10)) == \
        ("zzb", "10.250.2.10", "10.250.3.10")
    with pytest.raises(ValueError, match="segment"):
        ClusterPlace("zz", "10.250", 3)
