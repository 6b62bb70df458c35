"""The hardware stand-ins: fake npu-smi / hccn_tool replaying a chosen recorded state.

The stand-ins live in tests/standins (beside this package); each host gets a copy in its
state_dir/bin, which its anchor mounts at /usr/local/sbin.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

STANDINS = Path(__file__).resolve().parent.parent / "standins"
STANDIN_TOOLS = ("npu-smi", "hccn_tool")
STANDIN_FILES = ("standin.sh",)
DEFAULT_HARDWARE = "healthy"
STATE_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*")  # a folder name in standins/recordings


def install_standins(bin_dir: Path) -> None:
    """Copy the stand-ins and their recordings into bin_dir, reporting DEFAULT_HARDWARE."""
    shutil.copytree(STANDINS / "recordings", bin_dir / "recordings")
    for name in STANDIN_FILES:
        shutil.copy2(STANDINS / name, bin_dir / name)
    apply_hardware(bin_dir, DEFAULT_HARDWARE)


def apply_hardware(bin_dir: Path, state: str) -> None:
    """Make the stand-ins in bin_dir report a recorded state; the state's tools may be absent."""
    folder = bin_dir / "recordings" / state
    if not STATE_PATTERN.fullmatch(state) or not folder.is_dir():
        known = sorted(p.name for p in (bin_dir / "recordings").iterdir() if p.is_dir())
        raise ValueError(f"no hardware state {state!r}; known: {', '.join(known)}")
    absent = _absent_tools(folder / "absent")
    for tool in STANDIN_TOOLS:
        if tool in absent:
            (bin_dir / tool).unlink(missing_ok=True)
        else:
            _replace_file(bin_dir / tool, (STANDINS / tool).read_bytes(), mode=0o755)
    _replace_file(bin_dir / "hardware", f"{state}\n".encode(), mode=0o644)


def _absent_tools(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {line for line in lines if line}


def _replace_file(path: Path, data: bytes, mode: int) -> None:
    """Write atomically: a stand-in running meanwhile sees the old file or the new, never half."""
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_bytes(data)
    temporary.chmod(mode)
    temporary.replace(path)
