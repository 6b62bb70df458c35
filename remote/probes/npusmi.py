"""`npu-smi` text -> records: the `info` table, the key/value sub-commands, and its error messages.

The table is read row by row with the regexes of the format reference (§1.6) rather than by column
offsets: widths differ between 910A (86/93 columns), 910B (98) and A3 (98/116), and the HBM pair
loses its space once the used value has five digits (`54592/ 65536`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from remote.probes import first_line, printable, unknown_reason

# The words npu-smi prints in the Health column (npu_common_get_health_state_str).
HEALTH_WORDS = ("OK", "Warning", "Alarm", "Critical", "UNKNOWN")

TITLE = re.compile(r"^\|\s*npu-smi\s+(\S+)\s+Version:\s+(\S+)\s*\|$")
# Line A of a chip: NPU id, name, health, power, temperature, then hugepages (absent on old 910A).
CHIP_HEAD = re.compile(
    r"^\|\s*(\d+)\s+(\S+)\s*\|\s*(\S+)\s*\|\s*([\d.]+|-|NA)\s+([\d.]+|-|NA)(?:\s+\d+\s*/\s*\d+)?\s*\|$")
# Line B: chip index (and Phy-ID on A3), bus id, AICore %, then one or two used/total pairs.
CHIP_BODY = re.compile(
    r"^\|\s*(\d+)(?:\s+(\d+))?\s*\|\s*([0-9A-Fa-f]{4}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]+|NA)\s*"
    r"\|\s*(\d+|-|NA)\s+((?:\d+\s*/\s*\d+\s*){1,2})\|$")
PAIR = re.compile(r"(\d+)\s*/\s*(\d+)")
PROCESS_ROW = re.compile(r"^\|\s*(\d+)\s+(\d+)\s*\|\s*(\d+)\s*\|\s*(.*?)\s*\|\s*(\d+)\s*\|$")
NO_PROCESS = re.compile(r"^\|\s*No running processes found in NPU\s+(\d+)\s*\|$")
SEPARATOR = re.compile(r"^\+[-=+]+\+$")


@dataclass(frozen=True)
class NpuProcess:
    npu_id: int
    chip: int
    pid: int
    name: str  # empty when npu-smi cannot resolve it (the process lives in another container)
    memory_mb: int


@dataclass(frozen=True)
class Npu:
    """One chip row pair of the table; an A3 NPU has two (chip 0 and 1), a 910B one."""

    id: int
    chip: int
    name: str
    health: str  # the word as printed, normally one of HEALTH_WORDS
    power_w: float | None  # None where npu-smi prints `-` (A3 die 1) or `NA`
    temp_c: float | None
    aicore_pct: float | None
    hbm_used_mb: int | None
    hbm_total_mb: int | None
    memory_used_mb: int | None  # None when printed as `0 / 0` (always so on 910B and A3)
    memory_total_mb: int | None
    bus_id: str | None
    phy_id: int | None = None  # A3 only: the die's physical id (`Chip  Phy-ID` header)


@dataclass(frozen=True)
class NpuSmiInfo:
    parsed: bool
    version: str | None  # driver version from the title line
    npus: tuple[Npu, ...]
    processes: tuple[NpuProcess, ...]
    problem: str
    raw: str
    # False on old 910A layouts, which have no process table: "no processes" is then unknown.
    processes_shown: bool = False
    # `[WARNING]...` lines printed after the table (e.g. the driver package is incomplete).
    warnings: tuple[str, ...] = ()


class _Unreadable(ValueError):
    """A line that breaks the table's shape; the whole output is then UNKNOWN."""


