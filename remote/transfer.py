"""Distribute a directory (datasets, weights, job files) to the same path on many nodes.

A path is the node's (`NodeSpec.resolve`): a relative DEST (or a relative SRC on `from_node`) is under
each node's workdir, so the embedded local cluster's two nodes get a tree each. Nodes that would write
one directory (one machine, one path: two local nodes and an absolute DEST) get one copy, made and
verified once for the first of them and reported for each, since two writers of one staging tree race.

The file set's manifest (path, size, SHA-256) is taken once at the source. Every node then says
what it already has (files of the right size are hashed; those that match are skipped) and the rest
travels in waves down a relay chain (see `relayplan`): the console, or one node, sends to the first
node, which relays to the next over the cluster network, so the source's uplink carries the set
once. Bulk bytes go by OpenSSH rsync where both ends have it, by SFTP from the console otherwise.

Arrivals land in a staging tree under the destination (rsync keeps an interrupted file aside and
resumes from it), are hashed on the node with sha256sum, and only then renamed into place: a file
at its final name is always whole and verified. A mismatch is deleted and sent again.
"""

from __future__ import annotations

import itertools
import queue
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from remote.inventory import NodeSpec
from remote.local import LocalTransport
from remote.manifest import Manifest, ManifestError, local_files, scan_directory
from remote.nodefiles import (
    NodeFileError,
    NodeInventory,
    clear_staging,
    hashes,
    inspect,
    node_manifest,
    receivers_file,
    relay_probe,
    settle,
    staging,
)
from remote.pool import NodePool
from remote.relayplan import (
    ROOT,
    SOURCE,
    WAVE_BYTES,
    Hop,
    NodeProgress,
    RateMeter,
    Wave,
    plan_chain,
    plan_copies,
    plan_waves,
)
from remote.rsync import RsyncReport, SSHEndpoint, remote_spec, rsync_argv, source_args, ssh_argv, wrapped
from remote.ssh import SSHTransport
from remote.transport import Transport

ProgressCallback = Callable[[NodeProgress], None]
PROGRESS_EVERY = 0.25
RELAY_TOOLS = frozenset({"rsync", "stdbuf", "ssh"})


@dataclass(frozen=True)
class TransferOptions:
    relay: bool = True
    """Let nodes relay to each other; False: every node receives from the source directly."""
    wave_bytes: int = WAVE_BYTES
    io_timeout: float = 30.0
    """rsync gives up when no data moves for this long (a cut link), and so does its ssh."""
    bwlimit_kib: int | None = None
    """Cap each rsync stream (KiB/s), to leave room on a shared network."""
    attempts: int = 2
    """Times a file whose checksum does not match on arrival is sent again."""
    sftp_only: bool = False
    """Never use rsync (from the console over SFTP only; no relaying)."""


DEFAULT_OPTIONS = TransferOptions()


@dataclass(frozen=True)
class NodeTransfer:
    """What one node received, and whether what it now has matches the manifest."""

    node: str
    upstream: str
    method: str
    """rsync | sftp | none (nothing was missing) | shared (another node's copy is this node's too)."""
    bytes_sent: int
    """Bytes its senders put on the wire for it (rsync's "Total bytes sent", or SFTP file sizes)."""
    files_sent: int
    files_skipped: int
    """Files already there whole and verified."""
    files_resent: int
    verified: bool
    error: str | None
    elapsed: float
    destination: str = ""
    """Where the files are on this node (DEST, under the node's workdir when relative)."""
    shares: str | None = None
    """The node whose copy this node has (one machine, one path): nothing was sent for it, and it is
    verified when that copy is; the source node's name when the directory is the source's own (whole).
    None: it got its own."""

    @property
    def ok(self) -> bool:
        return self.error is None and self.verified


