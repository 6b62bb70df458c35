"""`ascend-console trust`: show each node's host key and record it in known_hosts on consent."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from console import exitcodes
from console.render import print_json, stderr_console, stdout_console
from remote.hostkeys import HostKeyCheck, KeyState, add_known_host
from remote.inventory import Cluster, NodeSpec
from remote.pool import NodePool
from remote.ssh import SSHTransport

HELP = "accept the host keys of new nodes into known_hosts (after showing their fingerprints)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NODE",
                        help="nodes or node sets, e.g. node0 'node[1-3]' (default: every node)")
    parser.add_argument("--yes", action="store_true",
                        help="accept new keys without asking (changed keys are still refused)")
    parser.add_argument("--json", action="store_true", help="print what was found as JSON")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    nodes = cluster.select(",".join(args.names)) if args.names else cluster.nodes
    out, err = stdout_console(), stderr_console()
    records: list[dict[str, object]] = []
    code = exitcodes.OK
    with NodePool(cluster) as pool:
        seen: set[tuple[Path, str]] = set()
        for node in nodes:
            transport = pool.transport(node)
            if not isinstance(transport, SSHTransport):
                records.append({"node": node.name, "state": "local"})
                continue
            for hop in _jump_chain(transport):
                if (hop.target.known_hosts, hop.target.known_as) in seen:
                    continue
                seen.add((hop.target.known_hosts, hop.target.known_as))
                record, node_code = _trust_one(hop.node, hop, args, err if args.json else out)
                records.append(record)
                code = max(code, node_code)
    if args.json:
        print_json({"cluster": cluster.name, "nodes": records})
    return code


def _jump_chain(transport: SSHTransport) -> list[SSHTransport]:
    """The bastions in front of a node, outermost first, then the node: each must be trusted."""
    chain = [transport]
    while chain[0].jump is not None:
        chain.insert(0, chain[0].jump)
    return chain


def _trust_one(
    node: NodeSpec, transport: SSHTransport, args: argparse.Namespace, console: Console
) -> tuple[dict[str, object], int]:
    check, key, problem = transport.scan_host_key()
    known_hosts = transport.target.known_hosts
    if check is None or key is None:
        console.print(f"[red]{escape(node.name)}[/]: {escape(problem)}")
        return {"node": node.name, "state": "unreachable", "message": problem}, exitcodes.UNREACHABLE
    record: dict[str, object] = {
        "node": node.name, "known_as": check.known_as, "key_type": check.key_type,
        "fingerprint": check.fingerprint, "state": check.state.value,
        "known_hosts": str(known_hosts),
    }
    if check.state is KeyState.KNOWN:
        console.print(f"[green]{escape(node.name)}[/]: already trusted "
                      f"({check.key_type} {check.fingerprint})")
        return record, exitcodes.OK
    if check.state is KeyState.CHANGED:
        console.print(_changed_message(node, check, known_hosts))
        return record, exitcodes.UNREACHABLE
    console.print(f"{escape(node.name)} ({escape(check.known_as)}) offers "
                  f"{check.key_type} [bold]{check.fingerprint}[/]")
    if not (args.yes or _confirm(console, node)):
        console.print(f"  not trusted: {escape(node.name)}")
        record["state"] = "declined"
        return record, exitcodes.NODE_FAILED
    add_known_host(known_hosts, check.known_as, key)
    console.print(f"  [green]trusted[/]: added to {escape(str(known_hosts))}")
    record["state"] = "added"
    return record, exitcodes.OK


def _changed_message(node: NodeSpec, check: HostKeyCheck, known_hosts: Path) -> str:
    return (
        f"[bold red]{escape(node.name)}: HOST KEY CHANGED[/] ({escape(check.known_as)}): "
        f"known_hosts has {check.known_fingerprint}, the server offers {check.key_type} "
        f"{check.fingerprint}. Not trusted. If the server was reinstalled, remove the old key with "
        f"`ssh-keygen -f {escape(str(known_hosts))} -R '{escape(check.known_as)}'` and run trust again."
    )


def _confirm(console: Console, node: NodeSpec) -> bool:
    if not sys.stdin.isatty():
        console.print("  (no terminal to ask on: re-run with --yes after checking the fingerprint)")
        return False
    answer = console.input(f"  trust {escape(node.name)}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")
