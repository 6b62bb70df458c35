"""SSHTransport: paramiko, one pooled connection per node, strict host keys, keys/agent only."""

from __future__ import annotations

import contextlib
import socket
import stat
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath

import paramiko

from remote.channel import SSHStream, collect
from remote.hostkeys import (
    HostKeyCheck,
    RejectUnknownHosts,
    UnknownHostKey,
    check_key,
    fingerprint,
    load_known_hosts,
)
from remote.inventory import NodeSpec
from remote.sshconfig import SSHTarget, resolve_target
from remote.transport import (
    KILL_GRACE,
    CommandStream,
    ErrorKind,
    RunResult,
    TransferResult,
    Transport,
    brief,
    command_text,
    killed_by_limit,
    partial_name,
    remote_command_line,
)

# OpenSSH's sshd allows 10 sessions per connection by default; stay under it, leaving room for
# a few long-lived streams, and queue the rest rather than have the server refuse them.
MAX_SESSIONS = 8
# How long the console keeps reading after the remote `timeout` should have ended a command.
COLLECT_GRACE = KILL_GRACE + 2.0
# Runs the streamed command in its own process group beside a watcher that kills that group when
# the console hangs up (stdin closes): a closed log pane never leaves a `tail -F` behind.
# A background list gets /dev/null as stdin, hence the copy of the channel's stdin on fd 3;
# setsid does not fork here (a background job is no group leader), so $! is the group's id.
HANGUP_WATCH = (
    'exec 3<&0; setsid "$@" </dev/null & child=$!; '
    '(while read -r _ <&3; do :; done; kill -TERM -"$child" 2>/dev/null) & watcher=$!; '
    'wait "$child"; code=$?; kill "$watcher" 2>/dev/null; exit "$code"'
)
SftpAction = Callable[[paramiko.SFTPClient], int]


