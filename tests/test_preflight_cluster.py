"""Preflight's refusals on the real test cluster (issue 16, item 9): a node whose workdir sits on a
filesystem with too little room, a node whose NPUs report a fault, a node whose link is cut, and a
master port another process really listens on. Each refusal names that node (and only it) with the
reason, in the JSON and in the table a person reads at 80 columns; with a node cut off, the launch
refuses too, touching no node."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from console.cli import main
from console.jobs.preflight import DISK_MARGIN_BYTES
from tests.cluster_jobs import STORAGE, cli, cluster_file, job
from tests.testcluster import TestCluster
from tests.testcluster.mounts import mounts_at, unmount_to

pytestmark = pytest.mark.cluster

SMALL_DISK = f"{STORAGE}/preflight-disk"
"""The workdir of the disk test: a tmpfs of a chosen size on each host."""


@pytest.fixture(autouse=True)
def private_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The console's state is the test's own, and its terminal 80 columns wide."""
    monkeypatch.setenv("ASCEND_CONSOLE_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("COLUMNS", "80")


# --- what the hosts hold ------------------------------------------------------------------------


def on_host(test_cluster: TestCluster, host: str, script: str, *args: str) -> str:
    """A shell script run as root in the host (not over SSH); its stdout, or the test fails."""
    done = test_cluster.exec(host, ["sh", "-c", script, "sh", *args])
    assert done.returncode == 0, f"{host}: {script!r}: {done.stderr}"
    return done.stdout




@contextmanager
def disk_of(test_cluster: TestCluster, sizes: dict[str, str], path: str) -> Iterator[None]:
    """A tmpfs of the given size (`64m`, `8g`) mounted at `path` on each host: a real filesystem whose
    free space df reports; unmounted at the end, on every host even when one fails to."""
    with ExitStack() as mounted:
        for host, size in sizes.items():
            mounted.callback(unmount_to, test_cluster, host, path, mounts_at(test_cluster, host, path))
            on_host(test_cluster, host, 'mkdir -p "$1" && mount -t tmpfs -o "size=$2" ascend-small "$1"',
                    path, size)
        yield


LISTENER_LIFE = 180
"""Seconds a test's listener lives at most: longer than any test holding one takes."""


@contextmanager
def listening(test_cluster: TestCluster, host: str, address: str, port: int) -> Iterator[int]:
    """A real TCP listener on the host at (address, port), started in the background; yields its pid
    once it listens, and ends it by that pid. It ends by itself once this test process is gone (a
    pytest killed meanwhile leaves no port taken for the next session), or after LISTENER_LIFE."""
    said = test_cluster.host(host).state_dir / f"listener-{port}.out"
    said.unlink(missing_ok=True)
    script = ("import os, socket, sys, time\n"
              "family = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET\n"
              "s = socket.socket(family)\n"
              "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do\n"
              "s.bind((sys.argv[1], int(sys.argv[2])))\n"
              "s.listen()\n"
              "print('listening', flush=True)\n"
              "deadline = time.monotonic() + float(sys.argv[4])\n"
              "while time.monotonic() < deadline and os.path.exists('/proc/' + sys.argv[3]):\n"
              "    time.sleep(0.2)\n")
    started = on_host(test_cluster, host, '"$1" -c "$2" "$3" "$4" "$5" "$6" > "$7" 2>&1 & echo $!',
                      sys.executable, script, address, str(port), str(os.getpid()), str(LISTENER_LIFE),
                      str(said))
    pid = int(started)

    def output() -> str:
        return said.read_text() if said.exists() else ""

    try:
        deadline = time.monotonic() + 10
        while "listening" not in output():
            assert time.monotonic() < deadline, f"no listener on {host} {address}:{port}: {output()!r}"
            time.sleep(0.05)
        yield pid
    finally:
        end(pid)


def end(pid: int) -> None:
    """SIGKILL the process and wait until it is gone (or a zombie: its sockets are closed then)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return
        if state == "Z":
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} outlived SIGKILL")


def console_processes(test_cluster: TestCluster, host: str) -> list[str]:
    """Every process of the host (the machine's other processes share its process table, but not its
    mount namespace) that a job of the console started: its marker in the environment."""
    script = ('mine=$(readlink /proc/$$/ns/mnt); for d in /proc/[0-9]*; do '
              '[ "$(readlink "$d/ns/mnt" 2>/dev/null)" = "$mine" ] || continue; '
              'tr "\\0" "\\n" < "$d/environ" 2>/dev/null | grep -q "^ASCEND_CONSOLE_JOB=" && echo "$d"; '
              'done; true')
    return on_host(test_cluster, host, script).split()


def listed(test_cluster: TestCluster, host: str, path: str) -> list[str]:
    return on_host(test_cluster, host, 'ls -A "$1" 2>/dev/null; true', path).split()


# --- what preflight says ------------------------------------------------------------------------


def failing(verdict: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(c["check"], c["node"]) for c in verdict["checks"] if not c["ok"]]


def the_check(verdict: dict[str, Any], check: str, node: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in verdict["checks"] if c["check"] == check and c["node"] == node]
    assert len(found) == 1, (check, node, verdict)
    return found[0]


def table_rows(text: str) -> list[list[str]]:
    """The rows of the preflight table as a person reads them: a cell wrapped over several lines is
    joined back into one (a row begins where the `check` cell is not empty)."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if len(cells) != 4 or cells == ["check", "node", "verdict", "detail"]:
            continue
        if cells[0] or not rows:
            rows.append(cells)
        else:
            rows[-1] = [" ".join(filter(None, (old, new))) for old, new in zip(rows[-1], cells, strict=True)]
    return rows


def preflight_table(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, list[list[str]]]:
    """`preflight` as a person runs it on a terminal of 80 columns: the exit code, the text, its rows.
    Every line fits in 80 columns and no cell is cut short."""
    code = main(list(argv))
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert "…" not in text, text
    return code, text, table_rows(text)


def row_of(rows: list[list[str]], check: str, node: str) -> list[str]:
    [row] = [r for r in rows if r[0] == check and r[1] == node]
    return row


# --- disk ---------------------------------------------------------------------------------------


def test_preflight_refuses_the_node_whose_workdir_has_too_little_room(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys):
    # h1's workdir on a 64 MiB filesystem: less than the job's archive and DISK_MARGIN_BYTES; h0's on 8 GiB
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h0", "h1"], workdir=SMALL_DISK)
    preflight = ["-c", str(cluster), "preflight", str(job(tmp_path, 80))]
    with disk_of(test_cluster, {"h0": "8g", "h1": "64m"}, SMALL_DISK):
        code, verdict = cli(capsys, *preflight, "--json")
        forced_code, forced = cli(capsys, *preflight, "--json", "--force", "disk")
        table_code, text, rows = preflight_table(capsys, *preflight)
    assert code == 1 and not verdict["go"] and failing(verdict) == [("disk", "h1")], verdict
    small = the_check(verdict, "disk", "h1")["message"]
    assert DISK_MARGIN_BYTES == 1 << 30
    assert re.fullmatch(rf"0\.1 GiB free at {SMALL_DISK}, 1\.0 GiB needed", small), small
    assert re.fullmatch(rf"8\.0 GiB free at {SMALL_DISK}, 1\.0 GiB needed",
                        the_check(verdict, "disk", "h0")["message"]), verdict
    assert the_check(verdict, "disk", "h0")["ok"]
    # the refusal can be overridden, and only it is
    assert forced_code == 0 and forced["go"], forced
    assert [(c["check"], c["node"]) for c in forced["checks"] if c["forced"]] == [("disk", "h1")], forced
    assert table_code == 1 and "NO-GO" in text
    assert row_of(rows, "disk", "h1")[2:] == ["no", small], text
    assert row_of(rows, "disk", "h0")[2] == "ok", text


UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def test_a_refusal_by_a_hair_says_less_free_than_needed(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys):
    # exactly DISK_MARGIN_BYTES free: short by the job's archive, well under a tenth of a GiB. The
    # workdir is not made yet: the filesystem that will hold it is the one measured.
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h0", "h1"], workdir=f"{SMALL_DISK}/new")
    with disk_of(test_cluster, {"h0": "8g", "h1": f"{DISK_MARGIN_BYTES // 1024}k"}, SMALL_DISK):
        code, verdict = cli(capsys, "-c", str(cluster), "preflight", str(job(tmp_path, 80)), "--json")
    assert code == 1 and failing(verdict) == [("disk", "h1")], verdict
    message = the_check(verdict, "disk", "h1")["message"]
    said = re.fullmatch(rf"(\d+(?:\.\d)?) (\w+) free at {SMALL_DISK}, (\d+(?:\.\d)?) (\w+) needed", message)
    assert said is not None, message
    free, needed = (float(said[i]) * UNITS[said[i + 1]] for i in (1, 3))
    assert free < needed and said[2] == said[4], message  # in one unit, fine enough to tell them apart


# --- health -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [
    ("alarm", "NPU 2: health Alarm"),
    ("link-down", "link 0 DOWN"),
    ("no-driver", "npu-smi: npu-smi not installed"),
], ids=["npu-alarm", "link-down", "no-driver"])
def test_preflight_refuses_the_node_whose_npus_report_a_fault(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys,
        fault: tuple[str, str]):
    state, reason = fault  # the stand-ins' recorded state, and what health says of it
    # one NPU a node and this project's launcher: nothing but the stand-ins' state can fail the checks
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h2", "h3"], backend="npu")
    preflight = ["-c", str(cluster), "preflight", str(job(tmp_path, 800)), "--style", "model"]
    test_cluster.set_hardware("h3", state)
    try:
        code, verdict = cli(capsys, *preflight, "--json")
        _, forced = cli(capsys, *preflight, "--json", "--force", "health")
        table_code, text, rows = preflight_table(capsys, *preflight)
    finally:
        test_cluster.set_hardware("h3", "healthy")
    assert code == 1 and not verdict["go"] and failing(verdict) == [("health", "h3")], verdict
    sick = the_check(verdict, "health", "h3")["message"]
    assert sick.startswith("health FAIL: ") and reason in sick, sick
    assert the_check(verdict, "health", "h2")["ok"], verdict
    assert forced["go"] and [(c["check"], c["node"]) for c in forced["checks"] if c["forced"]] == \
        [("health", "h3")], forced
    # the table says the same (but for the free space the health line also names, which moves)
    shown = row_of(rows, "health", "h3")
    assert table_code == 1 and shown[2] == "no", text
    assert shown[3].startswith("health FAIL: ") and reason in shown[3], text
    assert row_of(rows, "health", "h2")[2] == "ok", text


