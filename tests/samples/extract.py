"""One-off: cut the format reference's samples, byte for byte, into tests/samples/ and the stand-ins.

    python tests/samples/extract.py /work/shared/reference/ascend-formats.md

The reference lives outside the repository, so the cut files are committed and this script stays
as the record of where each came from: a line range of the reference (1-based, inclusive) inside a
fenced block. Command lines a copy shows (`$ npu-smi ...`, `/usr/local/bin/npu-smi ...`) are left
out of key/value and hccn samples, which hold what the tool printed; the npu-smi tables are whole
blocks, as a terminal shows them (the 910B1 one keeps its `$ npu-smi info` prompt).
It also writes README.md here and the stand-in recordings listed in RECORDINGS.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECORDINGS_DIR = HERE.parent / "standins" / "recordings"

# (file under tests/samples, first line, last line, tag, what and where from)
SAMPLES: tuple[tuple[str, int, int, str, str], ...] = (
    ("npu-smi-info/910b2-idle-23.0.3.txt", 136, 184, "real",
     "§1.3 910B2 x8, driver 23.0.3, idle (vllm-project/vllm-ascend issue 901)"),
    ("npu-smi-info/910b3-busy-24.1.rc2.txt", 191, 239, "real",
     "§1.3 910B3 x8, 8 busy processes with empty names, 5-digit HBM (vllm-ascend issue 250)"),
    ("npu-smi-info/910b4-800ia2-idle-25.0.rc1.1.txt", 246, 294, "real",
     "§1.3 910B4 x8 on an Atlas 800I A2, idle (blog post, 2025-07-17)"),
    ("npu-smi-info/910b4-mixed-24.1.rc3.txt", 301, 349, "fixture",
     "§1.3 910B4 x8, busy and idle NPUs (Huawei xpu-collector test `npuSmiInfo910B`)"),
    ("npu-smi-info/910b1-elided-23.0.rc2.txt", 356, 373, "real",
     "§1.3 910B1, rows elided with `...` by the author (ArthurChiao blog)"),
    ("npu-smi-info/910b2-named-24.1.rc2.1.txt", 380, 428, "real",
     "§1.3 910B2 x8, busy with named processes `VLLMWorker_DP` (vllm-ascend issue 4661)"),
    ("npu-smi-info/910b2-idle-25.2.0.txt", 435, 483, "real",
     "§1.3 910B2 x8, driver 25.2.0, idle (vllm-ascend issue 4284)"),
    ("npu-smi-info/a3-ascend910-24.1.rc3.3.txt", 493, 569, "fixture",
     "§1.3 Atlas A3 `Ascend910`, two dies per NPU, die 1 power `-` (xpu-collector test `npuSmiInfo910C`)"),
    ("npu-smi-info/910a-1.8.21.txt", 576, 605, "real",
     "§1.3 old 910A, npu-smi 1.8.21 / driver 20.2.2.spc001, 86 columns, no process table (haicgu docs)"),
    ("npu-smi-detail/usages-910b1.txt", 651, 666, "real",
     "§1.4 `-t usages -i 0` on a 910B1 (ArthurChiao blog)"),
    ("npu-smi-detail/common-910b1.txt", 673, 687, "real",
     "§1.4 `-t common -i 1`, second block is the board MCU (ArthurChiao blog)"),
    ("npu-smi-detail/board-910a-23.0.5.txt", 695, 710, "fixture",
     "§1.4 `-t board` on 910A with the real leading TAB (Ascend/mind-cluster faultdiag test)"),
    ("npu-smi-detail/board-910b2c-25.5.2.txt", 717, 729, "fixture",
     "§1.4 `-t board` on 910B2C, driver 25.5.2, TAB shown as 8 spaces (CMDB collector Go test)"),
    ("npu-smi-detail/health-ok.txt", 737, 739, "real",
     "§1.4 `-t health`, de-indented by the doc (Ascend/mind-cluster faultdiag user guide)"),
    ("npu-smi-detail/ecc.txt", 742, 757, "real", "§1.4 `-t ecc`, keys padded to 40 (same user guide)"),
    ("npu-smi-detail/list-800ia2.txt", 769, 793, "real", "§1.4 `-l` on the Atlas 800I A2 (blog post)"),
    ("npu-smi-detail/map-800ia2.txt", 804, 820, "real",
     "§1.4 `-m` on the Atlas 800I A2: a table, not key/value"),
    ("npu-smi-errors/source-formats.txt", 853, 863, "source",
     "§1.5 the printf formats of npu-smi's own messages (`%d`, `%s` left in)"),
    ("npu-smi-errors/dcmi-8020.txt", 873, 873, "real", "§1.5 the -8020 device-in-use line"),
    ("hccn/yuanrong-expected.txt", 938, 941, "real",
     "§2 expected healthy output of `-ip -g`, `-link -g`, `-net_health -g` (Yuanrong TransferEngine doc)"),
    ("hccn/ip-yuanrong.txt", 938, 939, "real", "§2 the `-ip -g` part of the above"),
    ("hccn/net-health-success.txt", 947, 947, "real", "§2 MindSpore rank-table tutorial"),
    ("hccn/net-health-fault.txt", 951, 951, "real", "§2 MindSpore rank-table tutorial"),
    ("hccn/net-health-init.txt", 959, 959, "real", "§2 Huawei FaultDiag user guide"),
    ("hccn/link-up.txt", 962, 962, "real", "§2 Huawei FaultDiag user guide"),
    ("hccn/ip-masked.txt", 992, 993, "real", "§2 Huawei FaultDiag user guide, address masked `10.xx.xx.10`"),
    ("hccn/link-stat.txt", 1008, 1013, "real", "§2 `-link_stat -g`, Huawei FaultDiag user guide"),
    ("hccn/ip-arthurchiao.txt", 1020, 1021, "real", "§2 `-i 3 -ip -g` on a 910B1 (ArthurChiao blog)"),
)

# Text the reference gives only inside a table cell (§2, line 911/912), cut out of the backticks.
LINK_CELL_LINE = 911
NET_HEALTH_CELL_LINE = 912

# (recording under tests/standins/recordings, sample it copies)
RECORDINGS: tuple[tuple[str, str], ...] = (
    ("healthy/npu-smi-info-t-board.txt", "npu-smi-detail/board-910b2c-25.5.2.txt"),
    ("healthy/npu-smi-info-t-health.txt", "npu-smi-detail/health-ok.txt"),
    ("healthy/npu-smi-info-t-usages.txt", "npu-smi-detail/usages-910b1.txt"),
    ("healthy/hccn-ip.txt", "hccn/ip-yuanrong.txt"),
    ("busy/npu-smi-info.txt", "npu-smi-info/910b3-busy-24.1.rc2.txt"),
    ("link-down/hccn-link.txt", "hccn/source-link-down.txt"),
    ("link-down/hccn-net-health.txt", "hccn/net-health-fault.txt"),
    ("old-910/npu-smi-info.txt", "npu-smi-info/910a-1.8.21.txt"),
    ("old-910/npu-smi-info-t-board.txt", "npu-smi-detail/board-910a-23.0.5.txt"),
    ("a3/npu-smi-info.txt", "npu-smi-info/a3-ascend910-24.1.rc3.3.txt"),
)

# The one derived recording: the healthy table with two Health cells changed (same width, %-13s).
ALARM_SOURCE = "npu-smi-info/910b2-idle-23.0.3.txt"
ALARM_CHANGES = {
    "| 2     910B2               | OK            |": "| 2     910B2               | Alarm         |",
    "| 5     910B2               | OK            |": "| 5     910B2               | Warning       |",
}


def fenced(lines: list[str], first: int, last: int) -> bool:
    """True when lines first..last (1-based) sit inside one fenced block and hold no fence."""
    opening = [n for n in range(first - 1, 0, -1) if lines[n - 1].startswith("```")]
    inside = all(not lines[n - 1].startswith("```") for n in range(first, last + 1))
    return inside and bool(opening) and lines[opening[0] - 1] != "```"


def cut(lines: list[str], first: int, last: int) -> str:
    if not fenced(lines, first, last):
        raise SystemExit(f"lines {first}-{last} are not inside one fenced block")
    return "".join(line + "\n" for line in lines[first - 1:last])


def backticked(line: str) -> list[str]:
    return re.findall(r"`([^`]*)`", line)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())


def main(reference: Path) -> None:
    lines = reference.read_text(encoding="utf-8").split("\n")
    texts = {name: cut(lines, first, last) for name, first, last, _, _ in SAMPLES}
    texts["hccn/source-link-down.txt"] = backticked(lines[LINK_CELL_LINE - 1])[-1] + "\n"
    words = backticked(lines[NET_HEALTH_CELL_LINE - 1])[2:]
    texts["hccn/net-health-words.txt"] = "".join(word + "\n" for word in words)
    for name, text in texts.items():
        write(HERE / name, text)
    for recording, sample in RECORDINGS:
        write(RECORDINGS_DIR / recording, texts[sample])
    alarm = texts[ALARM_SOURCE]
    for before, after in ALARM_CHANGES.items():
        assert alarm.count(before) == 1, before
        alarm = alarm.replace(before, after)
    assert (RECORDINGS_DIR / "healthy" / "npu-smi-info.txt").read_text() == texts[ALARM_SOURCE]
    write(RECORDINGS_DIR / "alarm" / "npu-smi-info.txt", alarm)
    write(HERE / "README.md", readme())


def readme() -> str:
    rows = "".join(f"| `{name}` | {first}-{last} | {tag} | {what} |\n"
                   for name, first, last, tag, what in SAMPLES)
    return (
        "# Samples from the format reference\n\n"
        "Cut byte for byte from `/work/shared/reference/ascend-formats.md` by `extract.py` (run once;\n"
        "its docstring says how). Tags as in the reference: **real** = captured on an Ascend machine and\n"
        "published, **fixture** = someone's test data, probably real, **source** = quoted from the\n"
        "printing code. Do not edit these files; a new sample is a new file.\n\n"
        "| file | reference lines | tag | what |\n|---|---|---|---|\n" + rows +
        f"| `hccn/source-link-down.txt` | {LINK_CELL_LINE} | source | §2 table cell `link status: DOWN` |\n"
        f"| `hccn/net-health-words.txt` | {NET_HEALTH_CELL_LINE} | source | §2 the `-net_health` words, "
        "one a line |\n"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
