"""OpenSSH rsync as the bulk mover: its command line, built from quoted parts, and its output read.

The command runs on whichever host sends (the console, or a node relaying to the next one); its
progress and stats are read line by line as they come, the exit status from a marker line.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from remote.manifest import PARTIAL_DIR

EXIT_MARK = "@@ascend-rsync-exit="
# rsync writes progress with carriage returns; tr turns them into lines, line-buffered so each
# arrives when written. The status of rsync itself is printed last, since a pipe reports tr's.
WRAPPER = (
    '{ "$@" 2>&1; echo "' + EXIT_MARK + '$?"; } | stdbuf -oL tr "\\r" "\\n"'
)
RSYNC_EXIT = {
    1: "syntax or usage error", 2: "protocol incompatibility", 3: "errors selecting files",
    5: "error starting the client-server protocol", 10: "error in socket I/O",
    11: "error in file I/O", 12: "error in the rsync protocol data stream",
    20: "interrupted", 23: "some files could not be transferred", 30: "timeout in data send/receive",
    35: "timeout waiting for the daemon", 127: "rsync not found on the receiving side",
    255: "ssh failed",
}
# The receiving rsync, started through this, leaves its pid where the next transfer can find it: a
# receiver cut off from its sender may wait for ever (sshd never hears the link died), holding the
# file it was writing; the next transfer stops it first so that rsync keeps that file to resume from.
RECEIVER = 'echo "$$" >> "$0"; exec rsync "$@"'
_PROGRESS = re.compile(r"^\s*([\d,]+)\s+\d+%\s")
_STAT = re.compile(r"^(Total bytes sent|Literal data|Matched data|Number of regular files transferred):"
                   r"\s*([\d,]+)")


@dataclass(frozen=True)
class SSHEndpoint:
    """How the sending host's OpenSSH client reaches the receiver."""

    host: str
    port: int | None = None
    user: str | None = None
    identity_files: tuple[str, ...] = ()
    known_hosts: str | None = None
    """None: the sender's own known_hosts (a node relaying to its neighbour)."""


# AES-GCM first: with AES instructions (x86 AES-NI, Kunpeng's ARMv8 crypto) it costs a fraction of
# chacha20's CPU, and a relay node encrypts and decrypts a whole stream each. A preference, not a
# demand: a server without it picks the next.
CIPHERS = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr"


def ssh_argv(endpoint: SSHEndpoint, *, connect_timeout: float, keepalive: float) -> list[str]:
    """ssh with strict host keys, no prompts, and a dead link noticed within ~3 keepalives."""
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-c", CIPHERS,
            "-o", f"ConnectTimeout={max(1, int(connect_timeout))}",
            "-o", f"ServerAliveInterval={max(1, int(keepalive))}", "-o", "ServerAliveCountMax=3"]
    if endpoint.known_hosts is not None:
        argv += ["-o", f"UserKnownHostsFile={endpoint.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
    for identity in endpoint.identity_files:
        argv += ["-i", identity]
    if endpoint.identity_files:
        argv += ["-o", "IdentitiesOnly=yes"]
    if endpoint.port is not None:
        argv += ["-p", str(endpoint.port)]
    if endpoint.user is not None:
        argv += ["-l", endpoint.user]
    return argv


def remote_spec(host: str, path: str) -> str:
    """rsync's `host:path`; an IPv6 address goes in brackets, a `~/` path is relative to the home."""
    where = f"[{host}]" if ":" in host else host
    return f"{where}:{home_relative(path)}"


def home_relative(path: str) -> str:
    """The form rsync's remote side needs: `~/x` → `x` (it starts in the home directory)."""
    if path in ("~", "~/"):
        return "."
    return path[2:] if path.startswith("~/") else path


def source_args(root: str, paths: Sequence[str]) -> list[str]:
    """`ROOT/./rel` for rsync -R: the part after `/./` is recreated under the destination.
    A relative root gets `./` so no argument can read as an option."""
    base = home_relative(root).rstrip("/") or "/"
    if not base.startswith("/") and not base.startswith("./"):
        base = f"./{base}"
    return [f"{base}/./{p}" for p in paths]


def rsync_argv(sources: Sequence[str], destination: str, ssh: Sequence[str], *, io_timeout: float,
               bwlimit_kib: int | None = None, receiver_pids: str | None = None) -> list[str]:
    """Whole files into the destination tree; an interrupted file is kept aside and resumed from.
    `-s` (--protect-args, --secluded-args since 3.2.4): names go over the protocol, not a shell."""
    argv = ["rsync", "-s", "--relative", "--times", "--perms", "--copy-links",
            "--partial", f"--partial-dir={PARTIAL_DIR}", f"--timeout={max(1, int(io_timeout))}",
            "--info=progress2", "--stats", "--outbuf=N", "--rsh", shlex.join(ssh)]
    if bwlimit_kib is not None:
        argv.append(f"--bwlimit={bwlimit_kib}")
    if receiver_pids is not None:
        # the remote shell runs this line with rsync's server arguments appended
        argv.append("--rsync-path=" + shlex.join(["sh", "-c", RECEIVER, home_relative(receiver_pids)]))
    return [*argv, *sources, destination]


def wrapped(argv: Sequence[str]) -> list[str]:
    return ["sh", "-c", WRAPPER, "sh", *argv]


@dataclass
class RsyncReport:
    """What one rsync run said: progress so far, its stats and exit status, and its complaints."""

    progress: int = 0
    bytes_sent: int = 0
    literal: int = 0
    files_transferred: int = 0
    exit_code: int | None = None
    errors: list[str] | None = None

    def feed(self, line: str) -> bool:
        """Take one output line; True if it moved the progress."""
        if line.startswith(EXIT_MARK):
            code = line[len(EXIT_MARK):].strip()
            self.exit_code = int(code) if code.isdigit() else None
            return False
        if match := _PROGRESS.match(line):
            self.progress = _number(match.group(1))
            # the receiver's complaint lands on the progress line, after its last figures: "32,768 3%
            # 0.00kB/s 0:00:00  rsync: [receiver] write failed on "/d/f": No space left on device (28)"
            said = line.find("rsync:", match.end())
            if said >= 0:
                self._complain(line[said:])
            return True
        if match := _STAT.match(line):
            self._stat(match.group(1), _number(match.group(2)))
        elif _is_complaint(line):
            self._complain(line)
        return False

    def _complain(self, line: str) -> None:
        self.errors = [*(self.errors or []), line.strip()][-5:]

    def _stat(self, name: str, value: int) -> None:
        if name == "Total bytes sent":
            self.bytes_sent = value
        elif name == "Literal data":
            self.literal = value
        elif name.startswith("Number of regular"):
            self.files_transferred = value

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def describe(self) -> str:
        meaning = RSYNC_EXIT.get(self.exit_code or 0, "failed")
        said = "; ".join(self.errors or [])
        status = "no exit status" if self.exit_code is None else f"exit {self.exit_code}"
        return f"rsync {status} ({meaning})" + (f": {said}" if said else "")


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def _is_complaint(line: str) -> bool:
    text = line.strip()
    return text.startswith(("rsync:", "rsync error", "ssh:", "Host key", "Permission denied",
                            "sh:", "@@@", "No ECDSA", "No ED25519", "Connection", "stdbuf:"))