@dataclass(frozen=True)
class DistributionResult:
    source: str
    destination: str
    manifest: Manifest
    nodes: tuple[NodeTransfer, ...]
    hops: tuple[Hop, ...]
    """The relay chain as planned (before any re-routing around a failed node)."""
    console_bytes: int
    """Bytes the console host itself sent: with relaying, about one copy of the set."""
    elapsed: float

    @property
    def ok(self) -> bool:
        return all(n.ok for n in self.nodes)

    @property
    def failed(self) -> tuple[NodeTransfer, ...]:
        return tuple(n for n in self.nodes if not n.ok)


class DistributionError(Exception):
    """The source cannot be read at all (no such directory, a node that cannot list it)."""


# --- sources --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    name: str
    """SOURCE for the console, else the node's name: as shown (never a key: see ROOT)."""
    transport: Transport
    root: str
    paths: dict[str, str]
    """Manifest path → path relative to root as rsync should name it (the same, but for one file)."""
    local: bool
    console: bool
    """The console host itself, not a node (whatever the nodes are named)."""


def console_transport(command_timeout: float = 120.0) -> LocalTransport:
    """The console host as a sender: rsync runs here, as a local process."""
    return LocalTransport(NodeSpec(name=SOURCE, host="localhost", cluster_ip="127.0.0.1",
                                   transport="local", backend="cpu", command_timeout=command_timeout))


def _console_source(path: Path) -> tuple[_Source, Manifest]:
    path = path.expanduser().absolute()
    try:
        manifest = scan_directory(path)
        listed = dict(local_files(path))
    except (ManifestError, OSError) as exc:
        raise DistributionError(str(exc)) from exc
    root = path.parent if path.is_file() else path
    paths = {rel: file.relative_to(root).as_posix() for rel, file in listed.items()}
    return _Source(SOURCE, console_transport(), str(root), paths, local=True, console=True), manifest


def _node_source(pool: NodePool, node: NodeSpec, path: str) -> tuple[_Source, Manifest]:
    transport = pool.transport(node)
    try:
        manifest = node_manifest(transport, path)
    except NodeFileError as exc:
        raise DistributionError(str(exc)) from exc
    paths = {e.path: e.path for e in manifest.entries}
    local = isinstance(transport, LocalTransport)
    return _Source(node.name, transport, path, paths, local=local, console=False), manifest


# --- where each node's copy goes -----------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    node: NodeSpec
    path: str
    """DEST on this node."""
    shares: str | None
    """The node whose copy lands in the same directory (it is the one sent to), ROOT when that is the
    source's own directory, else None."""


def _place(transport: Transport, path: str) -> tuple[str, str]:
    """Which directory `path` is, as (machine, path): local nodes are all this machine; nodes at one
    `cluster_ip` are one machine, as for launch (console.jobs.plan.machines); `~` is the login's home."""
    if isinstance(transport, LocalTransport):
        return "", path
    user = transport.target.user if isinstance(transport, SSHTransport) else transport.node.user
    return transport.node.cluster_ip, f"{user}:{path}" if path.startswith("~") else path


def _targets(pool: NodePool, nodes: Sequence[NodeSpec], destination: str,
             source: tuple[NodeSpec, str] | None) -> list[_Target]:
    """Each node with its path, one per directory: the first node of a directory is sent to, the others
    share its copy. A node whose directory is the source's (`from_node` and its path) shares that; the
    source node there is left out, already whole where it is (a DEST elsewhere on it is sent to)."""
    paths = {node.name: node.resolve(destination) for node in nodes}
    origin = None if source is None else (source[0].name, _place(pool.transport(source[0]), source[1]))
    copies = plan_copies([(n.name, _place(pool.transport(n), paths[n.name])) for n in nodes], origin=origin)
    by_name = {node.name: node for node in nodes}
    return [_Target(by_name[name], paths[name], shares) for name, shares in copies]


# --- per node state -------------------------------------------------------------------------------


