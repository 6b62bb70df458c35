"""Strict host-key checking: known_hosts lookups, fingerprints, and explicit acceptance."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import paramiko


class UnknownHostKey(paramiko.SSHException):
    """The server offered a key that known_hosts does not list for it."""

    def __init__(self, known_as: str, key: paramiko.PKey) -> None:
        self.known_as = known_as
        self.key = key
        super().__init__(f"unknown host key for {known_as}: {key.get_name()} {fingerprint(key)}")


class RejectUnknownHosts(paramiko.MissingHostKeyPolicy):
    """Never auto-add: an unknown host stops the connection with its fingerprint."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise UnknownHostKey(hostname, key)


class KeyState(str, Enum):
    NEW = "new"
    KNOWN = "known"
    CHANGED = "changed"


@dataclass(frozen=True)
class HostKeyCheck:
    """What known_hosts says about the key a server offered."""

    known_as: str
    key_type: str
    fingerprint: str
    state: KeyState
    known_fingerprint: str = ""


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint, as `ssh-keygen -l` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(host: str, port: int) -> str:
    """How OpenSSH names a host in known_hosts: bare on port 22, `[host]:port` otherwise."""
    return host if port == 22 else f"[{host}]:{port}"


def load_known_hosts(path: Path) -> paramiko.HostKeys:
    keys = paramiko.HostKeys()
    if path.exists():
        keys.load(str(path))
    return keys


def check_key(path: Path, known_as: str, key: paramiko.PKey) -> HostKeyCheck:
    entries = load_known_hosts(path).lookup(known_as)
    offered = fingerprint(key)
    if entries is None or key.get_name() not in entries:
        if entries:
            # known under another key type: the server was reinstalled, or this is not the server
            other = next(iter(entries.values()))
            return HostKeyCheck(known_as, key.get_name(), offered, KeyState.CHANGED, fingerprint(other))
        return HostKeyCheck(known_as, key.get_name(), offered, KeyState.NEW)
    known = entries[key.get_name()]
    state = KeyState.KNOWN if known == key else KeyState.CHANGED
    return HostKeyCheck(known_as, key.get_name(), offered, state, fingerprint(known))


def add_known_host(path: Path, known_as: str, key: paramiko.PKey) -> None:
    """Append one line, as `ssh` does on "yes": the rest of the file is left byte for byte."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    line = f"{known_as} {key.get_name()} {key.get_base64()}\n"
    if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
        line = "\n" + line
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="ascii") as handle:
        handle.write(line)
