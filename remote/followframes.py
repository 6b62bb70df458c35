"""The pure half of following: the agent's frames decoded, file bytes cut into lines. No I/O.

Kept apart from the threads and the transport (remote/follow.py) so every byte-level rule is tested
directly: frames split anywhere, a partial line held back until its newline, a 10 MB line cut to
`max_line_bytes` and its rest discarded, offsets that must continue exactly where they stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

from remote.followagent import HEADER, MAGIC, START

CUT_MARKER = " [line cut by ascend-console]"
# A frame is one pread of at most the agent's CHUNK; anything much larger is not the agent talking.
MAX_PAYLOAD = 4 << 20
# What a login shell may print before the agent starts; beyond this the session is not ours.
MAX_PREAMBLE = 64 << 10


@dataclass(frozen=True)
class FileCursor:
    """How far a file has been consumed: resume from here, with line numbers continuing."""

    path: str
    """As given: absolute, or `~/...` meaning the node's home."""
    inode: int | None = None
    """None: not seen yet."""
    offset: int = 0
    """Bytes consumed; always the end of a complete line."""
    line: int = 0
    """Complete lines consumed."""
    head: str = ""
    """`N:CRC` of the file's first bytes, as the agent last said (empty: not known): a file rewritten
    in place or on a reused inode is told by it."""


@dataclass(frozen=True, slots=True)
class FollowedLine:
    path: str
    number: int
    """1-based line number in the file."""
    offset: int
    """Byte offset of the line's start."""
    end: int
    """Byte offset after its newline."""
    text: str
    """UTF-8 decoded with errors="replace", newline stripped, cut to max_line_bytes + CUT_MARKER."""
    complete: bool = True
    """False only for the unterminated last line delivered at the end of an until_eof read."""


@dataclass(frozen=True, slots=True)
class Frame:
    kind: int
    file: int
    offset: int
    payload: bytes


class FrameError(ValueError):
    """The session's output is not the agent's framing (or lost its place): restart the session."""


class FrameDecoder:
    """The agent's stdout in, whole frames out, however the bytes were split on the way."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.started = False

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        if not self.started and not self._find_start():
            return []
        return self._frames()

    def _find_start(self) -> bool:
        at = self._buffer.find(START)
        if at < 0:
            if len(self._buffer) > MAX_PREAMBLE:
                raise FrameError(f"no follow agent output in the first {MAX_PREAMBLE} bytes")
            return False
        del self._buffer[: at + len(START)]
        self.started = True
        return True

    def _frames(self) -> list[Frame]:
        buffer, frames, at = self._buffer, [], 0
        while len(buffer) - at >= HEADER.size:
            magic, kind, file, offset, size = HEADER.unpack_from(buffer, at)
            if magic != MAGIC or size > MAX_PAYLOAD:
                raise FrameError(f"garbled follow frame (magic {bytes(magic)!r}, length {size})")
            end = at + HEADER.size + size
            if end > len(buffer):
                break
            frames.append(Frame(kind, file, offset, bytes(buffer[at + HEADER.size : end])))
            at = end
        del buffer[:at]
        return frames


class LineCutter:
    """One file's bytes in, in order from its cursor; complete lines out.

    Holds at most `max_line_bytes` of the line still being written; a longer line keeps its first
    `max_line_bytes` and drops the rest up to its newline, so memory stays bounded whatever the
    file holds. `offset` and `line` only ever move to the end of a complete line: a session that
    resumes from them re-reads the partial line and never doubles one.
    """

    def __init__(self, path: str, *, offset: int, line: int, max_line_bytes: int) -> None:
        self.path = path
        self.offset = offset
        self.line = line
        self.max_line_bytes = max_line_bytes
        self._held = b""
        self._held_size = 0  # bytes of the unfinished line seen, including those dropped

    def restart(self, offset: int = 0, line: int = 0) -> None:
        self.offset, self.line, self._held, self._held_size = offset, line, b"", 0

    @property
    def held_bytes(self) -> int:
        """Memory kept for the unfinished line: at most max_line_bytes + 1, whatever its length."""
        return len(self._held)

    @property
    def expected(self) -> int:
        """The file offset the next chunk must start at."""
        return self.offset + self._held_size

    def feed(self, offset: int, data: bytes) -> list[FollowedLine]:
        if offset != self.expected:
            raise FrameError(f"{self.path}: chunk at byte {offset}, expected {self.expected}")
        *whole, rest = data.split(b"\n")
        lines: list[FollowedLine] = []
        if whole:
            lines.append(self._line(self._held + whole[0], self._held_size + len(whole[0])))
            self._held, self._held_size = b"", 0
            self._lines(whole, lines)
        self._hold(rest)
        return lines

    def _lines(self, parts: list[bytes], lines: list[FollowedLine]) -> None:
        """parts[1:] as lines: the hot loop (a busy rank writes thousands a second), kept inline."""
        path, limit, start, number = self.path, self.max_line_bytes, self.offset, self.line
        for i in range(1, len(parts)):
            part = parts[i]
            size = len(part)
            number += 1
            text = part.decode("utf-8", "replace") if size <= limit else self._text(part, size)
            lines.append(FollowedLine(path, number, start, start + size + 1, text))
            start += size + 1
        self.offset, self.line = start, number

    def rest(self) -> FollowedLine | None:
        """The unterminated last line, when the end of the file is known to be reached."""
        if not self._held_size:
            return None
        end = self.offset + self._held_size
        text = self._text(self._held, self._held_size)
        return FollowedLine(self.path, self.line + 1, self.offset, end, text, complete=False)

    def _hold(self, part: bytes) -> None:
        room = self.max_line_bytes + 1 - len(self._held)  # one byte more than kept says "cut"
        if room > 0:
            self._held += part[:room]
        self._held_size += len(part)

    def _line(self, data: bytes, size: int) -> FollowedLine:
        start = self.offset
        self.offset += size + 1
        self.line += 1
        return FollowedLine(self.path, self.line, start, self.offset, self._text(data, size))

    def _text(self, data: bytes, size: int) -> str:
        if size <= self.max_line_bytes:
            return data.decode("utf-8", "replace")
        return data[: self.max_line_bytes].decode("utf-8", "replace") + CUT_MARKER
