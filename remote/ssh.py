"""SSHTransport: paramiko, one pooled connection per node, strict host keys, keys/agent only."""

from __future__ import annotations

import getpass
import select
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import paramiko

from remote.hostkeys import (
    HostKeyCheck,
    RejectUnknownHosts,
    UnknownHostKey,
    check_key,
    fingerprint,
    known_hosts_name,
)
from remote.inventory import NodeSpec
from remote.transport import (
    KILL_GRACE,
    OUTPUT_LIMIT,
    CommandStream,
    ErrorKind,
    RunResult,
    StreamLine,
    TransferResult,
    Transport,
    command_text,
    decode_output,
    remote_command_line,
    timed_out,
)

# Polling step while waiting on a channel: bounds how late a deadline or a close is noticed.
_POLL = 0.2
# Runs the streamed command beside a watcher that kills it when the console hangs up
# (stdin closes), so a closed log pane never leaves a `tail -F` behind on the node.
# (A background list gets /dev/null as stdin, hence the copy of the channel's stdin on fd 3.)
_HANGUP_WATCH = (
    'exec 3<&0; "$@" </dev/null & child=$!; '
    '(while read -r _ <&3; do :; done; kill -TERM "$child" 2>/dev/null) & watcher=$!; '
    'wait "$child"; code=$?; kill "$watcher" 2>/dev/null; exit "$code"'
)
SftpAction = Callable[[paramiko.SFTPClient], int]


@dataclass(frozen=True)
class SSHTarget:
    """Where and as whom to connect, after the cluster file and ~/.ssh/config are combined."""

    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...]
    known_hosts: Path
    proxy_jump: str | None
    proxy_command: str | None

    @property
    def known_as(self) -> str:
        return known_hosts_name(self.hostname, self.port)

    @property
    def address(self) -> str:
        return f"{self.user}@{self.hostname}:{self.port}"


class ConnectFailure(Exception):
    def __init__(self, kind: ErrorKind, message: str) -> None:
        self.kind = kind
        self.message = message
        super().__init__(message)


def load_ssh_config(path: str | None) -> paramiko.SSHConfig | None:
    if not path:
        return None
    expanded = Path(path).expanduser()
    return paramiko.SSHConfig.from_path(str(expanded)) if expanded.is_file() else None


def resolve_target(node: NodeSpec, config: paramiko.SSHConfig | None) -> SSHTarget:
    """The cluster file wins where it says something; ~/.ssh/config fills the rest, as `ssh -o` would."""
    found = config.lookup(node.host) if config is not None else {"hostname": node.host}
    identities = [node.identity_file] if node.identity_file else list(found.get("identityfile", []))
    return SSHTarget(
        hostname=str(found.get("hostname", node.host)),
        port=node.port or int(found.get("port", 22)),
        user=node.user or str(found.get("user") or getpass.getuser()),
        identity_files=tuple(str(Path(p).expanduser()) for p in identities),
        known_hosts=Path(node.known_hosts).expanduser(),
        proxy_jump=node.proxy_jump or _none_if_none(found.get("proxyjump")),
        proxy_command=None if node.proxy_jump else _none_if_none(found.get("proxycommand")),
    )


def _none_if_none(value: object) -> str | None:
    return None if value is None or str(value).lower() == "none" else str(value)


def jump_node(spec: str, behind: NodeSpec) -> NodeSpec:
    """A node for one ProxyJump hop `[user@]host[:port]`; earlier hops of a chain become its own jump."""
    *earlier, last = [hop.strip() for hop in spec.split(",")]
    user, _, hostport = last.rpartition("@")
    host, _, port = hostport.partition(":")
    return replace(
        behind,
        name=f"jump:{last}",
        host=host,
        cluster_ip=host,
        user=user or None,
        port=int(port) if port else None,
        proxy_jump=",".join(earlier) or None,
    )


