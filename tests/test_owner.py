"""console/jobs/owner.py: a console process named so that another console can tell it lives."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import replace

from console.jobs.owner import Owner, owner_alive, parse_owner, this_process


def test_this_process_lives_and_reads_back_from_the_store_text():
    me = this_process("stop")
    assert me.start and owner_alive(me) is True
    assert parse_owner(me.dump()) == me
    assert me.text() == f"the console stopping it (pid {me.pid} on {socket.gethostname()})"


def test_a_process_gone_a_pid_reused_or_none_kept_is_not_alive_and_another_host_is_unknown():
    ended = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    assert owner_alive(Owner("launch", socket.gethostname(), int(ended.stdout), "")) is False
    # the pid of a live process, but not the one that started then: a reused pid is not the console
    assert owner_alive(replace(this_process("launch"), start="1")) is False
    assert owner_alive(None) is False and parse_owner("not json") is None and parse_owner(None) is None
    assert owner_alive(replace(this_process("launch"), host="another-" + socket.gethostname())) is None