@dataclass
class _Job:
    node: NodeSpec
    transport: Transport
    destination: str
    inventory: NodeInventory | None = None
    present: frozenset[str] = frozenset()
    method: str = "none"
    bytes_sent: int = 0
    files_sent: int = 0
    files_resent: int = 0
    bytes_done: int = 0
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    meter: RateMeter = field(default_factory=RateMeter)
    last_emit: float = 0.0

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def tools(self) -> frozenset[str]:
        return self.inventory.tools if self.inventory else frozenset()


def distribute(
    pool: NodePool,
    nodes: Sequence[NodeSpec],
    source: Path | str,
    destination: str,
    *,
    from_node: NodeSpec | None = None,
    options: TransferOptions = DEFAULT_OPTIONS,
    on_progress: ProgressCallback | None = None,
) -> DistributionResult:
    """Make `destination` on every node hold the files of `source`, verified.

    `source` is a local path, or with `from_node` a path on that node. Nodes are relayed to in the
    order given. A node that fails is a value in the result (with why); the others carry on.
    Raises DistributionError only when the source itself cannot be read.
    """
    started = time.monotonic()
    if from_node is None:
        src, manifest = _console_source(Path(source))
        targets = _targets(pool, nodes, destination, None)
    else:
        src, manifest = _node_source(pool, from_node, from_node.resolve(str(source)))
        targets = _targets(pool, nodes, destination, (from_node, src.root))
    run = _Run(pool, src, manifest, options=options, on_progress=on_progress)
    sent, hops = run.execute([t for t in targets if t.shares is None])
    results = _with_shared(targets, {r.node: r for r in sent}, len(manifest), src.name)
    origin = f"{src.name}:{source}"
    return DistributionResult(origin, destination, manifest, results, hops, run.console_bytes,
                              time.monotonic() - started)


def _with_shared(targets: Sequence[_Target], sent: dict[str, NodeTransfer], files: int, source: str
                 ) -> tuple[NodeTransfer, ...]:
    """Every target's result in order: its own, or that of the copy it shares; the source's directory
    (ROOT) is whole, and named as the source is."""
    results = []
    for target in targets:
        if target.shares is None:
            results.append(sent[target.node.name])
            continue
        copy = None if target.shares == ROOT else sent[target.shares]
        owner = source if target.shares == ROOT else target.shares
        verified = copy is None or copy.verified
        error = None if copy is None or copy.ok else f"shares {owner}'s copy, which failed"
        results.append(NodeTransfer(
            target.node.name, owner, "shared", 0, 0, files if verified else 0, 0, verified, error,
            copy.elapsed if copy else 0.0, target.path, owner))
    return tuple(results)