# --- reachability -------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", ["h1", "h0"], ids=["other-node-cut", "master-cut"])
def test_preflight_and_launch_refuse_when_a_node_is_cut_off(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys, cut: str):
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h0", "h1"], connect_timeout=3)
    template = str(job(tmp_path, 80))
    preflight = ["-c", str(cluster), "preflight", template]
    [up] = {"h0", "h1"} - {cut}
    jobs_before = listed(test_cluster, up, f"{STORAGE}/jobs")
    processes_before = console_processes(test_cluster, up)  # an earlier test's leftovers are not this one's
    test_cluster.cut(cut)
    try:
        code, verdict = cli(capsys, *preflight, "--json")
        table_code, text, rows = preflight_table(capsys, *preflight)
        launch_code, launched = cli(capsys, "-c", str(cluster), "launch", template, "--json")
    finally:
        test_cluster.heal(cut)
    assert code == 1 and not verdict["go"], verdict
    gone = the_check(verdict, "reachable", cut)
    assert not gone["ok"] and "no answer within 3s" in gone["message"], gone
    assert the_check(verdict, "reachable", up)["ok"], verdict
    assert table_code == 1 and row_of(rows, "reachable", cut)[2:] == ["no", gone["message"]], text
    if cut == "h0":  # the master: its port could not be asked about either, and that is said
        port = the_check(verdict, "port", "h0")
        assert not port["ok"] and port["message"] == "master port 8118 not checked: h0 is unreachable", port
    # nothing was recorded, copied or started anywhere
    assert launch_code == 1 and not launched["launched"] and launched["job_id"] is None, launched
    assert not the_check(launched["preflight"], "reachable", cut)["ok"], launched
    assert listed(test_cluster, up, f"{STORAGE}/jobs") == jobs_before
    started = set(console_processes(test_cluster, up)) - set(processes_before)
    assert not started, f"processes of a console job started on {up}: {sorted(started)}"
    _, jobs = cli(capsys, "-c", str(cluster), "jobs", "--all", "--json")
    assert jobs["jobs"] == [], jobs