class SSHTransport(Transport):
    """One node over SSH. The connection is opened on first use and reused until it dies."""

    def __init__(
        self,
        node: NodeSpec,
        *,
        ssh_config: paramiko.SSHConfig | None = None,
        jump: SSHTransport | None = None,
        trusted_via: str | None = None,
    ) -> None:
        """`trusted_via`: for a ProxyJump hop, a cluster node whose `trust` also trusts the hop."""
        self.node = node
        self.target = resolve_target(node, ssh_config)
        self.jump = jump
        self.trust_name = trusted_via or node.name
        self.connections_opened = 0
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()

    # --- connection -----------------------------------------------------------------------------

    def _connected(self) -> paramiko.SSHClient:
        with self._lock:
            client = self._client
            transport = client.get_transport() if client else None
            if client is None or transport is None or not transport.is_active():
                self._drop()
                client = self._client = self._connect()
            return client

    def _connect(self) -> paramiko.SSHClient:
        target, timeout = self.target, self.node.connect_timeout
        client = paramiko.SSHClient()
        if target.known_hosts.exists():
            client.load_host_keys(str(target.known_hosts))
        client.set_missing_host_key_policy(RejectUnknownHosts())
        try:
            client.connect(
                hostname=target.hostname, port=target.port, username=target.user,
                key_filename=list(target.identity_files) or None,  # type: ignore[arg-type]
                look_for_keys=not target.identity_files, allow_agent=True,
                timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
                channel_timeout=timeout, sock=self._open_socket(),
            )
        except (paramiko.SSHException, OSError, EOFError) as exc:
            client.close()
            raise self._failure(exc) from exc
        transport = client.get_transport()
        assert transport is not None
        transport.set_keepalive(max(1, int(self.node.keepalive)))
        if isinstance(transport.sock, socket.socket):
            # small request/reply messages: Nagle plus delayed ACKs would add ~40 ms to each
            transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connections_opened += 1
        return client

    def _open_socket(self) -> paramiko.Channel | paramiko.ProxyCommand | None:
        if self.jump is not None:
            return self.jump.open_forward(self.target.hostname, self.target.port)
        if self.target.proxy_command:
            return paramiko.ProxyCommand(self.target.proxy_command)
        return None

    def open_forward(self, host: str, port: int) -> paramiko.Channel:
        """A TCP channel from this node to host:port, for the next hop of a ProxyJump."""
        transport = self._connected().get_transport()
        assert transport is not None
        try:
            return transport.open_channel(
                "direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=self.node.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectFailure(
                ErrorKind.UNREACHABLE,
                f"jump host {self.target.address} could not reach {host}:{port}: {exc}") from exc

    def _failure(self, exc: BaseException) -> ConnectFailure:
        return ConnectFailure(*describe_connect_error(exc, self))

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _session(self) -> paramiko.Channel:
        """A fresh channel on the pooled connection; one reconnect if the pooled one has died."""
        for attempt in range(2):
            transport = self._connected().get_transport()
            assert transport is not None
            try:
                return transport.open_session(timeout=self.node.connect_timeout)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                with self._lock:
                    self._drop()
                if attempt:
                    raise ConnectFailure(
                        ErrorKind.UNREACHABLE,
                        f"connection to {self.target.address} lost: {exc}") from exc
        raise AssertionError("unreachable")

    # --- commands -------------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdin: bytes | None = None,
    ) -> RunResult:
        text = command_text(argv)
        limit = timeout if timeout is not None else self.node.command_timeout
        started = time.monotonic()
        try:
            channel = self._session()
        except ConnectFailure as failure:
            return RunResult(self.node.name, text, None, "", "", time.monotonic() - started,
                             failure.kind, failure.message)
        try:
            channel.exec_command(remote_command_line(argv, env=env, cwd=cwd, timeout=limit))
            if stdin:
                channel.sendall(stdin)
            channel.shutdown_write()
            out, err, code = _collect(channel, deadline=started + limit + KILL_GRACE + 2)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            return RunResult(self.node.name, text, None, "", "", time.monotonic() - started,
                             ErrorKind.UNREACHABLE,
                             f"connection to {self.target.address} lost while running `{text}`: {exc}")
        finally:
            channel.close()
        elapsed = time.monotonic() - started
        if code is None or timed_out(elapsed, limit, code):
            return RunResult(self.node.name, text, code, out, err, elapsed, ErrorKind.TIMEOUT,
                             f"`{text}` did not finish within {limit:g}s and was killed")
        return RunResult(self.node.name, text, code, out, err, elapsed)

    def stream(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandStream:
        text = command_text(argv)
        watched = ["sh", "-c", _HANGUP_WATCH, "sh", *argv]
        try:
            channel = self._session()
            channel.exec_command(remote_command_line(watched, env=env, cwd=cwd))
        except ConnectFailure as failure:
            return SSHStream(self.node.name, text, None, failure.kind, failure.message)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            return SSHStream(self.node.name, text, None, ErrorKind.UNREACHABLE,
                             f"could not start `{text}`: {exc}")
        return SSHStream(self.node.name, text, channel)

    # --- files ----------------------------------------------------------------------------------

    def put(self, local: Path, remote: str, *, timeout: float | None = None) -> TransferResult:
        destination = _sftp_path(remote)
        partial = str(destination.with_name(f".{destination.name}.part"))

        def upload(sftp: paramiko.SFTPClient) -> int:
            _makedirs(sftp, destination.parent)
            sftp.put(str(local), partial, confirm=True)
            sftp.chmod(partial, stat.S_IMODE(Path(local).stat().st_mode))
            sftp.posix_rename(partial, str(destination))
            return Path(local).stat().st_size

        return self._transfer(str(local), f"{self.node.name}:{remote}", upload, timeout)

    def get(self, remote: str, local: Path, *, timeout: float | None = None) -> TransferResult:
        local = Path(local)
        partial = local.with_name(f".{local.name}.part")

        def download(sftp: paramiko.SFTPClient) -> int:
            local.parent.mkdir(parents=True, exist_ok=True)
            sftp.get(str(_sftp_path(remote)), str(partial))
            partial.replace(local)
            return local.stat().st_size

        return self._transfer(f"{self.node.name}:{remote}", str(local), download, timeout)

    def _transfer(
        self, source: str, destination: str,
        action: SftpAction, timeout: float | None,
    ) -> TransferResult:
        started = time.monotonic()
        try:
            sftp = self._sftp(timeout or self.node.command_timeout)
            try:
                size = action(sftp)
            finally:
                sftp.close()
        except ConnectFailure as failure:
            return TransferResult(self.node.name, source, destination, 0,
                                  time.monotonic() - started, failure.kind, failure.message)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            kind = ErrorKind.TIMEOUT if isinstance(exc, socket.timeout) else ErrorKind.IO
            return TransferResult(self.node.name, source, destination, 0,
                                  time.monotonic() - started, kind,
                                  f"copying {source} to {destination} failed: {reason}")
        return TransferResult(self.node.name, source, destination, size, time.monotonic() - started)

    def _sftp(self, timeout: float) -> paramiko.SFTPClient:
        """An SFTP session on the pooled connection; each transfer has its own, so threads never share."""
        transport = self._connected().get_transport()
        assert transport is not None
        sftp = paramiko.SFTPClient.from_transport(transport)
        if sftp is None:
            raise paramiko.SSHException("the server refused the sftp subsystem")
        channel = sftp.get_channel()
        if channel is not None:
            channel.settimeout(timeout)
        return sftp

    def scan_host_key(self) -> tuple[HostKeyCheck | None, paramiko.PKey | None, str]:
        """The key this node offers (no authentication) compared with known_hosts, or why not."""
        target, timeout = self.target, self.node.connect_timeout
        try:
            sock = self._open_socket() or socket.create_connection(
                (target.hostname, target.port), timeout=timeout)
            probe = paramiko.Transport(sock)
            probe.banner_timeout = timeout
            try:
                probe.start_client(timeout=timeout)
                key = probe.get_remote_server_key()
            finally:
                probe.close()
        except (ConnectFailure, paramiko.SSHException, OSError, EOFError) as exc:
            return None, None, describe_connect_error(exc, self)[1]
        return check_key(target.known_hosts, target.known_as, key), key, ""

    def close(self) -> None:
        with self._lock:
            self._drop()


class SSHStream(CommandStream):
    def __init__(
        self, node: str, command: str, channel: paramiko.Channel | None,
        error: ErrorKind | None = None, message: str = "",
    ) -> None:
        self.node, self.command, self._channel = node, command, channel
        self.error, self.message = error, message

    def __iter__(self) -> Iterator[StreamLine]:
        channel = self._channel
        if channel is None:
            return
        pending = {"stdout": b"", "stderr": b""}
        while True:
            chunks = _read_available(channel)
            if chunks is None:
                break
            for name, chunk in chunks:
                *lines, pending[name] = (pending[name] + chunk).split(b"\n")
                for line in lines:
                    yield StreamLine(name, line.decode("utf-8", "replace"))  # type: ignore[arg-type]
        for name, rest in pending.items():
            if rest:
                yield StreamLine(name, rest.decode("utf-8", "replace"))  # type: ignore[arg-type]
        if channel.exit_status_ready():
            self.exit_code = channel.recv_exit_status()

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()


def _read_available(channel: paramiko.Channel) -> list[tuple[str, bytes]] | None:
    """Output ready within one poll step; None once the command is over and all is read."""
    # Look at the exit status *before* the buffers: paramiko handles messages in order, so once
    # the status is in, every byte sent before it is buffered. Looking after could miss output
    # that arrived together with the status.
    finished = channel.exit_status_ready() or channel.closed
    chunks: list[tuple[str, bytes]] = []
    if channel.recv_ready():
        chunks.append(("stdout", channel.recv(65536)))
    if channel.recv_stderr_ready():
        chunks.append(("stderr", channel.recv_stderr(65536)))
    if chunks:
        return chunks
    if finished:
        return None
    if channel.eof_received:
        # after EOF paramiko keeps the channel's poll pipe readable for good: select would spin
        channel.status_event.wait(_POLL)
    else:
        select.select([channel], [], [], _POLL)
    return chunks


def _collect(channel: paramiko.Channel, *, deadline: float) -> tuple[str, str, int | None]:
    """All of a command's output and its exit code; a None code when the deadline passed."""
    out, err = bytearray(), bytearray()
    while time.monotonic() < deadline:
        chunks = _read_available(channel)
        if chunks is None:
            if not channel.exit_status_ready():
                raise EOFError("the channel closed without an exit status")
            return decode_output(bytes(out)), decode_output(bytes(err)), channel.recv_exit_status()
        for name, chunk in chunks:
            buffer = out if name == "stdout" else err
            if len(buffer) <= OUTPUT_LIMIT:
                buffer += chunk
    return decode_output(bytes(out)), decode_output(bytes(err)), None


def _sftp_path(remote: str) -> PurePosixPath:
    """SFTP starts in the login directory, so `~/x` is just `x` there."""
    if remote == "~":
        return PurePosixPath(".")
    return PurePosixPath(remote[2:] if remote.startswith("~/") else remote)


def _makedirs(sftp: paramiko.SFTPClient, directory: PurePosixPath) -> None:
    missing: list[PurePosixPath] = []
    while str(directory) not in ("", ".", "/"):
        try:
            sftp.stat(str(directory))
            break
        except FileNotFoundError:
            missing.append(directory)
            directory = directory.parent
    for path in reversed(missing):
        sftp.mkdir(str(path))


def describe_connect_error(exc: BaseException, transport: SSHTransport) -> tuple[ErrorKind, str]:
    """The error kind and a message that says what happened and what to do about it."""
    node, target = transport.node, transport.target
    where = target.address
    if isinstance(exc, ConnectFailure):
        return exc.kind, exc.message
    if isinstance(exc, UnknownHostKey):
        return ErrorKind.HOST_KEY, (
            f"{where}: unknown host key {exc.key.get_name()} {fingerprint(exc.key)}; "
            f"not in {target.known_hosts}. Check it on the server "
            f"(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) and accept it with: "
            f"ascend-console trust {transport.trust_name}")
    if isinstance(exc, paramiko.BadHostKeyException):
        return ErrorKind.HOST_KEY, (
            f"{where}: HOST KEY CHANGED: known_hosts has {fingerprint(exc.expected_key)}, "
            f"the server offered {exc.key.get_name()} {fingerprint(exc.key)}. Refusing to connect: "
            f"this is a reinstalled server or someone in the middle. If the change is expected, "
            f"remove the old key with `ssh-keygen -f {target.known_hosts} -R '{target.known_as}'` "
            f"and run: ascend-console trust {transport.trust_name}")
    if isinstance(exc, paramiko.AuthenticationException):
        keys = ", ".join(target.identity_files) or "the agent and ~/.ssh/id_*"
        return ErrorKind.AUTH, f"{where}: authentication failed (tried {keys}): {exc}"
    if isinstance(exc, socket.timeout | TimeoutError):
        return ErrorKind.UNREACHABLE, (
            f"{where}: no answer within {node.connect_timeout:g}s (host down, link cut or firewalled)")
    if isinstance(exc, OSError):
        return ErrorKind.UNREACHABLE, f"{where}: cannot connect: {exc.strerror or exc}"
    return ErrorKind.UNREACHABLE, f"{where}: SSH handshake failed: {exc}"
