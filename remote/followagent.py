"""The program a node runs to follow files for the console: `python3 -c SOURCE MODE ...`.

Standard library only and Python 3.7-compatible: it runs under whatever python3 the node has.
Everything it is told arrives as arguments (never pasted into this text), and everything it says
goes to stdout as frames: a 17-byte header (magic, kind, file index, byte offset, payload length)
then the payload. Before the first frame it writes START, so the console can skip whatever a login
shell printed first.

    MODE HEARTBEAT POLL [PATH INODE OFFSET HEAD]...

MODE is `follow` (until stdout closes: the console has gone) or `until-eof` (stop once every file
is read to the size it had when opened). INODE is empty when the console has not seen the file.
HEAD is `N:CRC`, the CRC-32 of the file's first N bytes (N up to HEAD_BYTES), or empty: a file whose
first bytes no longer match was rewritten (truncated and written past the old offset between two
looks, or a new file on a reused inode) and is read again from its start (REWRITTEN).
Files are read round-robin, one CHUNK per file per round, so one busy file cannot starve the rest;
when a round reads nothing the agent sleeps POLL seconds. A heartbeat carries the node's clock; the
first frames after START, before any data, are the node's UTC offset (ZONE) and a heartbeat, so the
console can put the very first lines on its own clock without asking the node anything else.
"""

from __future__ import annotations

import os
import struct
import sys
import time
import zlib
from typing import BinaryIO

START = b"\x00ascend-follow 1\n"
MAGIC = b"\xacF"
HEADER = struct.Struct(">2sBHQI")
BEAT = struct.Struct(">d")
ZONE_OFFSET = struct.Struct(">i")
CHUNK = 256 * 1024
HEAD_BYTES = 256

DATA = ord("D")  # offset: where the payload starts in the file
HEARTBEAT = ord("H")  # payload: the node's time.time() as BEAT
WAITING = ord("W")  # the file does not exist (yet); payload: why
OPENED = ord("A")  # the file is open; offset: where reading starts; payload: its inode in decimal
REPLACED = ord("R")  # the path now names another file (new inode): reading restarts at 0
TRUNCATED = ord("T")  # the file is shorter than what was read; offset: its size; reading restarts at 0
UNREADABLE = ord("U")  # payload: why
DONE = ord("E")  # until-eof: every file read to its end
HEAD = ord("K")  # payload: the file's HEAD (`N:CRC`) now that more of it is known
REWRITTEN = ord("O")  # the file's first bytes changed (same inode): reading restarts at 0
ZONE = ord("Z")  # payload: seconds local time is ahead of UTC (as `date +%z`) as ZONE_OFFSET


class Followed:
    """One file: what the console has been sent of it, and the open descriptor."""

    def __init__(self, index: int, path: str, inode: int | None, offset: int, head: str = "") -> None:
        self.index = index
        self.path = os.path.expanduser(path)
        self.inode = inode
        self.offset = offset
        self.head = head
        self.fd: int | None = None
        self.goal: int | None = None
        self.condition = ""

    def done(self) -> bool:
        return self.fd is None or (self.goal is not None and self.offset >= self.goal)


