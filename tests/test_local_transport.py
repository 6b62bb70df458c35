"""LocalTransport behaves like a node over SSH: values for failures, killed on timeout, atomic copies."""

import os
import time
from pathlib import Path

from remote.inventory import NodeSpec
from remote.local import LocalTransport
from remote.transport import OUTPUT_LIMIT, TRUNCATED_NOTE, ErrorKind
from tests.conftest import end_process

NODE = NodeSpec(name="node0", host="localhost", cluster_ip="127.0.0.1", transport="local")


def test_run_reports_output_and_exit_code():
    result = LocalTransport(NODE).run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (result.stdout, result.stderr, result.exit_code, result.status) == ("out\n", "err\n", 3, "failed")


def test_missing_program_and_directory_answer_like_a_shell(tmp_path: Path):
    transport = LocalTransport(NODE)
    assert transport.run(["no-such-program-xyz"]).exit_code == 127
    result = transport.run(["true"], cwd=str(tmp_path / "missing"))
    assert result.exit_code == 2 and "No such file or directory" in result.stderr


def test_timeout_kills_the_command_and_its_children(tmp_path: Path):
    pidfile = tmp_path / "child.pid"
    script = f"sleep 60 & echo $! > {pidfile}; wait"
    result = LocalTransport(NODE).run(["sh", "-c", script], timeout=0.5)
    assert result.error is ErrorKind.TIMEOUT and "did not finish within 0.5s" in result.message
    child = int(pidfile.read_text())
    for _ in range(50):
        if not Path(f"/proc/{child}").exists():
            break
        time.sleep(0.1)
    assert not Path(f"/proc/{child}").exists(), "the timed-out command's child is still running"


def test_env_and_stdin_reach_the_command():
    result = LocalTransport(NODE).run(["sh", "-c", 'cat; echo "$GREETING"'], env={"GREETING": "hi"},
                                      stdin=b"from stdin\n")
    assert result.stdout == "from stdin\nhi\n"


def test_stream_yields_lines_as_they_come_and_close_stops_it():
    transport = LocalTransport(NODE)
    with transport.stream(["sh", "-c", "echo one; echo two >&2; printf three"]) as stream:
        lines = [(line.channel, line.text) for line in stream]
    assert sorted(lines) == [("stderr", "two"), ("stdout", "one"), ("stdout", "three")]
    assert stream.exit_code == 0
    endless = transport.stream(["sh", "-c", "while :; do echo tick; sleep 0.05; done"])
    first = next(iter(endless))
    endless.close()
    assert first.text == "tick"


def test_put_and_get_are_atomic_and_keep_the_mode(tmp_path: Path):
    source = tmp_path / "run.sh"
    source.write_text("#!/bin/sh\necho hi\n")
    source.chmod(0o750)
    transport = LocalTransport(NODE)
    copied = transport.put(source, str(tmp_path / "node" / "jobs" / "run.sh"))
    assert copied.ok and copied.size == source.stat().st_size
    destination = tmp_path / "node" / "jobs" / "run.sh"
    assert destination.read_text() == source.read_text()
    assert os.stat(destination).st_mode & 0o777 == 0o750
    assert not list(destination.parent.glob(".*.part"))
    failed = transport.get(str(tmp_path / "absent"), tmp_path / "back")
    assert failed.error is ErrorKind.IO and "absent" in failed.message and not (tmp_path / "back").exists()


def test_a_detached_child_holding_the_pipes_does_not_hang_a_timeout(tmp_path: Path):
    # without a bounded wait after the kill this would block for the child's 600 s
    pid_file = tmp_path / "child.pid"
    child = f"echo $$ > {pid_file}; exec sleep 600"
    result = LocalTransport(NODE).run(["sh", "-c", f"setsid sh -c '{child}' & sleep 60"], timeout=0.5)
    assert result.error is ErrorKind.TIMEOUT
    end_process(pid_file)


def test_closing_a_stream_kills_its_command():
    stream = LocalTransport(NODE).stream(["sh", "-c", "echo $$; exec sleep 300"])
    pid = int(next(iter(stream)).text)
    stream.close()
    assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_a_cwd_that_is_a_file_is_a_value_not_an_exception(tmp_path: Path):
    file = tmp_path / "plain"
    file.write_text("")
    result = LocalTransport(NODE).run(["true"], cwd=str(file))
    assert result.exit_code == 2 and "Not a directory" in result.stderr


def test_huge_output_is_cut_with_a_note():
    result = LocalTransport(NODE).run(["head", "-c", "9000000", "/dev/zero"])
    assert result.stdout.endswith(TRUNCATED_NOTE)
    assert len(result.stdout) == OUTPUT_LIMIT + len(TRUNCATED_NOTE)
