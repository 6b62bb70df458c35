"""Reaching a port on a node from here, as `ssh -L` does, without opening anything to the network.

For an SSH node: a listening socket on this machine's 127.0.0.1 (a free port, or the one asked), each
connection to it carried over a `direct-tcpip` channel of the node's pooled connection (through its
bastion when it has one) to host:port as the node sees them. For a local node the port is reachable
as it is: no forward. `forwarded(transport, host, port)` gives the URL to use for as long as it is
held; closing it closes the listener and every connection carried.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import paramiko

from remote.ssh import ConnectFailure, SSHTransport
from remote.transport import Transport

LISTEN_BACKLOG = 16
POLL = 0.5
"""Seconds a thread of the forward waits on its sockets before looking whether it was closed."""
CHUNK = 64 * 1024
FailureCallback = Callable[[str], None]
"""Told why a connection could not be carried (the node refused the channel), on the forward's thread."""


def ignore_failure(_: str) -> None:
    pass


class PortForward:
    """127.0.0.1:local_port here → host:port as seen from the node; `close()` ends it all."""

    def __init__(self, transport: SSHTransport, host: str, port: int, *, local_port: int = 0,
                 on_failure: FailureCallback = ignore_failure) -> None:
        self.transport, self.host, self.port = transport, host, port
        self._on_failure = on_failure
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._listener.bind(("127.0.0.1", local_port))
            self._listener.listen(LISTEN_BACKLOG)
        except OSError:
            self._listener.close()
            raise
        self._listener.settimeout(POLL)
        self.local_port: int = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket | paramiko.Channel] = set()
        self._thread = threading.Thread(target=self._accept, daemon=True,
                                        name=f"forward-{transport.node.name}-{port}")
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # the listener was closed
                return
            threading.Thread(target=self._carry, args=(client,), daemon=True,
                             name=f"forward-{self.transport.node.name}-conn").start()

    def _carry(self, client: socket.socket) -> None:
        try:
            channel = self.transport.open_forward(self.host, self.port)
        except ConnectFailure as failure:
            client.close()
            self._on_failure(failure.message)
            return
        with self._lock:
            if self._closed.is_set():
                client.close()
                channel.close()
                return
            self._open.update((client, channel))
        try:
            _pump(client, channel, self._closed)
        finally:
            with self._lock:
                self._open.difference_update((client, channel))
            client.close()
            channel.close()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            carried, self._open = list(self._open), set()
        for end in carried:
            with contextlib.suppress(OSError, EOFError):
                end.close()
        self._thread.join(timeout=POLL * 4)

    def __enter__(self) -> PortForward:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _pump(client: socket.socket, channel: paramiko.Channel, closed: threading.Event) -> None:
    """Bytes both ways until both sides have finished sending (an end that stops sending is passed on
    as a half close), or the forward is closed."""
    selector = selectors.DefaultSelector()
    selector.register(client, selectors.EVENT_READ, "client")
    selector.register(channel, selectors.EVENT_READ, "channel")
    open_ends = 2
    try:
        while open_ends and not closed.is_set():
            for key, _ in selector.select(POLL):
                source = client if key.data == "client" else channel
                try:
                    data = source.recv(CHUNK)
                except (OSError, EOFError):
                    return
                if data:
                    (channel if source is client else client).sendall(data)
                    continue
                selector.unregister(source)
                open_ends -= 1
                if source is client:
                    channel.shutdown_write()
                else:
                    with contextlib.suppress(OSError):
                        client.shutdown(socket.SHUT_WR)
    except (OSError, EOFError):
        return  # one end went away: the caller closes both
    finally:
        selector.close()


@contextmanager
def forwarded(transport: Transport, host: str, port: int, *, local_port: int = 0,
              on_failure: FailureCallback = ignore_failure) -> Iterator[str]:
    """The URL here that reaches http://host:port on the node, held open for the block. Raises OSError
    when `local_port` cannot be listened on."""
    if not isinstance(transport, SSHTransport):  # a local node: the port is this machine's already
        yield f"http://{host}:{port}"
        return
    with PortForward(transport, host, port, local_port=local_port, on_failure=on_failure) as forward:
        yield forward.url
