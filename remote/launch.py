"""Placing, starting and stopping a job's ranks on a node, through the Transport seam.

Every script here is a constant; the job directory, job id and numbers reach it as positional
parameters, never pasted into its text. A job directory appears whole or not at all (staged under a
temporary name, renamed). The run starts under `setsid`, detached from the SSH session, with its pid
in `pid`, and its exit status lands in `exit_code` when it ends: closing the console never stops a
run, and any console can find out later what became of it (remote/jobstate.py reads those files).
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from remote.transport import RunResult, Transport, expand_home

_HOME = expand_home("dir")

STAGE_SCRIPT = "set -eu\ndir=$1\n" + _HOME + r"""
if [ -e "$dir" ]; then echo "job directory already exists: $dir" >&2; exit 3; fi
parent=$(dirname -- "$dir")
# a full disk, a read-only workdir (any write error) is said with the path, the cause without the tool's
# name, and the room left; the trap removes what was written, so a half-written job directory is never
# there to be used
unwritable() {
    cause=$(printf '%s\n' "$1" | head -n 1)
    free=$(df -Pk -- "$parent" 2>/dev/null | awk 'NR == 2 { print $4 }')
    echo "could not write the job directory $dir: ${cause#*: }${free:+ ($free KiB free there)}" >&2
    exit 4
}
said=$(mkdir -p -- "$parent" 2>&1) || unwritable "$said"
staging=$(mktemp -d "$parent/.staging.XXXXXX" 2>&1) || unwritable "$staging"
trap 'rm -rf -- "$staging"' EXIT
said=$(tar -x -f - -C "$staging" 2>&1) || unwritable "${said:-tar: tar exited $?}"
said=$({ mkdir -p -- "$staging/logs" && chmod 755 -- "$staging"; } 2>&1) || unwritable "$said"
# -n: never onto what appeared at $dir since the check above (mv -T would replace an empty directory);
# coreutils 9.1 renames with RENAME_NOREPLACE, and a skipped rename leaves $staging (some versions exit
# 1 for it, others 0: whether $staging is left is what says)
said=$(mv -n -T -- "$staging" "$dir" 2>&1) || :
if [ -e "$staging" ]; then
    if [ -e "$dir" ] || [ -L "$dir" ]; then echo "job directory already exists: $dir" >&2; exit 3; fi
    unwritable "${said:-mv: the staging directory could not be renamed}"
fi
trap - EXIT
echo "$dir"
"""

# Removes only what `stage` makes: a directory (not a symlink to one) named <...>/jobs/<job id>, which no
# start has begun in (START_SCRIPT writes start_begun before anything runs, pid once it runs).
UNSTAGE_SCRIPT = "set -eu\ndir=$1 job=$2\n" + _HOME + r"""
refuse() { echo "not removed: $dir $1" >&2; exit 2; }
case $job in ''|.|..|*/*) refuse "(the job id given, '$job', is not one)" ;; esac
case $dir in jobs/"$job"|*/jobs/"$job") ;; *) refuse "is not a job directory (<workdir>/jobs/$job)" ;; esac
case /$dir/ in */../*) refuse "goes up a directory (..)" ;; esac
[ -L "$dir" ] && refuse "is a symbolic link"
[ -e "$dir" ] || exit 0
[ -d "$dir" ] || refuse "is not a directory"
if [ -e "$dir/start_begun" ] || [ -e "$dir/pid" ]; then
    echo "not removed: a run was started (or is starting) in $dir" >&2; exit 3
fi
rm -rf -- "$dir"
"""

# grep -z reads /proc/PID/environ as NUL-separated entries: one process scans the whole table.
_MARKED = r"""
marked() {
    grep -lzxF "ASCEND_CONSOLE_JOB=$marker" /proc/[0-9]*/environ 2>/dev/null \
        | sed -n 's#^/proc/\([0-9]*\)/environ$#\1#p' | tr '\n' ' '
}
"""

# The wrapper writes exit_code only once no process of the job is left: msrun starts its ranks in
# sessions of their own, and a run whose msrun died while its ranks live on is not over.
START_SCRIPT = "dir=$1 marker=$2\n" + _HOME + r"""
cd -- "$dir" || exit 3
[ -e pid ] && { echo "already started: $dir/pid exists" >&2; exit 3; }
# before anything runs: from now on the directory is never unstaged (pid is only there once it runs)
: > start_begun || exit 3
setsid sh -c '
    sh ./launch.sh > console.log 2>&1
    code=$?
    while grep -qzxF "ASCEND_CONSOLE_JOB=$1" /proc/[0-9]*/environ 2>/dev/null; do sleep 2; done
    echo "$code" > exit_code.part && mv exit_code.part exit_code' wrapper "$marker" \
    < /dev/null > /dev/null 2>> console.log &
