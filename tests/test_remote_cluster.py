"""Transports, fan-out and host keys against real sshd's on the namespace test cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from remote.fanout import run_on
from remote.inventory import Cluster, load_cluster
from remote.pool import NodePool
from remote.ssh import SSHTransport
from remote.transport import ErrorKind
from tests.testcluster import TestCluster

pytestmark = pytest.mark.cluster
MAIN_HOSTS = ["h0", "h1", "h2", "h3"]


def make_cluster(test_cluster: TestCluster, path: Path, known_hosts: Path,
                 names: list[str] | None = None, **defaults: object) -> Cluster:
    file = test_cluster.cluster_yaml(path, names or MAIN_HOSTS, known_hosts=known_hosts,
                                     extra_defaults={"connect_timeout": 3, **defaults})
    return load_cluster(file)


@pytest.fixture
def cluster(test_cluster: TestCluster, tmp_path: Path, known_hosts: Path) -> Cluster:
    return make_cluster(test_cluster, tmp_path / "cluster.yaml", known_hosts)


def console(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "console.cli", *args],
                          capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)


# --- the transport seam -------------------------------------------------------------------------


def test_run_reaches_each_host_as_itself(cluster: Cluster, test_cluster: TestCluster):
    with NodePool(cluster) as pool:
        outcome = run_on(pool, cluster.nodes, ["hostname"])
    assert outcome.all_ok, [r.describe() for r in outcome.results]
    assert [r.stdout.strip() for r in outcome.results] == [
        test_cluster.host(n).hostname for n in MAIN_HOSTS]


def test_stream_yields_lines_as_they_are_written(cluster: Cluster):
    with NodePool(cluster) as pool:
        stream = pool.transport("h0").stream(
            ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done; echo oops >&2; exit 4"])
        with stream:
            lines = [(line.channel, line.text) for line in stream]
    assert lines == [("stdout", "line1"), ("stdout", "line2"), ("stdout", "line3"), ("stderr", "oops")]
    assert stream.exit_code == 4


def test_closing_a_stream_stops_the_remote_command(cluster: Cluster, test_cluster: TestCluster):
    log = f"{TestCluster.node_storage_path}/follow-{time.monotonic_ns()}.log"
    test_cluster.exec("h1", ["sh", "-c", f"echo first > {log}"])
    with NodePool(cluster) as pool:
        stream = pool.transport("h1").stream(["tail", "-n", "+1", "-F", log])
        first = next(iter(stream))
        assert first.text == "first"
        assert test_cluster.exec("h1", ["pgrep", "-f", f"tail -n \\+1 -F {log}"]).returncode == 0
        stream.close()
    assert wait_until(lambda: test_cluster.exec(
        "h1", ["pgrep", "-f", f"tail -n \\+1 -F {log}"]).returncode != 0), "tail -F still runs on h1"


def test_put_and_get_land_on_that_node_only(cluster: Cluster, test_cluster: TestCluster, tmp_path: Path):
    payload = tmp_path / "weights part 1.bin"
    payload.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    destination = f"{TestCluster.node_storage_path}/jobs/a b/weights part 1.bin"
    with NodePool(cluster) as pool:
        sent = pool.transport("h1").put(payload, destination)
        assert sent.ok, sent.message
        back = pool.transport("h1").get(destination, tmp_path / "back.bin")
        assert back.ok, back.message
        missing = pool.transport("h0").get(destination, tmp_path / "not-there.bin")
    assert (tmp_path / "back.bin").read_bytes() == payload.read_bytes()
    assert missing.error is ErrorKind.IO and not (tmp_path / "not-there.bin").exists()
    assert test_cluster.exec("h1", ["test", "-f", destination]).returncode == 0
    assert test_cluster.exec("h0", ["test", "-e", destination]).returncode != 0


def test_hostile_arguments_reach_the_node_verbatim(cluster: Cluster, test_cluster: TestCluster):
    marker = f"{TestCluster.node_storage_path}/pwned-{time.monotonic_ns()}"
    args = ["a path/with spaces", "it's \"quoted\"", f"$(touch {marker})", f"`touch {marker}`",
            f"; touch {marker}", f"x\ntouch {marker}", "$HOME * ~ & | > \\", ""]
    workdir = f"{TestCluster.node_storage_path}/dir with 'quote' $(x)"
    test_cluster.exec("h2", ["mkdir", "-p", workdir])
    with NodePool(cluster) as pool:
        result = pool.transport("h2").run(["printf", "%s\\0", *args], cwd=workdir, env={"V": "; $(x)"})
        pwd = pool.transport("h2").run(["sh", "-c", 'printf "%s|%s" "$PWD" "$V"'],
                                       cwd=workdir, env={"V": "; $(x)"})
    assert result.ok, result.describe()
    assert result.stdout.split("\0")[:-1] == args
    assert pwd.stdout == f"{workdir}|; $(x)"
    assert test_cluster.exec("h2", ["test", "-e", marker]).returncode != 0


def test_timeout_kills_the_remote_command(cluster: Cluster, test_cluster: TestCluster):
    pidfile = f"{TestCluster.node_storage_path}/sleeper-{time.monotonic_ns()}.pid"
    with NodePool(cluster) as pool:
        result = pool.transport("h3").run(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 300"], timeout=1)
    assert result.error is ErrorKind.TIMEOUT and "did not finish within 1s" in result.message
    pid = test_cluster.exec("h3", ["cat", pidfile]).stdout.strip()
    assert wait_until(lambda: test_cluster.exec("h3", ["kill", "-0", pid]).returncode != 0)


# --- one connection per node ------------------------------------------------------------------


def test_the_pooled_connection_is_reused(cluster: Cluster, test_cluster: TestCluster):
    accepted_before = test_cluster.accepted_logins("h0")
    with NodePool(cluster) as pool:
        transport = pool.transport("h0")
        for _ in range(3):
            assert transport.run(["true"]).ok
        assert transport.put(Path(__file__), f"{TestCluster.node_storage_path}/copy.py").ok
        assert isinstance(transport, SSHTransport) and transport.connections_opened == 1
    assert test_cluster.accepted_logins("h0") - accepted_before == 1


def test_a_second_fanout_does_not_reconnect(cluster: Cluster):
    with NodePool(cluster) as pool:
        run_on(pool, cluster.nodes, ["true"])
        run_on(pool, cluster.nodes, ["true"])
        assert pool.connections_opened() == len(cluster.nodes)


def test_a_dead_connection_is_replaced(cluster: Cluster, test_cluster: TestCluster):
    with NodePool(cluster) as pool:
        transport = pool.transport("h2")
        assert transport.run(["true"]).ok
        test_cluster.kill_sshd("h2")
        down = transport.run(["true"])
        assert down.error is ErrorKind.UNREACHABLE, down.describe()
        test_cluster.start_sshd("h2")
        again = transport.run(["hostname"])
        assert again.ok, again.describe()
        assert isinstance(transport, SSHTransport) and transport.connections_opened == 2


# --- fan-out ------------------------------------------------------------------------------------


def test_fanout_with_one_link_cut(cluster: Cluster, test_cluster: TestCluster):
    test_cluster.cut("h2")
    try:
        with NodePool(cluster) as pool:
            outcome = run_on(pool, cluster.nodes, ["hostname"])
    finally:
        test_cluster.heal("h2")
    [lost] = outcome.unreachable
    assert lost.node == "h2" and lost.error is ErrorKind.UNREACHABLE
    assert "no answer within 3s" in lost.message
    # bounded by the 3 s connect timeout, not by TCP's minutes of retries
    assert lost.elapsed < 3 + 10
    assert [r.stdout.strip() for r in outcome.ok] == [
        test_cluster.host(n).hostname for n in ("h0", "h1", "h3")]


def test_cli_run_folds_and_exits_2_when_a_node_is_unreachable(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path):
    make_cluster(test_cluster, tmp_path / "c.yaml", known_hosts)
    test_cluster.cut("h3")
    try:
        done = console("run", "-c", str(tmp_path / "c.yaml"), "--fold", "--", "uname", "-s")
    finally:
        test_cluster.heal("h3")
    assert done.returncode == 2
    assert "h[0-2] (3)\n" in done.stdout and "Linux" in done.stdout
    assert "h3 (1)" in done.stdout and "unreachable" in done.stdout
    assert "h3: root@" in done.stderr and "no answer within 3s" in done.stderr


def test_cli_run_json(test_cluster: TestCluster, tmp_path: Path, known_hosts: Path):
    make_cluster(test_cluster, tmp_path / "c.yaml", known_hosts)
    done = console("run", "-c", str(tmp_path / "c.yaml"), "--json", "--nodes", "h[0-1]", "--", "hostname")
    report = json.loads(done.stdout)
    assert done.returncode == 0
    assert [(r["node"], r["stdout"].strip()) for r in report["results"]] == [
        ("h0", test_cluster.host("h0").hostname), ("h1", test_cluster.host("h1").hostname)]


# --- host keys, auth, bastions --------------------------------------------------------------------


def test_unknown_host_is_refused_with_its_fingerprint_then_trusted(
        test_cluster: TestCluster, tmp_path: Path):
    empty = tmp_path / "empty_known_hosts"
    file = test_cluster.cluster_yaml(tmp_path / "c.yaml", ["h0"], known_hosts=empty)
    with NodePool(load_cluster(file)) as pool:
        refused = pool.transport("h0").run(["true"])
    assert refused.error is ErrorKind.HOST_KEY
    assert "unknown host key" in refused.message and "SHA256:" in refused.message
    assert "ascend-console trust h0" in refused.message
    declined = console("trust", "-c", str(file), "h0")
    assert declined.returncode == 1 and "SHA256:" in declined.stdout and not empty.exists()
    trusted = console("trust", "-c", str(file), "--yes", "h0")
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    with NodePool(load_cluster(file)) as pool:
        assert pool.transport("h0").run(["true"]).ok
    again = console("trust", "-c", str(file), "h0")
    assert again.returncode == 0 and "already trusted" in again.stdout


def test_changed_host_key_is_refused_loudly(test_cluster: TestCluster, tmp_path: Path, known_hosts: Path):
    file = test_cluster.cluster_yaml(tmp_path / "c.yaml", ["h3"], known_hosts=known_hosts)
    test_cluster.rotate_host_key("h3")
    with NodePool(load_cluster(file)) as pool:
        refused = pool.transport("h3").run(["true"])
    assert refused.error is ErrorKind.HOST_KEY
    assert "HOST KEY CHANGED" in refused.message and "ssh-keygen -f" in refused.message
    before = known_hosts.read_text()
    trust = console("trust", "-c", str(file), "--yes", "h3")
    assert trust.returncode == 2 and "HOST KEY CHANGED" in trust.stdout
    assert known_hosts.read_text() == before


def test_wrong_key_is_an_auth_failure(test_cluster: TestCluster, tmp_path: Path, known_hosts: Path):
    stranger = tmp_path / "stranger_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    cluster = make_cluster(test_cluster, tmp_path / "c.yaml", known_hosts, ["h1"],
                           identity_file=str(stranger))
    with NodePool(cluster) as pool:
        result = pool.transport("h1").run(["true"])
    assert result.error is ErrorKind.AUTH and str(stranger) in result.message


def test_proxy_jump_through_the_bastion(test_cluster: TestCluster, tmp_path: Path, known_hosts: Path):
    inner = test_cluster.isolated_hosts[0]
    bastion = test_cluster.host("h0")
    direct = make_cluster(test_cluster, tmp_path / "direct.yaml", known_hosts, [inner.name],
                          connect_timeout=2)
    with NodePool(direct) as pool:
        assert pool.transport(inner.name).run(["true"]).error is ErrorKind.UNREACHABLE
    jumped = make_cluster(test_cluster, tmp_path / "jump.yaml", known_hosts, [inner.name],
                          proxy_jump=f"root@{bastion.address}")
    with NodePool(jumped) as pool:
        result = pool.transport(inner.name).run(["hostname"])
    assert result.ok, result.describe()
    assert result.stdout.strip() == inner.hostname


def test_ssh_config_alias_with_proxy_jump(test_cluster: TestCluster, tmp_path: Path, known_hosts: Path):
    inner, bastion = test_cluster.isolated_hosts[0], test_cluster.host("h0")
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text(
        f"Host lab-bastion\n  HostName {bastion.address}\n  User root\n"
        f"Host lab-inner\n  HostName {inner.address}\n  User root\n  ProxyJump lab-bastion\n")
    document = {
        "name": "via-config", "ssh_config": str(ssh_config),
        "defaults": {"identity_file": str(test_cluster.client_key), "known_hosts": str(known_hosts)},
        "nodes": [{"name": "inner", "host": "lab-inner"}],
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(document))
    done = console("run", "-c", str(tmp_path / "c.yaml"), "--", "hostname")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"inner: {inner.hostname}"


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_trusting_a_node_behind_a_bastion_trusts_the_bastion_too(
        test_cluster: TestCluster, tmp_path: Path):
    inner, bastion = test_cluster.isolated_hosts[0], test_cluster.host("h0")
    empty = tmp_path / "known_hosts"
    file = test_cluster.cluster_yaml(tmp_path / "c.yaml", [inner.name], known_hosts=empty,
                                     extra_defaults={"proxy_jump": f"root@{bastion.address}"})
    with NodePool(load_cluster(file)) as pool:
        refused = pool.transport(inner.name).run(["true"])
    assert refused.error is ErrorKind.HOST_KEY
    assert bastion.address in refused.message and f"ascend-console trust {inner.name}" in refused.message
    trusted = console("trust", "-c", str(file), "--yes", "--json", inner.name)
    assert trusted.returncode == 0, trusted.stderr
    states = [(r["known_as"], r["state"]) for r in json.loads(trusted.stdout)["nodes"]]
    assert states == [(bastion.address, "added"), (inner.address, "added")]
    done = console("run", "-c", str(file), "--", "hostname")
    assert done.returncode == 0 and done.stdout.strip() == f"{inner.name}: {inner.hostname}"


# --- what the review found -----------------------------------------------------------------------


def test_a_long_stream_arrives_whole(cluster: Cluster):
    with NodePool(cluster) as pool, pool.transport("h0").stream(["sh", "-c", "seq 1 300000; exit 7"]) as s:
        count = sum(1 for line in s if line.channel == "stdout")
    assert (count, s.exit_code) == (300000, 7)


def test_stdin_is_fed_while_output_is_read(cluster: Cluster):
    data = os.urandom(4 * 1024 * 1024)
    with NodePool(cluster) as pool:
        echoed = pool.transport("h1").run(["sh", "-c", "cat; echo done >&2"], stdin=data.hex().encode(),
                                          timeout=60)
    assert echoed.ok, echoed.describe()
    assert echoed.stdout == data.hex() and echoed.stderr == "done\n"


def test_sessions_over_the_servers_limit_are_refused_as_values(cluster: Cluster, test_cluster: TestCluster):
    """sshd allows 10 sessions a connection by default: the 11th is refused, the 10 live on."""
    with NodePool(cluster) as pool:
        transport = pool.transport("h2")
        streams = [transport.stream(["sleep", "300"]) for _ in range(10)]
        refused = transport.stream(["true"])
        assert refused.error is ErrorKind.REFUSED and "MaxSessions" in refused.message
        blocked = transport.run(["true"])
        assert blocked.error is ErrorKind.REFUSED
        for stream in streams:
            stream.close()
        assert wait_until(lambda: transport.run(["true"]).ok)
        assert isinstance(transport, SSHTransport) and transport.connections_opened == 1


def test_a_command_killed_by_a_signal_says_so(cluster: Cluster):
    with NodePool(cluster) as pool:
        result = pool.transport("h3").run(["sh", "-c", "echo before; kill -SEGV $$"])
    assert (result.status, result.exit_code, result.stdout) == ("failed", None, "before\n")
    assert "killed by a signal" in result.message


def test_a_command_that_ignores_term_is_still_a_timeout(cluster: Cluster):
    with NodePool(cluster) as pool:
        result = pool.transport("h3").run(["sh", "-c", "trap '' TERM; sleep 60"], timeout=1)
    assert result.error is ErrorKind.TIMEOUT


def test_closing_a_stream_stops_the_whole_remote_pipeline(cluster: Cluster, test_cluster: TestCluster):
    tag = f"30{time.monotonic_ns() % 1000}"
    with NodePool(cluster) as pool:
        stream = pool.transport("h1").stream(["sh", "-c", f"echo first; sleep {tag}1 | sleep {tag}2"])
        assert next(iter(stream)).text == "first"
        # "first" can arrive before the pipeline's two sleeps have started
        assert wait_until(lambda: len(test_cluster.exec("h1", ["pgrep", "-f", f"^sleep {tag}[12]$"])
                                      .stdout.split()) == 2)
        stream.close()
    assert wait_until(lambda: test_cluster.exec("h1", ["pgrep", "-f", f"^sleep {tag}[12]$"]).returncode != 0)


def test_a_cut_link_ends_a_stream_instead_of_hanging(test_cluster: TestCluster, tmp_path: Path,
                                                     known_hosts: Path):
    cluster = make_cluster(test_cluster, tmp_path / "c.yaml", known_hosts, ["h3"], keepalive=1)
    lines: list[str] = []
    with NodePool(cluster) as pool:
        stream = pool.transport("h3").stream(["sh", "-c", "echo up; exec sleep 300"])
        reader = threading.Thread(target=lambda: lines.extend(line.text for line in stream), daemon=True)
        reader.start()
        assert wait_until(lambda: lines == ["up"])
        test_cluster.cut("h3")
        try:
            reader.join(timeout=60)
            assert not reader.is_alive(), "the stream still waits on a dead link"
        finally:
            test_cluster.heal("h3")


def test_failed_copies_leave_no_partial_files(cluster: Cluster, test_cluster: TestCluster, tmp_path: Path):
    base = f"{TestCluster.node_storage_path}/partials-{time.monotonic_ns()}"
    test_cluster.exec("h0", ["sh", "-c", f"mkdir -p {base} && echo x > {base}/file"])
    source = tmp_path / "payload"
    source.write_bytes(b"payload")
    with NodePool(cluster) as pool:
        into_a_file = pool.transport("h0").put(source, f"{base}/file/under-a-file")
        missing = pool.transport("h0").get(f"{base}/absent", tmp_path / "local" / "absent")
    assert into_a_file.error is ErrorKind.IO and missing.error is ErrorKind.IO
    assert test_cluster.exec("h0", ["find", base, "-name", "*.part"]).stdout == ""
    assert list((tmp_path / "local").iterdir()) == []


def test_home_and_odd_workdirs(cluster: Cluster, test_cluster: TestCluster):
    odd = f"{TestCluster.node_storage_path}/-P"
    test_cluster.exec("h1", ["mkdir", "-p", "--", odd])
    with NodePool(cluster) as pool:
        home = pool.transport("h1").run(["pwd"], cwd="~")
        dashed = pool.transport("h1").run(["pwd"], cwd=odd)
    assert home.stdout.strip() == "/root" and dashed.stdout.strip() == odd


def test_a_host_known_by_another_key_type_is_still_trusted(test_cluster: TestCluster, tmp_path: Path):
    ecdsa_only = tmp_path / "known_hosts"
    lines = test_cluster.host_key_line("h2").splitlines()
    ecdsa_only.write_text("".join(f"{line}\n" for line in lines if "ecdsa" in line))
    file = test_cluster.cluster_yaml(tmp_path / "c.yaml", ["h2"], known_hosts=ecdsa_only)
    done = console("trust", "-c", str(file), "h2")
    assert done.returncode == 0 and "already trusted" in done.stdout, done.stdout
    with NodePool(load_cluster(file)) as pool:
        assert pool.transport("h2").run(["true"]).ok


def test_a_background_process_holding_the_output_does_not_hold_the_result(cluster: Cluster):
    with NodePool(cluster) as pool:
        result = pool.transport("h0").run(["sh", "-c", "sleep 30 & echo hi"], timeout=20)
    assert result.ok and result.stdout == "hi\n", result.describe()
