"""Whether a server on a node serves: asked ON the node, through its transport, so that a server bound
to the node's 127.0.0.1 is reached without opening anything to the network.

One round trip runs a constant Python script with the node's interpreter (its arguments are
positional, never pasted into its text): the readiness line looked for in the server's log, then
`GET /health` and, once that answers 200, `GET /v1/models` (proxies ignored: the server is local).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from remote.transport import Transport

LOG_BYTES_READ = 8 << 20
"""The readiness line comes early: the log's first 8 MiB are enough, however long it grows."""

PROBE_SCRIPT = r"""
import json, os.path, sys, urllib.error, urllib.request
url, health, line, limit = sys.argv[1], sys.argv[2], sys.argv[4], int(sys.argv[5])
log = os.path.expanduser(sys.argv[3])
found = {"line": None, "health": None, "models": None, "error": ""}
if line:
    try:
        with open(log, "rb") as f:
            found["line"] = line.encode() in f.read(limit)
    except OSError as e:
        found["line"], found["error"] = False, f"{log}: {e.strerror or e}"
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
for key, path in (("health", health), ("models", "/v1/models")):
    if not path:
        continue
    try:
        with opener.open(url + path, timeout=5) as answer:
            found[key] = answer.status
    except urllib.error.HTTPError as e:
        found[key] = e.code
    except (OSError, ValueError) as e:
        found["error"] = f"GET {path}: {getattr(e, 'reason', None) or e}"
    if found[key] != 200:
        break
print(json.dumps(found))
"""


@dataclass(frozen=True)
class ServerProbe:
    """What one look at a server found."""

    line_seen: bool | None
    """The readiness line is in the log; None: not looked for."""
    health: int | None
    """`GET /health`'s status; None: not asked or not answered."""
    models: int | None
    """`GET /v1/models`'s status; None: not asked (health not 200) or not answered."""
    error: str = ""
    """Why a route or the log could not be read, or the node asked."""
    health_asked: bool = True

    @property
    def ready(self) -> bool:
        return (self.line_seen is not False and (not self.health_asked or self.health == 200)
                and self.models == 200)

    def waiting_for(self) -> str:
        """What is still missing, the way the launch's progress says it."""
        if self.health_asked and self.health != 200:
            return "/health" + (f" ({self.health})" if self.health else "")
        if self.models != 200:
            return "/v1/models" + (f" ({self.models})" if self.models else "")
        return "the readiness line in the log" if self.line_seen is False else "nothing"


def probe_server(transport: Transport, python: str, *, url: str, health_path: str | None,
                 log_path: str = "", ready_line: str = "", timeout: float) -> ServerProbe:
    """One look at the server at `url` (on the node) and, with `ready_line`, its log. Never raises."""
    argv = [python, "-c", PROBE_SCRIPT, url, health_path or "", log_path, ready_line, str(LOG_BYTES_READ)]
    result = transport.run(argv, timeout=timeout)
    asked = health_path is not None
    if not result.ok:
        return ServerProbe(None, None, None, result.describe(), asked)
    try:
        found = json.loads(result.stdout.strip().splitlines()[-1])
        return ServerProbe(found["line"], found["health"], found["models"], str(found["error"]), asked)
    except (ValueError, IndexError, KeyError, TypeError):
        return ServerProbe(None, None, None, f"{transport.node.name}: unreadable probe output "
                                             f"{result.stdout[-200:]!r}", asked)