class Agent:
    def __init__(self, out: BinaryIO, files: list[Followed], *, until_eof: bool) -> None:
        self.out = out
        self.files = files
        self.until_eof = until_eof

    def send(self, kind: int, file: Followed | None, offset: int = 0, payload: bytes = b"") -> None:
        index = file.index if file is not None else 0
        self.out.write(HEADER.pack(MAGIC, kind, index, offset, len(payload)))
        self.out.write(payload)

    def report(self, file: Followed, kind: int, why: str) -> None:
        """Say a file is missing or unreadable, once per distinct reason."""
        if file.condition != why:
            file.condition = why
            self.send(kind, file, file.offset, why.encode("utf-8", "replace"))

    def step(self, file: Followed) -> int:
        """Bytes sent for this file in this round."""
        inode, kind, why = current_inode(file.path)
        if file.fd is not None and inode != os.fstat(file.fd).st_ino:
            sent = self.read(file)  # what was written to the old file before it went
            if sent:
                return sent
            self.close(file)
            if inode is not None:
                self.send(REPLACED, file)
                file.inode, file.offset, file.head = None, 0, ""
        if inode is None:
            self.report(file, kind, why)
            return 0
        if file.fd is None and not self.open(file):
            return 0
        return self.read(file)

    def open(self, file: Followed) -> bool:
        try:
            fd = os.open(file.path, os.O_RDONLY)
            status = os.fstat(fd)
        except OSError as error:
            self.report(file, WAITING if isinstance(error, FileNotFoundError) else UNREADABLE,
                        error.strerror or str(error))
            return False
        if file.inode is not None and file.inode != status.st_ino:
            self.send(REPLACED, file)
            file.offset, file.head = 0, ""
        file.fd, file.inode, file.condition = fd, status.st_ino, ""
        file.goal = status.st_size if self.until_eof else None
        self.send(OPENED, file, file.offset, str(status.st_ino).encode())
        return True

    def read(self, file: Followed) -> int:
        assert file.fd is not None
        try:
            size = os.fstat(file.fd).st_size
            if size < file.offset:
                self.send(TRUNCATED, file, size)
                file.offset, file.head = 0, ""
            elif size > file.offset and file.head and head_of(file.fd, file.head) != file.head:
                self.send(REWRITTEN, file)
                file.offset, file.head = 0, ""
            data = os.pread(file.fd, CHUNK, file.offset)
        except OSError as error:  # a directory, an I/O error: say so and try again later
            self.close(file)
            self.report(file, UNREADABLE, error.strerror or str(error))
            return 0
        if data:
            self.send(DATA, file, file.offset, data)
            file.offset += len(data)
            self.learn_head(file)
        return len(data)

    def learn_head(self, file: Followed) -> None:
        """Know up to HEAD_BYTES of the file's start (it may still be growing): say so when more is known."""
        known = int(file.head.split(":", 1)[0]) if file.head else 0
        if known < HEAD_BYTES and file.offset > known and file.fd is not None:
            file.head = head_text(os.pread(file.fd, min(HEAD_BYTES, file.offset), 0))
            self.send(HEAD, file, 0, file.head.encode())

    def close(self, file: Followed) -> None:
        if file.fd is not None:
            os.close(file.fd)
            file.fd = None

    def run(self, heartbeat: float, poll: float) -> None:
        self.out.write(START)
        self.send(ZONE, None, 0, ZONE_OFFSET.pack(utc_offset()))
        beat = 0.0
        while True:
            if time.time() - beat >= heartbeat:  # before the round's data: the first one precedes all
                beat = time.time()
                self.send(HEARTBEAT, None, 0, BEAT.pack(beat))
            moved = sum(self.step(file) for file in self.files)
            if self.until_eof and all(file.done() for file in self.files):
                self.send(DONE, None)
                self.out.flush()
                return
            self.out.flush()
            if not moved:
                time.sleep(poll)


def utc_offset() -> int:
    """Seconds this node's local time is ahead of UTC now (its logs print local time without a zone)."""
    local = time.localtime()
    return int(local.tm_gmtoff) if local.tm_gmtoff is not None else -time.timezone


def head_of(fd: int, like: str) -> str:
    """The file's HEAD over as many bytes as `like` covers."""
    return head_text(os.pread(fd, int(like.split(":", 1)[0]), 0))


def head_text(first: bytes) -> str:
    return f"{len(first)}:{zlib.crc32(first):08x}"


def current_inode(path: str) -> tuple[int | None, int, str]:
    """The inode the path names now, or None with WAITING or UNREADABLE and why."""
    try:
        return os.stat(path).st_ino, 0, ""
    except FileNotFoundError as error:
        return None, WAITING, error.strerror or str(error)
    except OSError as error:
        return None, UNREADABLE, error.strerror or str(error)


def parse(argv: list[str]) -> tuple[bool, float, float, list[Followed]]:
    mode, heartbeat, poll, rest = argv[0], float(argv[1]), float(argv[2]), argv[3:]
    if mode not in ("follow", "until-eof") or len(rest) % 4:
        raise SystemExit("usage: MODE HEARTBEAT POLL [PATH INODE OFFSET HEAD]...")
    fields = [rest[i : i + 4] for i in range(0, len(rest), 4)]
    files = [Followed(i, path, int(inode) if inode else None, int(offset), head)
             for i, (path, inode, offset, head) in enumerate(fields)]
    return mode == "until-eof", heartbeat, poll, files


def main(argv: list[str]) -> int:
    until_eof, heartbeat, poll, files = parse(argv)
    try:
        Agent(sys.stdout.buffer, files, until_eof=until_eof).run(heartbeat, poll)
    except BrokenPipeError:  # the console has gone: that is how following ends
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
