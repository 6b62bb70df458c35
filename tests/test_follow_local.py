"""NodeFollower on the local transport: the same agent, run through LocalTransport.stream."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

from remote.follow import CUT_MARKER, FileCursor, FollowBatch, NodeFollower, agent_argv
from remote.followagent import DATA, HEARTBEAT, ZONE, ZONE_OFFSET
from remote.followframes import FrameDecoder
from remote.inventory import NodeSpec
from remote.local import LocalTransport
from tests.followcheck import Collector, assert_exactly, wait_until

NODE = NodeSpec(name="node0", host="localhost", cluster_ip="127.0.0.1", transport="local",
                python=sys.executable)


def follower(cursors: list[FileCursor], collector: Callable[[FollowBatch], None],
             **options: object) -> NodeFollower:
    made = NodeFollower(LocalTransport(NODE), cursors, collector, silence_timeout=5,
                        **options)  # type: ignore[arg-type]
    made.start()
    return made


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as file:
        file.write(data)


def test_files_are_followed_as_they_grow_and_a_missing_one_is_waited_for(tmp_path: Path):
    a, b = tmp_path / "worker_0.log", tmp_path / "worker_1.log"
    a.write_bytes(b"one\ntwo\nthr")
    seen = Collector()
    run = follower([FileCursor(str(a)), FileCursor(str(b))], seen)
    try:
        assert wait_until(lambda: len(seen.of(str(a))) == 2 and seen.kinds(str(b)) == ["waiting"])
        append(a, b"ee\nfour\n")
        b.write_bytes(b"rank 1 up\n")
        assert wait_until(lambda: len(seen.of(str(a))) == 4 and len(seen.of(str(b))) == 1)
    finally:
        run.stop()
        assert run.join(10)
    assert_exactly(seen.of(str(a)), a.read_bytes())
    assert_exactly(seen.of(str(b)), b.read_bytes())
    assert seen.kinds(str(b)) == ["waiting", "appeared"]
    head = f"{a.stat().st_size}:{zlib.crc32(a.read_bytes()):08x}"
    assert seen.cursors[str(a)] == FileCursor(str(a), a.stat().st_ino, a.stat().st_size, 4, head)
    assert seen.clock_offset is not None and abs(seen.clock_offset) < 5


def test_truncation_and_replacement_restart_the_file_with_a_notice(tmp_path: Path):
    log = tmp_path / "scheduler.log"
    log.write_bytes(b"old 1\nold 2\n")
    seen = Collector()
    run = follower([FileCursor(str(log))], seen)
    try:
        assert wait_until(lambda: len(seen.of(str(log))) == 2)
        os.truncate(log, 0)
        assert wait_until(lambda: seen.kinds(str(log)) == ["truncated"])
        append(log, b"new run\n")
        assert wait_until(lambda: len(seen.of(str(log))) == 3)
        (tmp_path / "next.log").write_bytes(b"third run\n")
        (tmp_path / "next.log").rename(log)
        assert wait_until(lambda: len(seen.of(str(log))) == 4)
    finally:
        run.stop()
        assert run.join(10)
    assert seen.kinds(str(log)) == ["truncated", "replaced"]
    assert [(x.number, x.offset, x.text) for x in seen.of(str(log))] == [
        (1, 0, "old 1"), (2, 6, "old 2"), (1, 0, "new run"), (1, 0, "third run")]
    assert seen.cursors[str(log)].inode == log.stat().st_ino


def test_until_eof_reads_to_the_end_and_stops(tmp_path: Path):
    done, partial, missing = tmp_path / "a.log", tmp_path / "b.log", tmp_path / "absent.log"
    done.write_bytes(b"".join(b"line %d\n" % i for i in range(1, 20001)))
    partial.write_bytes(b"whole\nhalf a li")
    seen = Collector()
    run = follower([FileCursor(str(p)) for p in (done, partial, missing)], seen, until_eof=True)
    assert run.join(30), "until_eof did not end"
    assert seen.finished
    assert_exactly(seen.of(str(done)), done.read_bytes())
    assert [(x.text, x.complete) for x in seen.of(str(partial))] == [("whole", True), ("half a li", False)]
    # the unfinished line is shown but not consumed: a resume reads it again, whole
    assert seen.cursors[str(partial)].offset == 6 and seen.cursors[str(partial)].line == 1
    assert seen.kinds(str(missing)) == ["waiting"]


def test_a_new_follower_resumes_from_the_cursors_without_loss_or_doubles(tmp_path: Path):
    log = tmp_path / "worker_7.log"
    log.write_bytes(b"step 1\nstep 2\nstep 3 half")
    first = Collector()
    run = follower([FileCursor(str(log))], first)
    assert wait_until(lambda: len(first.of(str(log))) == 2)
    run.stop()
    assert run.join(10)
    append(log, b"way\nstep 4\n")  # written while no console followed it
    second = Collector()
    run = follower(list(first.cursors.values()), second)
    try:
        assert wait_until(lambda: len(second.of(str(log))) == 2)
    finally:
        run.stop()
        assert run.join(10)
    assert_exactly(first.of(str(log)) + second.of(str(log)), log.read_bytes())


def test_files_added_while_running_are_followed_too(tmp_path: Path):
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(b"a1\n")
    b.write_bytes(b"b1\n")
    seen = Collector()
    run = follower([FileCursor(str(a))], seen)
    try:
        assert wait_until(lambda: len(seen.of(str(a))) == 1)
        run.add_files([FileCursor(str(b)), FileCursor(str(a))])  # a again: already followed
        append(a, b"a2\n")
        assert wait_until(lambda: len(seen.of(str(b))) == 1 and len(seen.of(str(a))) == 2)
    finally:
        run.stop()
        assert run.join(10)
    assert_exactly(seen.of(str(a)), a.read_bytes())


def test_a_huge_line_and_binary_junk_keep_memory_bounded_and_following_works_after(tmp_path: Path):
    log = tmp_path / "junk.log"
    log.write_bytes(b"before\n")
    with log.open("ab") as file:
        file.write(b"x" * (10 << 20) + b"\n")
        for _ in range(50):
            file.write(os.urandom(1 << 20))
        file.write(b"\nafter the junk\n")
    size = log.stat().st_size
    seen = Collector(keep_lines=False)
    tracemalloc.start()
    try:
        run = follower([FileCursor(str(log))], seen, max_line_bytes=4096)
        assert wait_until(lambda: seen.consumed(str(log)) == size, timeout=120)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        run.stop()
        assert run.join(10)
    assert peak < 24 << 20, f"following 60 MB peaked at {peak >> 20} MiB"
    assert seen.lines[-1].text == "after the junk"
    assert max(len(line.text) for line in seen.lines) <= 4096 + len(CUT_MARKER)


def test_a_node_without_the_python_says_so_and_keeps_trying(tmp_path: Path):
    broken = NodeSpec(name="node9", host="localhost", cluster_ip="127.0.0.1", transport="local",
                      python=str(tmp_path / "no-python"))
    seen = Collector()
    run = NodeFollower(LocalTransport(broken), [FileCursor(str(tmp_path / "x.log"))], seen,
                       silence_timeout=5)
    run.start()
    try:
        assert wait_until(lambda: seen.kinds(None) == ["disconnected"])
    finally:
        run.stop()
        assert run.join(10)
    [notice] = seen.notices
    assert "node9" in notice.message and "no-python" in notice.message, notice.message


def test_the_agent_says_its_zone_and_clock_before_any_data(tmp_path: Path):
    """The console dates the first lines by them: a heartbeat after a MiB of data came too late."""
    log = tmp_path / "worker_0.log"
    log.write_bytes(b"x" * 100 + b"\n" * (3 << 20))
    argv = agent_argv(sys.executable, [FileCursor(str(log))], until_eof=True, heartbeat=1000, poll=0.01)
    out = subprocess.run(argv, capture_output=True, check=True, timeout=60).stdout
    frames = FrameDecoder().feed(out)
    kinds = [f.kind for f in frames]
    assert kinds[:2] == [ZONE, HEARTBEAT] and kinds.index(DATA) > 1
    assert ZONE_OFFSET.unpack(frames[0].payload)[0] == time.localtime().tm_gmtoff


def test_the_first_batch_carries_the_nodes_zone_and_clock(tmp_path: Path):
    log = tmp_path / "worker_0.log"
    log.write_bytes(b"line\n" * 300_000)
    seen: list[FollowBatch] = []
    run = follower([FileCursor(str(log))], seen.append, batch_bytes=64 << 10)
    try:
        assert wait_until(lambda: len(seen) > 0)
    finally:
        run.stop()
        assert run.join(10)
    assert seen[0].clock_offset is not None and abs(seen[0].clock_offset) < 5
    assert seen[0].utc_offset == time.localtime().tm_gmtoff


def test_a_consumer_that_raises_ends_the_follower_with_what_it_raised(tmp_path: Path):
    log = tmp_path / "worker_0.log"
    log.write_bytes(b"one\n")

    def refuse(batch: FollowBatch) -> None:
        raise OSError("disk full")

    run = follower([FileCursor(str(log))], refuse)
    try:
        assert run.join(30)
    finally:
        run.stop()
    assert run.failure == "OSError: disk full"


def test_quiet_files_still_get_a_batch_now_and_then(tmp_path: Path):
    """How a consumer learns that a file has been quiet: a multi-line event at its end is then whole."""
    log = tmp_path / "worker_0.log"
    log.write_bytes(b"one\n")
    seen: list[FollowBatch] = []
    run = follower([FileCursor(str(log))], seen.append)
    try:
        assert wait_until(lambda: sum(not batch.lines and not batch.notices for batch in seen) >= 2)
    finally:
        run.stop()
        assert run.join(10)


def rewrite_in_place(path: Path, data: bytes) -> None:
    """Write `data` over the file from its start, same inode, never shorter than it was: between two
    looks this is what a truncation followed by a longer write leaves."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