@dataclass
class _Table:
    """What has been read so far; only parse_npu_smi_info sees it."""

    section: str = "start"  # start -> devices -> processes
    version: str | None = None
    head: re.Match[str] | None = None  # line A waiting for its line B
    npus: list[Npu] = field(default_factory=list)
    processes: list[NpuProcess] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def parse_npu_smi_info(text: str) -> NpuSmiInfo:
    """The `npu-smi info` table; anything that does not fit it is parsed=False with the reason."""
    table = _Table()
    try:
        for number, line in enumerate(text.splitlines(), 1):
            _read_line(table, line.strip(), number)
        _check_complete(table)
    except _Unreadable as error:
        problem = unknown_reason(f"unreadable npu-smi table: {error}", text)
        return NpuSmiInfo(False, None, (), (), problem, text)
    return NpuSmiInfo(True, table.version, tuple(table.npus), tuple(table.processes), "", text,
                      table.section == "processes", tuple(table.warnings))


def _read_line(table: _Table, line: str, number: int) -> None:
    # Shell prompts, `...` elisions and trailing messages are not part of the table (§1.6).
    if line.startswith("[WARNING]"):
        table.warnings.append(printable(line))
    if not line.startswith(("|", "+")) or SEPARATOR.match(line):
        return
    if table.section == "start":
        _read_title(table, line, number)
    elif table.section == "devices":
        _read_device_row(table, line, number)
    else:
        _read_process_row(table, line, number)


def _read_title(table: _Table, line: str, number: int) -> None:
    title = TITLE.match(line)
    if title is None:
        raise _Unreadable(f"line {number} comes before the npu-smi title")
    table.version = title.group(2)
    table.section = "devices"


def _read_device_row(table: _Table, line: str, number: int) -> None:
    if "Process id" in line:
        if table.head is not None:
            raise _Unreadable(f"NPU {table.head.group(1)} has no second line")
        table.section = "processes"
        return
    body = CHIP_BODY.match(line)
    head = None if body is not None else CHIP_HEAD.match(line)
    if head is not None:
        if table.head is not None:
            raise _Unreadable(f"NPU {table.head.group(1)} has no second line")
        table.head = head
    elif body is not None:
        if table.head is None:
            raise _Unreadable(f"line {number} is a chip's second line without its first")
        _add_npu(table, table.head, body, number)
        table.head = None
    elif not _is_device_header(line):
        raise _Unreadable(f"line {number} is not an NPU row")


def _is_device_header(line: str) -> bool:
    return ("Name" in line and "Health" in line) or "Bus-Id" in line


def _add_npu(table: _Table, head: re.Match[str], body: re.Match[str], number: int) -> None:
    npu = _npu(head, body)
    if any((known.id, known.chip) == (npu.id, npu.chip) for known in table.npus):
        raise _Unreadable(f"line {number} repeats NPU {npu.id} chip {npu.chip}")
    table.npus.append(npu)


def _npu(head: re.Match[str], body: re.Match[str]) -> Npu:
    pairs = [(int(used), int(total)) for used, total in PAIR.findall(body.group(5))]
    memory = pairs[0] if len(pairs) == 2 else (0, 0)
    hbm_used, hbm_total = _reported(pairs[-1])
    memory_used, memory_total = _reported(memory)
    phy_id = body.group(2)
    return Npu(
        id=int(head.group(1)), chip=int(body.group(1)), name=head.group(2), health=head.group(3),
        power_w=_number(head.group(4)), temp_c=_number(head.group(5)), aicore_pct=_number(body.group(4)),
        hbm_used_mb=hbm_used, hbm_total_mb=hbm_total, memory_used_mb=memory_used,
        memory_total_mb=memory_total, bus_id=None if body.group(3) == "NA" else body.group(3),
        phy_id=None if phy_id is None else int(phy_id))


def _reported(pair: tuple[int, int]) -> tuple[int | None, int | None]:
    # A total of 0 means the driver does not report this memory (910B forces DDR to `0 / 0`).
    return (None, None) if pair[1] == 0 else pair


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:  # `-` (A3 die 1 power) or `NA`
        return None


def _read_process_row(table: _Table, line: str, number: int) -> None:
    row = PROCESS_ROW.match(line)
    if row is not None:
        npu_id, chip, pid, name, memory = row.groups()
        table.processes.append(NpuProcess(int(npu_id), int(chip), int(pid), printable(name), int(memory)))
    elif NO_PROCESS.match(line) is None:
        raise _Unreadable(f"line {number} is not a process row")