echo $! > pid
date +%s > started_at
echo $!
"""

STOP_SCRIPT = "dir=$1 marker=$2 grace=$3\n" + _HOME + _MARKED + r"""
[ -d "$dir" ] && date +%s > "$dir/stop_requested"
found=$(marked)
echo "found: $found"
# Every stop keeps the job's processes it found on the node: one gone since can still hold an NPU
# (npu-smi lists it for a while), and the next stop must still know it as the job's. A pid alive
# now and unmarked has been reused by another process.
earlier=
if [ -d "$dir" ]; then
    for p in $(cat "$dir/stop_found" 2>/dev/null); do
        case $p in *[!0-9]*) ;; *) [ -d "/proc/$p" ] || earlier="$earlier $p" ;; esac
    done
    [ -z "$found" ] || printf '%s\n' $found >> "$dir/stop_found"
fi
echo "earlier:$earlier"
[ -n "$found" ] && kill -s TERM $found 2>/dev/null
deadline=$(( $(date +%s) + grace ))
while [ "$(date +%s)" -lt "$deadline" ] && [ -n "$(marked)" ]; do sleep 1; done
left=$(marked)
echo "killed: $left"
[ -n "$left" ] && kill -s KILL $left 2>/dev/null && sleep 1
# the wrapper notices within seconds and writes exit_code; signal its group only if it does not,
# and only while its pid can still be ours (a plain number above 1, no exit_code yet)
wrapper=$(head -c 20 "$dir/pid" 2>/dev/null)
case $wrapper in ''|*[!0-9]*) wrapper= ;; *) [ "$wrapper" -gt 1 ] || wrapper= ;; esac
for _ in 1 2 3 4 5 6; do
    [ -e "$dir/exit_code" ] && break
    sleep 1
done
if [ -n "$wrapper" ] && [ ! -e "$dir/exit_code" ] && kill -s 0 -- "-$wrapper" 2>/dev/null; then
    kill -s KILL -- "-$wrapper" 2>/dev/null
    echo 143 > "$dir/exit_code"