class _Run:
    """One distribution: the shared state the per-node threads read and advance.

    The source is ROOT in the chain: a key no node can have, since a source node may also be a target
    (its DEST elsewhere than SRC), whose waves arrive while the source has them all from the start, and
    a node may be named as the console is.
    """

    def __init__(self, pool: NodePool, source: _Source, manifest: Manifest, *,
                 options: TransferOptions, on_progress: ProgressCallback | None) -> None:
        self.pool, self.source, self.manifest = pool, source, manifest
        self.options, self.on_progress = options, on_progress
        self.waves = plan_waves(manifest.entries, wave_bytes=options.wave_bytes)
        self.cond = threading.Condition()
        self.have: dict[str, int] = {ROOT: len(self.waves)}
        self.failed: set[str] = set()
        self.upstream: dict[str, str] = {}
        self.jobs: dict[str, _Job] = {}
        self.console_bytes = 0

    # --- the whole run ----------------------------------------------------------------------------

    def execute(self, targets: Sequence[_Target]) -> tuple[tuple[NodeTransfer, ...], tuple[Hop, ...]]:
        self.jobs = {t.node.name: _Job(t.node, self.pool.transport(t.node), t.path) for t in targets}
        with ThreadPoolExecutor(max_workers=max(1, 2 * len(targets)), thread_name_prefix="transfer") as pool:
            list(pool.map(self._prepare, self.jobs.values()))
            ready = [j for j in self.jobs.values() if j.error is None]
            hops = plan_chain([j.name for j in ready], root=ROOT,
                              can_relay=self._relay_checks(pool, ready))
            self.upstream = {h.node: h.upstream for h in hops}
            for job in ready:
                self.have[job.name] = 0
            futures = [pool.submit(self._deliver, job) for job in ready]
            for future in futures:
                future.result()
        return (tuple(self._result(job) for job in self.jobs.values()),
                tuple(Hop(h.node, self._named(h.upstream)) for h in hops))

    def _named(self, upstream: str) -> str:
        """An upstream as the user knows it: the source's own name for the root."""
        return self.source.name if upstream == ROOT else upstream

    def _result(self, job: _Job) -> NodeTransfer:
        verified = job.error is None and self.have.get(job.name, 0) == len(self.waves)
        return NodeTransfer(job.name, self._named(self.upstream.get(job.name, ROOT)), job.method,
                            job.bytes_sent, job.files_sent, len(job.present), job.files_resent, verified,
                            job.error, (job.finished or time.monotonic()) - job.started, job.destination)

    # --- before sending: what each node has, who can relay to whom -------------------------------

    def _prepare(self, job: _Job) -> None:
        self._emit(job, "checking")
        try:
            job.inventory = inspect(job.transport, job.destination)
            wanted = self.manifest.by_path()
            same_size = [p for p, size in job.inventory.sizes.items()
                         if p in wanted and wanted[p].size == size]
            found = hashes(job.transport, job.destination, same_size,
                           sum(wanted[p].size for p in same_size))
            job.present = frozenset(p for p in same_size if found.get(p) == wanted[p].sha256)
        except NodeFileError as exc:
            self._fail(job, str(exc))
            return
        self._emit(job, "waiting")

    def _relay_checks(self, pool: ThreadPoolExecutor, ready: Sequence[_Job]) -> Callable[[str, str], bool]:
        """Probe, all at once, whether each node can push to the next one in the chain."""
        pairs = list(itertools.pairwise(ready)) if self._may_relay() else []
        futures = {(a.name, b.name): pool.submit(self._can_relay, a, b) for a, b in pairs}
        answers = {pair: future.result() for pair, future in futures.items()}
        return lambda a, b: answers.get((a, b), False)

    def _may_relay(self) -> bool:
        return self.options.relay and not self.options.sftp_only

    def _can_relay(self, sender: _Job, receiver: _Job) -> bool:
        if not all(isinstance(j.transport, SSHTransport) for j in (sender, receiver)):
            return False
        if not sender.tools >= RELAY_TOOLS or "rsync" not in receiver.tools:
            return False
        probe = relay_probe(receiver.node.cluster_ip, self._node_ssh(receiver.node))
        result = sender.transport.run(probe, timeout=sender.node.connect_timeout + 5)
        return result.ok

    # --- sending ----------------------------------------------------------------------------------

    def _deliver(self, job: _Job) -> None:
        """Send the waves in order; a second thread verifies each and moves it into place."""
        arrived: queue.Queue[tuple[Wave, list[str]] | None] = queue.Queue()
        checker = threading.Thread(target=self._verify_waves, args=(job, arrived),
                                   name=f"verify-{job.name}", daemon=True)
        checker.start()
        try:
            for wave in self.waves:
                needed = [e.path for e in wave.entries if e.path not in job.present]
                if needed and not self._send_wave(job, wave, needed):
                    break
                arrived.put((wave, needed))
        finally:
            arrived.put(None)
            checker.join()
        if job.error is None and self.have[job.name] == len(self.waves):
            clear_staging(job.transport, job.destination)
            job.finished = time.monotonic()
            self._emit(job, "done")

    def _send_wave(self, job: _Job, wave: Wave, needed: list[str]) -> bool:
        upstream = self._await_upstream(job, wave)
        if upstream is None:
            return False
        self._emit(job, "sending")
        error = self._send(job, upstream, needed)
        if error is not None:
            self._fail(job, f"receiving {job.destination} from {self._named(upstream)}: {error}")
            return False
        return True

    def _await_upstream(self, job: _Job, wave: Wave) -> str | None:
        """The node to receive this wave from, once it has it; around a failed node, the source."""
        with self.cond:
            while True:
                if job.error is not None:
                    return None
                upstream = self.upstream[job.name]
                if upstream in self.failed:
                    self.upstream[job.name] = upstream = ROOT
                if self.have.get(upstream, 0) > wave.index:
                    return upstream
                self.cond.wait(1.0)

    def _send(self, job: _Job, upstream: str, paths: list[str]) -> str | None:
        """Bytes from upstream into the node's staging tree; None on success, else why not."""
        sender = self._sender(upstream)
        if self._use_sftp(job, sender):
            return self._send_sftp(job, paths)
        job.method = "rsync"
        return self._send_rsync(job, sender, paths)

    def _sender(self, upstream: str) -> tuple[Transport, str, dict[str, str] | None, bool]:
        """(transport that runs the sender, its root, path renames, whether it is this machine)."""
        if upstream == ROOT:
            src = self.source
            return src.transport, src.root, src.paths, src.local
        node = self.jobs[upstream]
        return node.transport, node.destination, None, isinstance(node.transport, LocalTransport)

    def _use_sftp(self, job: _Job, sender: tuple[Transport, str, dict[str, str] | None, bool]) -> bool:
        transport, _, _, local = sender
        if not local or not isinstance(transport, LocalTransport) or not self.source.console:
            return False  # a node sends with rsync or not at all
        tools = job.tools
        proxied = isinstance(job.transport, SSHTransport) and bool(
            job.transport.target.proxy_jump or job.transport.target.proxy_command)
        return self.options.sftp_only or "rsync" not in tools or proxied or not _console_has_rsync()

    def _send_rsync(self, job: _Job, sender: tuple[Transport, str, dict[str, str] | None, bool],
                    paths: list[str]) -> str | None:
        transport, root, renames, local = sender
        names = [renames[p] for p in paths] if renames else paths
        argv = wrapped(rsync_argv(source_args(root, names), self._destination_spec(job, local),
                                  self._ssh_for(job, local), io_timeout=self.options.io_timeout,
                                  bwlimit_kib=self.options.bwlimit_kib,
                                  receiver_pids=receivers_file(job.destination)))
        report, base = RsyncReport(), job.bytes_done
        with transport.stream(argv) as stream:
            for line in stream:
                if report.feed(line.text):
                    self._progress(job, base + report.progress)
        if stream.error is not None:
            return stream.message
        self._count(job, report.bytes_sent, report.files_transferred, local)
        job.bytes_done = base + sum(self.manifest.by_path()[p].size for p in paths)
        return None if report.ok else report.describe()

    def _count(self, job: _Job, sent: int, files: int, from_console: bool) -> None:
        with self.cond:
            job.bytes_sent += sent
            job.files_sent += files
            if from_console and self.source.console:
                self.console_bytes += sent

    def _destination_spec(self, job: _Job, sender_local: bool) -> str:
        target = staging(job.destination) + "/"
        if isinstance(job.transport, LocalTransport) and sender_local:
            return str(Path(target).expanduser())
        host = job.transport.target.hostname if sender_local and isinstance(job.transport, SSHTransport) \
            else job.node.cluster_ip
        return remote_spec(host, target)

    def _ssh_for(self, job: _Job, sender_local: bool) -> list[str]:
        if sender_local and isinstance(job.transport, SSHTransport):
            target = job.transport.target
            endpoint = SSHEndpoint(target.hostname, target.port, target.user, target.identity_files,
                                   str(target.known_hosts))
            return ssh_argv(endpoint, connect_timeout=job.node.connect_timeout,
                            keepalive=self._keepalive())
        return self._node_ssh(job.node)

    def _node_ssh(self, node: NodeSpec) -> list[str]:
        """How a node reaches `node` over the cluster network: its own keys and known_hosts."""
        return ssh_argv(SSHEndpoint(node.cluster_ip, node.port, node.user),
                        connect_timeout=node.connect_timeout, keepalive=self._keepalive())

    def _keepalive(self) -> float:
        return max(1.0, self.options.io_timeout / 3)

    def _send_sftp(self, job: _Job, paths: list[str]) -> str | None:
        job.method = "sftp"
        sizes = self.manifest.by_path()
        for path in paths:
            local = Path(self.source.root) / self.source.paths[path]
            limit = job.node.command_timeout + sizes[path].size / (1024 * 1024)
            done = job.transport.put(local, f"{staging(job.destination)}/{path}", timeout=limit)
            if not done.ok:
                return done.message
            self._count(job, done.size, 1, True)
            job.bytes_done += done.size
            self._progress(job, job.bytes_done)
        return None

    # --- arrival: verify, then move into place ---------------------------------------------------

    def _verify_waves(self, job: _Job, arrived: queue.Queue[tuple[Wave, list[str]] | None]) -> None:
        while (item := arrived.get()) is not None:
            wave, paths = item
            if job.error is None and self._settle_wave(job, paths):
                with self.cond:
                    self.have[job.name] = wave.index + 1
                    self.cond.notify_all()

    def _settle_wave(self, job: _Job, paths: list[str]) -> bool:
        wanted = self.manifest.by_path()
        pending, attempt = list(paths), 0
        while pending:
            try:
                found = hashes(job.transport, staging(job.destination), pending,
                               sum(wanted[p].size for p in pending))
                good = [p for p in pending if found.get(p) == wanted[p].sha256]
                bad = [p for p in pending if p not in good]
                settle(job.transport, job.destination, good, bad)
            except NodeFileError as exc:
                return self._fail(job, str(exc))
            if bad and attempt >= self.options.attempts:
                return self._fail(job, f"{len(bad)} file(s) still differ from the manifest after "
                                       f"{attempt + 1} tries, first {bad[0]!r}")
            if bad:
                job.files_resent += len(bad)
                job.bytes_done -= sum(wanted[p].size for p in bad)
                error = self._send(job, self.upstream[job.name], bad)
                if error is not None:
                    return self._fail(job, f"re-sending {len(bad)} file(s) that failed their checksum: "
                                           f"{error}")
            pending, attempt = bad, attempt + 1
        return True

    # --- state and progress ----------------------------------------------------------------------

    def _fail(self, job: _Job, message: str) -> bool:
        with self.cond:
            if job.error is None:
                job.error, job.finished = message, time.monotonic()
            self.failed.add(job.name)
            self.cond.notify_all()
        self._emit(job, "failed", message)
        return False

    def _progress(self, job: _Job, done: int) -> None:
        job.meter.add(done)
        now = time.monotonic()
        if now - job.last_emit >= PROGRESS_EVERY:
            self._emit(job, "sending", done=done)

    def _emit(self, job: _Job, state: str, message: str = "", *, done: int | None = None) -> None:
        if self.on_progress is None:
            return
        job.last_emit = time.monotonic()
        total = sum(e.size for e in self.manifest.entries if e.path not in job.present)
        done = job.bytes_done if done is None else done
        if state == "done":
            done = total
        files_total = len(self.manifest) - len(job.present)
        self.on_progress(NodeProgress(
            job.name, state, self._named(self.upstream.get(job.name, ROOT)), min(done, total), total,
            job.files_sent, files_total, len(job.present), job.meter.rate(),
            job.meter.eta(total - done), message))



def _console_has_rsync() -> bool:
    return shutil.which("rsync") is not None and shutil.which("ssh") is not None