def test_a_file_rewritten_past_the_old_offset_is_noticed_by_its_first_bytes(tmp_path: Path):
    log = tmp_path / "worker_0.log"
    log.write_bytes(b"old 1\nold 2\n")
    seen = Collector()
    run = follower([FileCursor(str(log))], seen)
    try:
        assert wait_until(lambda: len(seen.of(str(log))) == 2 and seen.cursors[str(log)].head != "")
        rewrite_in_place(log, b"new 1\nnew 2\nnew 3\n")
        assert wait_until(lambda: len(seen.of(str(log))) == 5)
    finally:
        run.stop()
        assert run.join(10)
    assert seen.kinds(str(log)) == ["rewritten"]
    assert [(x.number, x.text) for x in seen.of(str(log))] == [
        (1, "old 1"), (2, "old 2"), (1, "new 1"), (2, "new 2"), (3, "new 3")]


def test_a_resumed_cursor_whose_file_was_rewritten_meanwhile_starts_over(tmp_path: Path):
    """A new session from a kept cursor (a reconnect): same inode, more bytes, other first bytes."""
    log = tmp_path / "worker_0.log"
    log.write_bytes(b"old 1\nold 2\n")
    first = Collector()
    run = follower([FileCursor(str(log))], first, until_eof=True)
    assert run.join(30) and first.finished
    rewrite_in_place(log, b"new 1\nnew 2\nnew 3\n")
    again = Collector()
    run = follower([first.cursors[str(log)]], again, until_eof=True)
    assert run.join(30) and again.finished
    assert again.kinds(str(log)) == ["rewritten"]
    assert [x.text for x in again.of(str(log))] == ["new 1", "new 2", "new 3"]