def _check_complete(table: _Table) -> None:
    if table.section == "start":
        raise _Unreadable("no npu-smi title line")
    if table.head is not None:
        raise _Unreadable(f"NPU {table.head.group(1)} has no second line")
    if not table.npus:
        raise _Unreadable("no NPU rows")


def parse_npu_smi_detail(text: str) -> dict[str, str]:
    """`npu-smi info -t health|usages|board|common -i N` (also `-l`): key -> value, {} when none.

    Lines are `\\t<key padded to 30 or 40> : <value>`, though copies often show spaces instead of
    the TAB. A key printed again for a further chip keeps its first value (the probe asks for one
    chip; in `-t common` the repeat is the board MCU). A line with an empty key continues the
    previous value, as `-t health` prints a second error's text.
    """
    values: dict[str, str] = {}
    last = ""
    for key, value in _key_values(text):
        if not key:
            if last and value:
                values[last] = f"{values[last]}; {value}" if values[last] else value
        elif key not in values:
            values[key] = value
            last = key
        else:
            last = ""
    return values


def _key_values(text: str) -> Iterator[tuple[str, str]]:
    for line in text.splitlines():
        stripped = printable(line).strip()
        if stripped.startswith(":"):
            yield "", stripped[1:].strip()
        elif " : " in stripped:
            key, _, value = stripped.partition(" : ")
            yield key.strip(), value.strip()
        elif stripped.endswith(" :"):  # a key whose value is empty
            yield stripped[:-2].strip(), ""


# npu-smi prints its own errors on stdout (§1.5); each with what it means for the node.
_ERRORS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"because the device is used\. ret is -?\d+"),
     "NPU held by another container (a non-privileged container owns the device)"),
    (re.compile(r"dcmi module initialize failed\. ret is -?\d+"), "NPU driver not loaded or not working"),
    (re.compile(r"npu get board type failed\. ret is -?\d+"), "NPU driver cannot read the board"),
    (re.compile(r"Failed to execute npu-smi .*\. ret is -?\d+\."), "npu-smi query failed"),
    (re.compile(r"Command or option is not found\."), "this npu-smi does not know the command"),
    (re.compile(r"Invalid (card|chip) id\."), "npu-smi was given an NPU that does not exist"),
    (re.compile(r"can be executed only by the root user"), "npu-smi needs root"),
    (re.compile(r"This device does not support querying"), "the NPU does not support this query"),
    (re.compile(r"There is no NPU card on this server\."), "no NPU found on this server"),
)
_NOT_FOUND = re.compile(r"command not found|No such file or directory|not found", re.IGNORECASE)


def npu_smi_error(stdout: str, stderr: str, exit_code: int | None) -> str | None:
    """A human reason when npu-smi failed (judged by its text, not only its exit code), else None.

    `exit_code` None means the exit code is unknown; the text alone then decides.
    """
    if exit_code == 127 or (exit_code not in (None, 0) and _NOT_FOUND.search(stderr)):
        return _quoted("npu-smi not installed (no Ascend driver package?)", stderr or stdout)
    if exit_code == 126:
        return _quoted("npu-smi cannot be executed", stderr or stdout)
    for line in (stdout + "\n" + stderr).splitlines():
        for pattern, reason in _ERRORS:
            if pattern.search(line):
                return f"{reason}: {printable(line.strip())[:160]}"
    if exit_code not in (None, 0):
        return _quoted(f"npu-smi exited {exit_code}", stderr + "\n" + stdout)
    if exit_code == 0 and not (stdout.strip() or stderr.strip()):
        return "npu-smi printed nothing (Huawei's fault diagnosis reads this as a missing driver)"
    return None


_WRAPPER_SAID = "timeout: failed to run command"


def _quoted(reason: str, text: str) -> str:
    line = first_line(text)
    if line.startswith(_WRAPPER_SAID):  # the probe runs each tool under coreutils' `timeout`
        line = line.removeprefix("timeout: ")
    return f"{reason}: {line}" if line else reason