fi
echo "remaining: $(marked)"
# What this login cannot see is not verified: a run not yet over whose launcher's tree holds processes
# of another user (their environment, and so the marker, cannot be read), or whose launcher is hidden
# from this user altogether (/proc mounted with hidepid: kill says "not permitted", /proc has no entry).
if [ -n "$wrapper" ] && [ ! -e "$dir/exit_code" ]; then
    tree=$(ps -e -o pid= -o ppid= 2>/dev/null | awk -v root="$wrapper" '
        { parent[$1] = $2 }
        END { for (p in parent) { q = p; n = 0
                  while (q != root && (q in parent) && n < 64) { q = parent[q]; n++ }
                  if (q == root) printf "%s ", p } }')
    hidden=
    for p in $tree; do [ -r "/proc/$p/environ" ] || hidden="$hidden $p"; done
    echo "unreadable:$hidden"
    if [ ! -d "/proc/$wrapper" ] && kill -s 0 "$wrapper" 2>&1 | grep -q ermit; then
        echo "launcher hidden: $wrapper"
    fi
fi
"""

PORT_SCRIPT = r"""
import socket, sys
for port in range(int(sys.argv[1]), int(sys.argv[1]) + int(sys.argv[2])):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError:
            continue
    print(port)
    break
"""

TAIL_SCRIPT = "dir=$1\n" + _HOME + 'tail -n 20 -- "$dir/console.log" 2>/dev/null\n'


@dataclass(frozen=True)
class StopReport:
    node: str
    found: tuple[int, ...]
    """Processes of the job when the stop began."""
    killed: tuple[int, ...]
    """Those still there after the grace period, sent SIGKILL."""
    remaining: tuple[int, ...]
    """Still there at the end: a stop that did not stop."""
    failure: RunResult | None = None
    """The node could not be asked (unreachable, timed out...)."""
    earlier: tuple[int, ...] = ()
    """Processes of the job an earlier stop found, gone since: npu-smi may still list them."""
    on_npus: tuple[int, ...] = ()
    """Processes of the job npu-smi still shows on the node's NPUs after the stop."""
    unverified: tuple[str, ...] = ()
    """What could not be checked (processes whose environment this login cannot read, an npu-smi that
    could not be read): the job may still run there, so the stop is not reported done."""

    @property
    def ok(self) -> bool:
        return self.failure is None and not self.remaining and not self.on_npus and not self.unverified


def job_archive(files: dict[str, bytes], executable: Iterable[str] = (), *, mtime: float) -> bytes:
    """A tar of `files` (relative path -> content), each modified at `mtime` (the staging time: tar
    gives a file without one 1970), deterministic: the same job at the same time gives the same bytes."""
    buffer = io.BytesIO()
    modes = set(executable)
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o755 if name in modes else 0o644
            info.mtime = int(mtime)
            archive.addfile(info, io.BytesIO(files[name]))
    return buffer.getvalue()


def code_files(root: Path) -> dict[str, bytes]:
    """What a node needs to run `model/train.py` and `model/predict.py` without this project: the
    `model` package, which imports nothing else of ours."""
    return {str(path.relative_to(root)): path.read_bytes()
            for path in sorted((root / "model").rglob("*.py")) if "__pycache__" not in path.parts}


def stage(transport: Transport, job_dir: str, archive: bytes, *, timeout: float) -> RunResult:
    """Unpack the job's files into `job_dir` (which must not exist yet), atomically."""
    return transport.run(["sh", "-c", STAGE_SCRIPT, "stage", job_dir], stdin=archive, timeout=timeout)


def unstage(transport: Transport, job_dir: str, job_id: str, *, timeout: float) -> RunResult:
    """Remove the job directory `stage` made for `job_id`, before any start began in it (another node
    failed to stage). Exit 2: `job_dir` is not that job's directory (nothing removed); 3: a start began."""
    return transport.run(["sh", "-c", UNSTAGE_SCRIPT, "unstage", job_dir, job_id], timeout=timeout)


def start(transport: Transport, job_dir: str, marker: str, *, timeout: float) -> RunResult:
    """Start launch.sh detached; stdout is the pid of its session leader (= its process group).
    `marker` is the value launch.sh gives ASCEND_CONSOLE_JOB: the run is over when none carries it."""
    return transport.run(["sh", "-c", START_SCRIPT, "start", job_dir, marker], timeout=timeout)


def console_tail(transport: Transport, job_dir: str, *, timeout: float) -> str:
    """The last lines the run printed before msrun's logs took over (why it failed to start)."""
    result = transport.run(["sh", "-c", TAIL_SCRIPT, "tail", job_dir], timeout=timeout)
    return result.stdout.strip() if result.ok else ""


def stop(transport: Transport, job_dir: str, marker: str, *, grace: int, timeout: float) -> StopReport:
    """SIGTERM every process of the job (they save and exit), SIGKILL what is left after `grace`
    seconds, then the launcher; report what was found, killed and (should never be) left."""
    result = transport.run(["sh", "-c", STOP_SCRIPT, "stop", job_dir, marker, str(grace)],
                           timeout=timeout)
    if not result.ok:
        return StopReport(transport.node.name, (), (), (), failure=result)
    return parse_stop_report(transport.node.name, result.stdout)


def parse_stop_report(node: str, text: str) -> StopReport:
    fields: dict[str, tuple[int, ...]] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = tuple(int(word) for word in value.split() if word.isdigit())
    unverified = []
    if unreadable := fields.get("unreadable"):
        unverified.append(f"cannot read the environment of {_pids(unreadable)} under the job's launcher "
                          "(another user's): the job's marker cannot be checked there")
    if hidden := fields.get("launcher hidden"):
        unverified.append(f"the job's launcher ({_pids(hidden)}) is hidden from this login "
                          "(another user's, /proc hidepid): its ranks cannot be seen")
    return StopReport(node, fields.get("found", ()), fields.get("killed", ()), fields.get("remaining", ()),
                      earlier=fields.get("earlier", ()), unverified=tuple(unverified))


def _pids(pids: tuple[int, ...]) -> str:
    return f"process{'es' if len(pids) > 1 else ''} {' '.join(map(str, pids))}"


@dataclass(frozen=True)
class PortCheck:
    port: int | None
    """The first free port of the span, or None."""
    failure: str | None = None
    """Why the node could not answer (then `port` is None and nothing is known about the ports)."""


def free_port(transport: Transport, python: str, first: int, *, span: int = 50,
              timeout: float) -> PortCheck:
    """The first port from `first` that nothing listens on at the node (the msrun master)."""
    result = transport.run([python, "-c", PORT_SCRIPT, str(first), str(span)], timeout=timeout)
    if not result.ok:
        said = result.message or (result.stderr.strip().splitlines() or [f"exit {result.exit_code}"])[-1]
        return PortCheck(None, f"`{python} -c <port check>` on {transport.node.name}: {said}")
    text = result.stdout.strip()
    return PortCheck(int(text) if text.isdigit() else None)