# --- the master port ----------------------------------------------------------------------------


TAKEN = 29517
"""A master port asked for with --port, that a test's listener takes."""


@pytest.mark.parametrize("where", ["0.0.0.0", "master", "::"], ids=["any-ipv4", "master-address", "any-ipv6"])
def test_preflight_refuses_a_master_port_a_process_listens_on_then_passes_once_it_is_gone(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys, where: str):
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h0", "h1"])
    preflight = ["-c", str(cluster), "preflight", str(job(tmp_path, 80)), "--port", str(TAKEN)]
    master = test_cluster.host("h0").address
    with listening(test_cluster, "h0", master if where == "master" else where, TAKEN):
        code, verdict = cli(capsys, *preflight, "--json")
        table_code, text, rows = preflight_table(capsys, *preflight)
    after_code, after = cli(capsys, *preflight, "--json")
    assert code == 1 and not verdict["go"] and failing(verdict) == [("port", "h0")], verdict
    taken = the_check(verdict, "port", "h0")["message"]
    assert taken == f"master port {TAKEN} is in use on {master}: choose another with --port", taken
    assert table_code == 1 and row_of(rows, "port", "h0")[2:] == ["no", taken], text
    # the same check, the listener gone: the port is free again and nothing else was in the way
    assert after_code == 0 and after["go"], after
    assert the_check(after, "port", "h0")["message"] == f"master port {TAKEN} free on {master}", after


def test_a_taken_default_master_port_moves_the_plan_to_the_next_free_one(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path, capsys):
    cluster = cluster_file(test_cluster, tmp_path, known_hosts, ["h0", "h1"])
    master = test_cluster.host("h0").address
    with listening(test_cluster, "h0", master, 8118), listening(test_cluster, "h0", master, 8119):
        code, verdict = cli(capsys, "-c", str(cluster), "preflight", str(job(tmp_path, 80)), "--json")
    assert code == 0 and verdict["go"], verdict
    assert the_check(verdict, "port", "h0")["message"] == f"master port 8120 free on {master}", verdict
