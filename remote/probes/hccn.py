"""`hccn_tool -i N ... -g` text -> records: the RoCE port of one NPU (link, net health, address).

hccn_tool prints one `key: value` result per line on stdout and its errors on stderr (§2). Each
parser looks for its own line anywhere in the text and expects exactly one.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from remote.probes import UNKNOWN, unknown_reason

# Anchored at the line start so that `vnic link status:` or `vnic ipaddr:` are not the port's own.
LINK_LINE = re.compile(r"\s*link status\s*:(.*)")
NET_HEALTH_LINE = re.compile(r"\s*net health status\s*:(.*)")
IP_LINE = re.compile(r"\s*ipaddr\s*:(.*)")
NETMASK_LINE = re.compile(r"\s*netmask\s*:(.*)")

# The words of `-net_health -g` in the 910B source; older drivers said `Socket failed`. Note that
# `Unknown` is one of hccn_tool's own words, unlike UNKNOWN, which means the text was unreadable.
NET_HEALTH_WORDS = (
    "Success", "Socket fail", "Receive timeout", "Unreachable", "Time exceeded", "Fault", "Init",
    "Thread error", "Detect ip set", "Unknown", "Socket failed",
)


@dataclass(frozen=True)
class LinkStatus:
    state: str  # "UP" | "DOWN" | UNKNOWN
    raw: str
    problem: str = ""  # why the state is UNKNOWN, quoting the first line seen


@dataclass(frozen=True)
class NetHealth:
    word: str  # one of NET_HEALTH_WORDS, or UNKNOWN
    ok: bool  # only `Success`; `Init` (no peer-detect address set yet) is left to the caller
    raw: str
    problem: str = ""


@dataclass(frozen=True)
class DeviceIp:
    ip: str | None
    netmask: str | None
    raw: str
    problem: str = ""  # why ip or netmask is None


def parse_link(text: str) -> LinkStatus:
    """`hccn_tool -i N -link -g`: `link status: UP` or `link status: DOWN`."""
    values = _values(LINK_LINE, text)
    state = values[0].upper() if len(values) == 1 else ""
    if state in ("UP", "DOWN"):
        return LinkStatus(state, text)
    return LinkStatus(UNKNOWN, text, unknown_reason(_one_line_problem("link status", values), text))


def parse_net_health(text: str) -> NetHealth:
    """`hccn_tool -i N -net_health -g`: `net health status: <word>`."""
    values = _values(NET_HEALTH_LINE, text)
    word = values[0] if len(values) == 1 else ""
    if word in NET_HEALTH_WORDS:
        return NetHealth(word, word == "Success", text)
    what = _one_line_problem("net health status", values) if len(values) != 1 else f"unknown word {word!r}"
    return NetHealth(UNKNOWN, False, text, unknown_reason(what, text))


def parse_ip(text: str) -> DeviceIp:
    """`hccn_tool -i N -ip -g`: `ipaddr:a.b.c.d` then `netmask:a.b.c.d` (no space after the colon)."""
    ip, ip_problem = _address(_values(IP_LINE, text), "ipaddr")
    netmask, mask_problem = _address(_values(NETMASK_LINE, text), "netmask")
    problems = "; ".join(p for p in (ip_problem, mask_problem) if p)
    return DeviceIp(ip, netmask, text, unknown_reason(problems, text) if problems else "")


def _values(pattern: re.Pattern[str], text: str) -> list[str]:
    """The value of every line that `pattern` matches from its start, stripped."""
    return [m.group(1).strip() for m in map(pattern.match, text.splitlines()) if m is not None]


def _address(values: list[str], key: str) -> tuple[str | None, str]:
    if len(values) != 1:
        return None, _one_line_problem(key, values)
    try:
        return str(ipaddress.IPv4Address(values[0])), ""
    except ValueError:  # e.g. a vendor doc's masked `10.xx.xx.10`
        return None, f"{key} {values[0]!r} is not an IPv4 address"


def _one_line_problem(key: str, values: list[str]) -> str:
    if not values:
        return f"no `{key}:` line"
    if len(values) > 1:
        return f"{len(values)} `{key}:` lines"
    return f"unexpected {key} {values[0]!r}"
