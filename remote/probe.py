"""One round trip per node collects everything the health model needs, as marked sections."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from remote.inventory import NodeSpec
from remote.transport import RunResult, Transport, expand_home

# The script is a constant: everything node-specific arrives as positional parameters, so no
# cluster-file text is ever pasted into shell code. Each section ends with its exit code.
# A "full" probe also reads what rarely changes (versions, firmware, NIC addresses, kernel);
# refreshes skip it: starting Python for the MindSpore version alone costs more than the rest.
# The report goes to a file and is sent in one piece at the end (a few SSH packets instead of
# dozens: less work for the console), and a watchdog ends the probe at its budget, so even with
# hung tools what was read still arrives, before the console's own limit. Devices are the
# /dev/davinciN the node has (a container may hold only 4-7), else 0..devices-1, probed in
# parallel: hccn_tool is slow on real hardware.
PROBE_SCRIPT = r"""
marker=$1 workdir=$2 devices=$3 backend=$4 container=$5 python=$6 depth=$7 limit=$8 budget=$9
PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/local/Ascend/driver/tools"
export PATH LC_ALL=C
""" + expand_home("workdir") + r"""
section() {
  name=$1; shift
  printf '%s begin %s\n' "$marker" "$name"
  timeout -k 1 "$limit" "$@" 2>&1
  printf '\n%s end %s %s\n' "$marker" "$name" "$?"
}
# The processes of console jobs (remote/probes/jobs.py): one grep reads every environment; -s: a
# process gone or not ours to read is skipped.
jobs='grep -sazxHE "ASCEND_CONSOLE_JOB=[^[:cntrl:]]+|RANK_ID=[0-9]+" /proc/[0-9]*/environ | tr "\0" "\n"'
existing() { d=$1; while [ ! -e "$d" ] && [ "$d" != / ]; do d=$(dirname "$d"); done; printf %s "$d"; }
device_ids() {
  ids=
  for dev in /dev/davinci[0-9]*; do [ -e "$dev" ] && ids="$ids ${dev#/dev/davinci}"; done
  if [ -z "$ids" ]; then i=0; while [ "$i" -lt "$devices" ]; do ids="$ids $i"; i=$((i + 1)); done; fi
  printf %s "$ids"
}
links() {
  for i in $(device_ids); do
    {
      section "link $i" hccn_tool -i "$i" -link -g
      section "net_health $i" hccn_tool -i "$i" -net_health -g
      [ "$depth" = full ] && section "ip $i" hccn_tool -i "$i" -ip -g
    } > "$out.link$i" &
  done
  wait
  for i in $(device_ids); do cat "$out.link$i"; done
}
probe() {
  section clock date +%s.%N
  section meminfo cat /proc/meminfo
  section loadavg cat /proc/loadavg
  section df df -Pk "$(existing "$workdir")"
  if [ "$depth" = full ]; then
    section uname uname -n -r -m
    section nproc nproc
  fi
  [ "$backend" = npu ] && section npu-smi npu-smi info
  # after npu-smi: a process it lists that still lives is found here
  section jobs sh -c "$jobs"
  if [ "$backend" = npu ]; then
    [ "$depth" = full ] && section board npu-smi info -t board -i "$(device_ids | cut -d' ' -f2)"
    links
  fi
  [ -n "$container" ] && section docker docker ps -a --filter "name=^$container\$" \
    --format '{{.Names}}\t{{.State}}\t{{.Status}}'
  if [ "$depth" = full ]; then
    version='import importlib.metadata as m; print(m.version("mindspore"))'
    if [ -n "$container" ]; then
      section mindspore docker exec "$container" "$python" -c "$version"
    else
      section mindspore "$python" -c "$version"
    fi
  fi
  section clock_end date +%s.%N
}
out=$(mktemp) || exit 1
probe > "$out" 2>&1 &
worker=$!
# the watchdog takes its sleep down with it, and holds none of our output open
(trap 'kill "$timer" 2>/dev/null; exit 0' TERM
 sleep "$budget" & timer=$!; wait "$timer" && kill -TERM "$worker") >/dev/null 2>&1 &
watchdog=$!
wait "$worker"
kill "$watchdog" 2>/dev/null
cat "$out"
rm -f "$out" "$out".link*
"""


# Seconds between the node's probe budget and the console's limit for the whole round trip.
BUDGET_MARGIN = 3.0
# Seconds one probe command (npu-smi, hccn_tool, ...) may take before it counts as hung.
TOOL_TIMEOUT = 10


@dataclass(frozen=True)
class Section:
    """What one probe command printed (stdout and stderr together) and how it exited."""

    name: str
    text: str
    exit_code: int | None


@dataclass(frozen=True)
class ProbeOutput:
    """A node's raw probe result: the sections, or the reason there are none."""

    node: str
    sections: dict[str, Section]
    result: RunResult
    sent_at: float
    received_at: float
    full: bool = True

    def text(self, name: str) -> str:
        section = self.sections.get(name)
        return section.text if section else ""

    def exit_code(self, name: str) -> int | None:
        section = self.sections.get(name)
        return section.exit_code if section else None


def probe_argv(node: NodeSpec, marker: str, *, full: bool = True, budget: float = 25.0) -> list[str]:
    """`budget`: seconds after which the node stops probing and sends what it has."""
    return [
        "sh", "-c", PROBE_SCRIPT, "ascend-probe", marker, node.workdir, str(node.devices),
        node.backend, node.container or "", node.python, "full" if full else "quick",
        f"{TOOL_TIMEOUT:g}", f"{budget:g}",
    ]


def run_probe(transport: Transport, *, timeout: float | None = None, full: bool = True) -> ProbeOutput:
    """Run the probe script on one node. A node that cannot be reached comes back with no sections."""
    marker = f"@@ascend-{secrets.token_hex(6)}"
    limit = timeout if timeout is not None else transport.node.command_timeout
    # the node stops probing a little before the console would give up, and sends what it has
    budget = max(1.0, limit - BUDGET_MARGIN)
    sent_at = time.time()
    argv = probe_argv(transport.node, marker, full=full, budget=budget)
    result = transport.run(argv, timeout=limit)
    received_at = time.time()
    sections = split_sections(result.stdout, marker) if result.error is None else {}
    return ProbeOutput(transport.node.name, sections, result, sent_at, received_at, full)


def split_sections(text: str, marker: str) -> dict[str, Section]:
    """Cut the script's output at its markers; a section cut short keeps what it printed."""
    pattern = re.compile(
        rf"^{re.escape(marker)} begin (?P<name>[^\n]+)\n(?P<body>.*?)"
        rf"(?:\n{re.escape(marker)} end (?P=name) (?P<code>\d+)$|\Z)",
        re.MULTILINE | re.DOTALL,
    )
    sections: dict[str, Section] = {}
    for match in pattern.finditer(text):
        code = match.group("code")
        sections[match.group("name")] = Section(
            match.group("name"), match.group("body"), int(code) if code is not None else None)
    return sections
