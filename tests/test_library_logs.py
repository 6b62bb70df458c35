"""Library log records never reach the terminal raw (issue 15): a host that accepts and closes at once made
paramiko's transport thread log a 21-line traceback, which Python's last-resort handler printed on stderr
before `check`, `run` and `trust` printed the node's reason. The reason is in the output; the records are
in the state directory's console.log, and on stderr only with --debug."""

import logging
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from console.debuglog import configure_logging
from tests.rank_jobs import REPO

REASON = "the host closed the connection before its SSH banner"


@pytest.fixture
def closing_port() -> Iterator[int]:
    """A real listener on 127.0.0.1 that accepts every connection and closes it before any banner."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            connection.close()

    thread = threading.Thread(target=serve, name="closing-listener", daemon=True)
    thread.start()
    yield server.getsockname()[1]
    done.set()
    thread.join(timeout=5)
    server.close()


@pytest.fixture
def cluster(tmp_path: Path, closing_port: int) -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({
        "name": "closer",
        "defaults": {"user": "root", "connect_timeout": 5, "known_hosts": str(tmp_path / "known_hosts")},
        "nodes": [{"name": "n0", "host": "127.0.0.1", "port": closing_port}],
    }))
    return path


def console(tmp_path: Path, cluster: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "250",
           "ASCEND_CONSOLE_STATE": str(tmp_path / "state")}
    return subprocess.run([sys.executable, "-m", "console.cli", "-c", str(cluster), *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [["check"], ["run", "--", "true"], ["trust", "--yes"]], ids=lambda a: a[0])
def test_a_host_that_closes_at_once_is_a_reason_in_the_output_and_nothing_raw(
        tmp_path: Path, cluster: Path, args: list[str]):
    done = console(tmp_path, cluster, *args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "paramiko" not in done.stderr, done.stderr
    said = " ".join((done.stdout + done.stderr).split())
    assert "n0" in said and REASON in said, said
    kept = (tmp_path / "state" / "console.log").read_text()
    assert "paramiko.transport ERROR" in kept and "Traceback" in kept


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_puts_the_library_records_on_stderr_too(tmp_path: Path, cluster: Path, where: str):
    args = ["--debug", "check"] if where == "before" else ["check", "--debug"]
    done = console(tmp_path, cluster, *args)
    assert done.returncode == 2
    assert "paramiko.transport DEBUG: starting thread" in done.stderr
    assert "paramiko.transport ERROR: Exception (client): Error reading SSH protocol banner" in done.stderr
    assert REASON in " ".join(done.stdout.split())
    assert "paramiko.transport DEBUG" in (tmp_path / "state" / "console.log").read_text()


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:], root.level = handlers, level
    logging.captureWarnings(False)


def test_the_dashboard_keeps_even_debug_records_off_the_screen(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
        root_logging: None):
    monkeypatch.setenv("ASCEND_CONSOLE_STATE", str(tmp_path / "state"))
    configure_logging(debug=True, stderr=True)  # the command line, then the dashboard starts
    path = configure_logging(debug=True, stderr=False)
    try:
        raise EOFError
    except EOFError:
        logging.getLogger("paramiko.transport").exception("Exception (client): banner")
    logging.getLogger("paramiko.transport").debug("starting thread")
    assert capfd.readouterr().err == ""
    assert path == tmp_path / "state" / "console.log"
    kept = path.read_text()
    assert "Exception (client): banner" in kept and "EOFError" in kept and "starting thread" in kept


def test_a_state_directory_that_cannot_be_made_drops_the_records_quietly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
        root_logging: None):
    (tmp_path / "a file").write_text("")
    monkeypatch.setenv("ASCEND_CONSOLE_STATE", str(tmp_path / "a file" / "state"))
    assert configure_logging() is None
    logging.getLogger("paramiko.transport").error("Exception (client): banner")
    assert capfd.readouterr().err == ""
