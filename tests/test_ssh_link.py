"""When is an SSH connection judged lost: what decides whether a command that ended without an exit
status was killed by a signal or lost with its link (remote/ssh.py `link_alive`)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import paramiko
import pytest

from remote.ssh import link_alive


@pytest.fixture
def transport() -> Iterator[paramiko.Transport]:
    """A real paramiko transport, never started: the test sets its state as its thread would."""
    ours, theirs = socket.socketpair()
    made = paramiko.Transport(ours)
    try:
        yield made
    finally:
        made.close()
        theirs.close()


def test_a_standing_connection_is_alive(transport: paramiko.Transport):
    transport.active = True  # type: ignore[attr-defined]  # the thread's own flag, not in the stubs
    assert link_alive(transport)


def test_a_link_whose_thread_recorded_its_end_is_lost_before_active_is_cleared(transport: paramiko.Transport):
    # the transport thread's order as the link dies: saved_exception, the channels closed, then active
    transport.active = True  # type: ignore[attr-defined]  # the thread's own flag, not in the stubs
    transport.saved_exception = EOFError()
    assert not link_alive(transport)


def test_no_transport_or_an_inactive_one_is_lost(transport: paramiko.Transport):
    assert not link_alive(None)
    transport.active = False  # type: ignore[attr-defined]
    assert not link_alive(transport)
