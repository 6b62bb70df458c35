"""The pure half of following: frames decoded however they are split, lines cut with bounded memory."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remote.follow import ClockOffset, agent_argv
from remote.followagent import BEAT, DATA, HEADER, HEARTBEAT, MAGIC, START
from remote.followframes import (
    CUT_MARKER,
    MAX_PREAMBLE,
    FileCursor,
    FollowedLine,
    Frame,
    FrameDecoder,
    FrameError,
    LineCutter,
)


def frame(kind: int, file: int, offset: int, payload: bytes) -> bytes:
    return HEADER.pack(MAGIC, kind, file, offset, len(payload)) + payload


STREAM = (b"Welcome to a chatty login shell\n" + START + frame(DATA, 0, 0, b"one\ntwo\n")
          + frame(HEARTBEAT, 0, 0, BEAT.pack(1234.5)) + frame(DATA, 1, 7, b"x" * 1000))
FRAMES = [Frame(DATA, 0, 0, b"one\ntwo\n"), Frame(HEARTBEAT, 0, 0, BEAT.pack(1234.5)),
          Frame(DATA, 1, 7, b"x" * 1000)]


def decode_in_pieces(data: bytes, cuts: list[int]) -> list[Frame]:
    decoder, frames, at = FrameDecoder(), [], 0
    for cut in sorted(cuts):
        frames += decoder.feed(data[at:cut])
        at = cut
    return frames + decoder.feed(data[at:])


def test_frames_come_out_whole_after_the_shells_chatter():
    assert decode_in_pieces(STREAM, []) == FRAMES


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_frames_split_anywhere_decode_the_same(cuts: list[int]):
    assert decode_in_pieces(STREAM, cuts) == FRAMES


def test_every_single_byte_split_decodes_the_same():
    assert decode_in_pieces(STREAM, list(range(len(STREAM)))) == FRAMES


def test_garbage_after_the_start_is_an_error_not_a_guess():
    with pytest.raises(FrameError, match="garbled"):
        FrameDecoder().feed(START + b"this is not a frame header at all")


def test_a_stream_that_never_starts_is_given_up_on_bounded():
    decoder = FrameDecoder()
    with pytest.raises(FrameError, match="no follow agent output"):
        for _ in range(MAX_PREAMBLE // 1000 + 2):
            decoder.feed(b"m" * 1000)


def cut_all(data: bytes, cuts: list[int], max_line_bytes: int = 64) -> tuple[list[FollowedLine], LineCutter]:
    cutter = LineCutter("/f", offset=0, line=0, max_line_bytes=max_line_bytes)
    lines, at = [], 0
    for cut in [*sorted(cuts), len(data)]:
        lines += cutter.feed(at, data[at:cut])
        at = cut
    return lines, cutter


def test_lines_carry_numbers_and_byte_offsets_and_a_partial_line_waits():
    lines, cutter = cut_all(b"alpha\n\nbeta\ngam", [3, 8])
    assert [(x.number, x.offset, x.end, x.text) for x in lines] == [
        (1, 0, 6, "alpha"), (2, 6, 7, ""), (3, 7, 12, "beta")]
    assert (cutter.offset, cutter.line, cutter.expected) == (12, 3, 15)
    rest = cutter.rest()
    assert rest == FollowedLine("/f", 4, 12, 15, "gam", complete=False)


@given(st.binary(max_size=600), st.lists(st.integers(min_value=0, max_value=600), max_size=8))
def test_lines_rebuild_the_file_up_to_its_last_newline(data: bytes, cuts: list[int]):
    lines, cutter = cut_all(data, [c for c in cuts if c <= len(data)], max_line_bytes=1000)
    consumed = data[: data.rfind(b"\n") + 1]
    assert b"".join(data[x.offset : x.end] for x in lines) == consumed
    assert [x.text for x in lines] == [data[x.offset : x.end - 1].decode("utf-8", "replace") for x in lines]
    assert [x.number for x in lines] == list(range(1, len(lines) + 1))
    assert all(a.end == b.offset for a, b in itertools.pairwise(lines))
    assert cutter.offset == len(consumed)


def test_a_long_line_is_cut_its_rest_dropped_and_memory_stays_bounded():
    cutter = LineCutter("/f", offset=0, line=0, max_line_bytes=100)
    chunk, fed, lines = b"y" * 65536, 0, []
    while fed < 10 << 20:
        lines += cutter.feed(fed, chunk)
        fed += len(chunk)
        assert cutter.held_bytes <= 101
    lines += cutter.feed(fed, b"\nnext\n")
    assert [x.text for x in lines] == ["y" * 100 + CUT_MARKER, "next"]
    assert (lines[0].end, lines[1].offset, lines[1].number) == (fed + 1, fed + 1, 2)


def test_a_line_exactly_at_the_limit_is_not_cut():
    lines, _ = cut_all(b"z" * 64 + b"\n" + b"z" * 65 + b"\n", [10, 70])
    assert [x.text for x in lines] == ["z" * 64, "z" * 64 + CUT_MARKER]


def test_invalid_utf8_is_replaced_not_raised():
    lines, _ = cut_all(b"caf\xc3\xa9 \xff\xfe ok\n", [4])
    assert lines[0].text == "caf\u00e9 \ufffd\ufffd ok"


def test_a_chunk_out_of_place_is_refused():
    cutter = LineCutter("/f", offset=10, line=2, max_line_bytes=64)
    with pytest.raises(FrameError, match="expected 10"):
        cutter.feed(0, b"again\n")
    assert cutter.feed(10, b"x\n")[0].number == 3


def test_the_agent_gets_every_path_as_its_own_argument():
    hostile = "/logs/a b/$(touch x) `y`; z'\n.log"
    argv = agent_argv("python3", [FileCursor(hostile, 42, 100, 7), FileCursor("~/w.log")],
                      until_eof=True, heartbeat=1, poll=0.05)
    assert argv[0:2] == ["python3", "-c"] and hostile not in argv[2]
    assert argv[3:] == ["until-eof", "1", "0.05", hostile, "42", "100", "", "~/w.log", "", "0", ""]


def test_the_clock_offset_takes_the_least_delayed_heartbeat():
    clock = ClockOffset()
    assert clock.value is None
    for node_time, received in [(100.0, 95.5), (101.0, 96.0), (102.0, 97.9)]:
        clock.add(node_time, received)
    assert clock.value == 5.0