class ConnectFailure(Exception):
    def __init__(self, kind: ErrorKind, message: str) -> None:
        self.kind = kind
        self.message = message
        super().__init__(message)


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
        self._closed = False
        self._lock = threading.Lock()
        self._sessions = threading.BoundedSemaphore(MAX_SESSIONS)

    # --- connection -----------------------------------------------------------------------------

    def _connected(self) -> paramiko.SSHClient:
        with self._lock:
            if self._closed:
                raise ConnectFailure(ErrorKind.UNREACHABLE, f"{self.target.address}: transport closed")
            client = self._client
            transport = client.get_transport() if client else None
            if client is None or transport is None or not transport.is_active():
                self._drop(client)
                client = self._client = self._connect()
                if self._closed:  # closed while we were connecting
                    client.close()
                    raise ConnectFailure(ErrorKind.UNREACHABLE, f"{self.target.address}: transport closed")
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
            raise ConnectFailure(*describe_connect_error(exc, self)) from exc
        transport = client.get_transport()
        assert transport is not None
        transport.set_keepalive(max(1, int(self.node.keepalive)))
        if isinstance(transport.sock, socket.socket):
            self._tune(transport.sock)
        self.connections_opened += 1
        return client

    def _tune(self, sock: socket.socket) -> None:
        # small request/reply messages: Nagle plus delayed ACKs would add ~40 ms to each
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # keepalives only send: without a limit on unacknowledged data a cut link is never
        # noticed and every stream on it waits forever
        dead_after = max(3 * self.node.keepalive, self.node.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(dead_after * 1000))

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

    def _drop(self, client: paramiko.SSHClient | None) -> None:
        """Close `client` if it is still the pooled one; another thread may have replaced it."""
        if client is not None and client is self._client:
            client.close()
            self._client = None

    def _session(self) -> paramiko.Channel:
        """A fresh channel on the pooled connection; one reconnect if the pooled one has died."""
        for attempt in (1, 2):
            client = self._connected()
            transport = client.get_transport()
            assert transport is not None
            try:
                return transport.open_session(timeout=self.node.connect_timeout)
            except paramiko.ChannelException as exc:
                # the connection is fine, the server just will not open one more session
                raise ConnectFailure(ErrorKind.REFUSED, f"{self.target.address} refused a new "
                                     f"session ({exc}); too many at once for its MaxSessions") from exc
            except (paramiko.SSHException, OSError, EOFError) as exc:
                with self._lock:
                    self._drop(client)
                if attempt == 2:
                    raise ConnectFailure(ErrorKind.UNREACHABLE,
                                         f"connection to {self.target.address} lost: {exc}") from exc
        raise ConnectFailure(ErrorKind.UNREACHABLE, f"no session to {self.target.address}")

    def _connection_alive(self) -> bool:
        client = self._client
        return link_alive(client.get_transport() if client else None)

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
        line = remote_command_line(argv, env=env, cwd=cwd, timeout=limit)
        started = time.monotonic()
        if not self._sessions.acquire(timeout=limit):
            return RunResult.failure(node=self.node.name, command=text, kind=ErrorKind.TIMEOUT,
                                     message=f"no free session on {self.target.address} within {limit:g}s",
                                     elapsed=time.monotonic() - started)
        try:
            return self._run_line(text, line, limit, stdin or b"", started)
        finally:
            self._sessions.release()

    def _run_line(self, text: str, line: str, limit: float, stdin: bytes, started: float) -> RunResult:
        def failed(kind: ErrorKind, message: str) -> RunResult:
            return RunResult.failure(node=self.node.name, command=text, kind=kind, message=message,
                                     elapsed=time.monotonic() - started)
        try:
            channel = self._session()
        except ConnectFailure as failure:
            return failed(failure.kind, failure.message)
        try:
            channel.exec_command(line)
            done = collect(channel, stdin=stdin, deadline=started + limit + COLLECT_GRACE)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            return failed(ErrorKind.UNREACHABLE, f"connection to {self.target.address} lost "
                                                 f"while running `{brief(text)}`: {exc}")
        finally:
            channel.close()
        elapsed = time.monotonic() - started
        result = RunResult(self.node.name, text, done.exit_code, done.stdout, done.stderr, elapsed)
        if not done.finished or killed_by_limit(elapsed, limit, done.exit_code):
            return RunResult.failure(
                node=self.node.name, command=text, kind=ErrorKind.TIMEOUT, elapsed=elapsed,
                message=f"`{brief(text)}` did not finish within {limit:g}s and was killed",
                exit_code=done.exit_code, stdout=done.stdout, stderr=done.stderr)
        if done.exit_code is None:
            return self._without_status(result)
        return result

    def _without_status(self, result: RunResult) -> RunResult:
        """sshd reports a death by signal as exit-signal, which paramiko drops: say what we know."""
        if not self._connection_alive():
            return RunResult.failure(
                node=result.node, command=result.command, kind=ErrorKind.UNREACHABLE,
                elapsed=result.elapsed, stdout=result.stdout, stderr=result.stderr,
                message=f"connection to {self.target.address} lost while running `{brief(result.command)}`")
        why = f"`{brief(result.command)}` ended without an exit status (killed by a signal)"
        return RunResult(result.node, result.command, None, result.stdout, result.stderr, result.elapsed,
                         message=why)

    def stream(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandStream:
        text = command_text(argv)
        watched = ["sh", "-c", HANGUP_WATCH, "sh", *argv]
        try:
            channel = self._session()
            channel.exec_command(remote_command_line(watched, env=env, cwd=cwd))
        except ConnectFailure as failure:
            return SSHStream(self.node.name, text, None, failure.kind, failure.message)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            return SSHStream(self.node.name, text, None, ErrorKind.UNREACHABLE,
                             f"could not start `{brief(text)}`: {exc}")
        return SSHStream(self.node.name, text, channel)

    # --- files ----------------------------------------------------------------------------------

    def put(self, local: Path, remote: str, *, timeout: float | None = None) -> TransferResult:
        destination = sftp_path(remote)
        partial = str(destination.with_name(partial_name(destination.name)))

        def upload(sftp: paramiko.SFTPClient) -> int:
            makedirs(sftp, destination.parent)
            try:
                sftp.put(str(local), partial, confirm=True)
                sftp.chmod(partial, stat.S_IMODE(Path(local).stat().st_mode))
                sftp.posix_rename(partial, str(destination))
            except (OSError, paramiko.SSHException):
                _remove_quietly(sftp, partial)
                raise
            return Path(local).stat().st_size

        return self._transfer(str(local), f"{self.node.name}:{remote}", upload, timeout)

    def get(self, remote: str, local: Path, *, timeout: float | None = None) -> TransferResult:
        local = Path(local)
        partial = local.with_name(partial_name(local.name))

        def download(sftp: paramiko.SFTPClient) -> int:
            local.parent.mkdir(parents=True, exist_ok=True)
            try:
                sftp.get(str(sftp_path(remote)), str(partial))
                partial.replace(local)
            finally:
                partial.unlink(missing_ok=True)
            return local.stat().st_size

        return self._transfer(f"{self.node.name}:{remote}", str(local), download, timeout)

    def _transfer(self, source: str, destination: str, action: SftpAction,
                  timeout: float | None) -> TransferResult:
        started = time.monotonic()

        def failed(kind: ErrorKind, message: str) -> TransferResult:
            return TransferResult(self.node.name, source, destination, 0, time.monotonic() - started,
                                  kind, message)
        limit = timeout or self.node.command_timeout
        if not self._sessions.acquire(timeout=limit):
            return failed(ErrorKind.TIMEOUT, f"no free session on {self.target.address} within {limit:g}s")
        try:
            with self._sftp(limit) as sftp:
                size = action(sftp)
        except ConnectFailure as failure:
            return failed(failure.kind, failure.message)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            kind = ErrorKind.TIMEOUT if isinstance(exc, socket.timeout) else ErrorKind.IO
            return failed(kind, f"copying {source} to {destination} failed: {reason}")
        finally:
            self._sessions.release()
        return TransferResult(self.node.name, source, destination, size, time.monotonic() - started)

    def _sftp(self, timeout: float) -> paramiko.SFTPClient:
        """An SFTP session on the pooled connection; each transfer has its own, so threads never share."""
        channel = self._session()
        channel.settimeout(timeout)
        channel.invoke_subsystem("sftp")
        return paramiko.SFTPClient(channel)

    def scan_host_key(self) -> tuple[HostKeyCheck | None, paramiko.PKey | None, str]:
        """The key this node offers (no authentication) compared with known_hosts, or why not."""
        target, timeout = self.target, self.node.connect_timeout
        try:
            sock = self._open_socket() or socket.create_connection(
                (target.hostname, target.port), timeout=timeout)
            probe = paramiko.Transport(sock)
            _prefer_known_key_types(probe, target)
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
        """Close without waiting for the lock: a thread may hold it for a whole connect timeout,
        and quitting must not wait for a node that does not answer."""
        self._closed = True
        client = self._client
        if client is not None:
            client.close()


def link_alive(transport: paramiko.Transport | None) -> bool:
    """Whether the connection still stands. paramiko's transport thread, as the link dies, records why
    (saved_exception), then closes the channels, and only then clears `active`: a command whose channel
    closed in that window must not be read as one that ended by itself."""
    return transport is not None and transport.is_active() and transport.saved_exception is None


def _prefer_known_key_types(probe: paramiko.Transport, target: SSHTarget) -> None:
    """Ask for a key type known_hosts already has, as ssh does, so "other type" is not "changed"."""
    known = load_known_hosts(target.known_hosts).lookup(target.known_as)
    if not known:
        return
    options = probe.get_security_options()
    preferred = [t for t in list(known) if t in options.key_types]
    options.key_types = preferred + [t for t in options.key_types if t not in preferred]


def sftp_path(remote: str) -> PurePosixPath:
    """SFTP starts in the login directory, so `~/x` is just `x` there."""
    if remote == "~":
        return PurePosixPath(".")
    return PurePosixPath(remote[2:] if remote.startswith("~/") else remote)


def makedirs(sftp: paramiko.SFTPClient, directory: PurePosixPath) -> None:
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


def _remove_quietly(sftp: paramiko.SFTPClient, path: str) -> None:
    # the copy already failed; that error is the one to report
    with contextlib.suppress(OSError, paramiko.SSHException):
        sftp.remove(path)


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
    if isinstance(exc, paramiko.BadAuthenticationType) and "publickey" not in exc.allowed_types:
        offered = " or ".join(exc.allowed_types) or "no method"
        return ErrorKind.AUTH, (
            f"{where}: the host offers only {offered} authentication; the console signs in with keys "
            f"or an SSH agent only, never a password. Enable PubkeyAuthentication in its sshd_config "
            f"and add your public key to the user's ~/.ssh/authorized_keys there")
    if isinstance(exc, paramiko.AuthenticationException):
        keys = ", ".join(target.identity_files) or "the agent and ~/.ssh/id_*"
        return ErrorKind.AUTH, f"{where}: authentication failed (tried {keys}): {exc}"
    if isinstance(exc, socket.timeout | TimeoutError):
        return ErrorKind.UNREACHABLE, (
            f"{where}: no answer within {node.connect_timeout:g}s (host down, link cut or firewalled)")
    if isinstance(exc, OSError):
        return ErrorKind.UNREACHABLE, f"{where}: cannot connect: {exc.strerror or exc}"
    if isinstance(exc.__context__, EOFError | ConnectionError):  # "Error reading SSH protocol banner"
        return ErrorKind.UNREACHABLE, (
            f"{where}: SSH handshake failed: the host closed the connection before its SSH banner (no "
            f"SSH server on that port, or sshd turning connections away: MaxStartups, hosts.deny)")
    return ErrorKind.UNREACHABLE, f"{where}: SSH handshake failed: {exc}"
