"""npu-smi parsers against every npu-smi sample of the format reference, and mangled copies of them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remote.probes import first_line
from remote.probes.npusmi import (
    HEALTH_WORDS,
    Npu,
    NpuProcess,
    NpuSmiInfo,
    npu_smi_error,
    parse_npu_smi_detail,
    parse_npu_smi_info,
)
from tests.probes_samples import mangled, recording, sample, samples

TABLES = samples("npu-smi-info")
DETAILS = samples("npu-smi-detail")
RECORDED_TABLES = ["healthy", "alarm", "busy", "old-910", "a3"]


def table(name: str) -> NpuSmiInfo:
    info = parse_npu_smi_info(sample(f"npu-smi-info/{name}"))
    assert info.parsed, info.problem
    return info


def npu(info: NpuSmiInfo, npu_id: int, chip: int = 0) -> Npu:
    return next(n for n in info.npus if (n.id, n.chip) == (npu_id, chip))


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_reference_table_parses_with_its_title_version(name: str):
    info = parse_npu_smi_info(TABLES[name])
    assert info.parsed and info.problem == ""
    assert info.version is not None and f"Version: {info.version}" in TABLES[name]
    assert info.raw == TABLES[name]
    assert all(n.health in HEALTH_WORDS and n.hbm_total_mb for n in info.npus)


def test_idle_910b2_reads_every_column():
    info = table("910b2-idle-23.0.3.txt")
    assert info.version == "23.0.3"
    assert [n.id for n in info.npus] == list(range(8))
    assert npu(info, 0) == Npu(0, 0, "910B2", "OK", 96.9, 40.0, 0.0, 3334, 65536, None, None, "0000:C1:00.0")
    last = npu(info, 7)
    assert (last.hbm_used_mb, last.bus_id, last.power_w) == (3336, "0000:42:00.0", 90.3)
    # the table was printed and said "No running processes": idle, known
    assert info.processes == () and info.processes_shown


def test_busy_910b3_reads_five_digit_hbm_and_processes_with_empty_names():
    info = table("910b3-busy-24.1.rc2.txt")
    assert (npu(info, 0).hbm_used_mb, npu(info, 0).hbm_total_mb) == (54592, 65536)  # `54592/ 65536`
    assert [npu(info, i).hbm_used_mb for i in (2, 4, 5)] == [54590, 53395, 53322]
    assert [p.pid for p in info.processes] == [
        277624, 277626, 277628, 277630, 1007953, 1008594, 1008595, 1008596]
    assert {p.name for p in info.processes} == {""}
    assert info.processes[4] == NpuProcess(4, 0, 1007953, "", 50080)
    assert info.processes[7].memory_mb == 50079


def test_mixed_910b4_tells_busy_from_idle_npus():
    info = table("910b4-mixed-24.1.rc3.txt")
    assert (npu(info, 6).power_w, npu(info, 6).aicore_pct, npu(info, 6).hbm_used_mb) == (263.2, 82.0, 30759)
    assert (npu(info, 7).aicore_pct, npu(info, 7).temp_c, npu(info, 7).hbm_total_mb) == (68.0, 47.0, 32768)
    assert npu(info, 2).hbm_used_mb == 2818
    assert [(p.npu_id, p.pid, p.memory_mb) for p in info.processes] == [
        (0, 582939, 19502), (1, 695171, 19498), (6, 99910, 27977), (7, 99976, 27977)]


def test_named_processes_keep_their_name():
    info = table("910b2-named-24.1.rc2.1.txt")
    assert info.version == "24.1.rc2.1"
    assert {p.name for p in info.processes} == {"VLLMWorker_DP"}
    assert info.processes[6] == NpuProcess(6, 0, 784787, "VLLMWorker_DP", 30113)
    assert npu(info, 0).hbm_used_mb == 33429


def test_other_910b_tables():
    idle = table("910b2-idle-25.2.0.txt")
    assert (idle.version, npu(idle, 0).power_w, npu(idle, 1).hbm_used_mb) == ("25.2.0", 98.1, 3381)
    atlas_800i = table("910b4-800ia2-idle-25.0.rc1.1.txt")
    assert atlas_800i.version == "25.0.rc1.1"
    assert (npu(atlas_800i, 7).hbm_used_mb, npu(atlas_800i, 7).hbm_total_mb) == (2653, 32768)
    assert npu(atlas_800i, 3).temp_c == 34.0


def test_elided_rows_and_prompt_leave_the_npus_that_were_printed():
    info = table("910b1-elided-23.0.rc2.txt")
    assert info.version == "23.0.rc2"
    assert [n.id for n in info.npus] == [0, 1, 7]
    assert npu(info, 1).power_w == 92.1 and npu(info, 7).hbm_used_mb == 4174
    assert not info.processes_shown  # the copy stops before the process table


def test_a3_two_dies_per_npu_with_no_power_on_the_second():
    info = table("a3-ascend910-24.1.rc3.3.txt")
    assert len(info.npus) == 16 and {n.id for n in info.npus} == set(range(8))
    die0, die1 = npu(info, 0, 0), npu(info, 0, 1)
    assert (die0.name, die0.power_w, die0.phy_id, die0.bus_id) == ("Ascend910", 182.0, 0, "0000:9D:00.0")
    assert (die1.power_w, die1.temp_c, die1.phy_id, die1.hbm_used_mb) == (None, 35.0, 1, 3200)
    assert all(n.power_w is None for n in info.npus if n.chip == 1)
    assert npu(info, 7, 1).phy_id == 15 and npu(info, 4, 0).hbm_used_mb == 52553
    assert [(p.npu_id, p.chip, p.pid) for p in info.processes[:2]] == [(4, 0, 957687), (4, 1, 957770)]
    assert {p.name for p in info.processes} == {"pt_main_thread"}


def test_old_910a_table_has_ddr_memory_and_no_process_table():
    info = table("910a-1.8.21.txt")
    assert info.version == "20.2.2.spc001"  # the driver, not npu-smi's own 1.8.21
    assert len(info.npus) == 8
    first = npu(info, 0)
    assert (first.name, first.power_w, first.temp_c) == ("910A", 68.6, 36.0)
    assert (first.memory_used_mb, first.memory_total_mb) == (591, 14795)
    assert (first.hbm_used_mb, first.hbm_total_mb) == (0, 32768)
    assert npu(info, 2).memory_used_mb == 1821
    # no process table: whether the NPUs are busy is unknown, not "no processes"
    assert info.processes == () and not info.processes_shown


@pytest.mark.parametrize("state", RECORDED_TABLES)
def test_stand_in_tables_parse(state: str):
    assert parse_npu_smi_info(recording(state, "npu-smi-info.txt")).parsed


def test_alarm_state_has_one_npu_in_alarm_and_one_in_warning():
    info = parse_npu_smi_info(recording("alarm", "npu-smi-info.txt"))
    assert [n.health for n in info.npus] == ["OK", "OK", "Alarm", "OK", "OK", "Warning", "OK", "OK"]


def test_busy_state_has_a_foreign_process_on_every_npu():
    info = parse_npu_smi_info(recording("busy", "npu-smi-info.txt"))
    assert sorted(p.npu_id for p in info.processes) == list(range(8))


def test_driver_warning_after_the_table_is_kept_but_not_fatal():
    warning = sample("npu-smi-errors/source-formats.txt").splitlines()[-1]
    assert warning.startswith("[WARNING]")
    info = parse_npu_smi_info(TABLES["910b2-idle-23.0.3.txt"] + warning + "\n")
    assert info.parsed and info.warnings == (warning,)


@pytest.mark.parametrize("text, reason", [
    ("", "the output was empty"),
    ("There is no NPU card on this server.\n", 'first line: "There is no NPU card on this server."'),
    (sample("npu-smi-errors/dcmi-8020.txt"), "no npu-smi title line"),
    ("\n".join(TABLES["910b2-idle-23.0.3.txt"].splitlines()[:7]), "NPU 0 has no second line"),
    ("\n".join(TABLES["910b2-idle-23.0.3.txt"].splitlines()[:6]), "no NPU rows"),
])
def test_outputs_that_are_not_a_table_are_unknown_with_the_reason(text: str, reason: str):
    info = parse_npu_smi_info(text)
    assert not info.parsed and info.npus == () and info.raw == text
    assert reason in info.problem


def test_a_process_row_outside_the_process_table_is_not_an_npu():
    lines = TABLES["910b3-busy-24.1.rc2.txt"].splitlines()
    header = next(i for i, line in enumerate(lines) if "Process id" in line)
    info = parse_npu_smi_info("\n".join(lines[:header] + lines[header + 1:]))
    assert not info.parsed and "is not an NPU row" in info.problem


def test_a_repeated_npu_is_unknown():
    lines = TABLES["910b2-idle-23.0.3.txt"].splitlines()
    info = parse_npu_smi_info("\n".join(lines[:9] + lines[6:]))
    assert not info.parsed and "repeats NPU 0 chip 0" in info.problem


def check_result(text: str, info: NpuSmiInfo) -> None:
    assert info.raw == text
    if info.parsed:
        assert info.problem == "" and info.npus and info.version
    else:
        assert info.npus == () and info.processes == () and info.version is None
        assert first_line(text) in info.problem if first_line(text) else "empty" in info.problem


@settings(max_examples=300, deadline=None)
@given(mangled(list(TABLES.values())))
def test_mangled_tables_parse_or_are_unknown_never_raise(text: str):
    check_result(text, parse_npu_smi_info(text))


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_arbitrary_text_is_unknown_never_raises(text: str):
    check_result(text, parse_npu_smi_info(text))


NOISE_LINE = st.text(max_size=40).map(str.strip).filter(
    lambda line: "\n" not in line and len(line.splitlines()) <= 1 and not line.startswith(("|", "+")))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(TABLES)), st.lists(st.tuples(st.integers(0, 80), NOISE_LINE), max_size=4))
def test_lines_outside_the_table_change_nothing(name: str, noise: list[tuple[int, str]]):
    lines = TABLES[name].splitlines()
    for at, line in noise:
        lines.insert(at, line)
    noisy, clean = parse_npu_smi_info("\n".join(lines)), parse_npu_smi_info(TABLES[name])
    assert (noisy.npus, noisy.processes, noisy.version) == (clean.npus, clean.processes, clean.version)


# ---- key/value sub-commands -------------------------------------------------------------------

def test_board_with_real_tabs():
    board = parse_npu_smi_detail(DETAILS["board-910a-23.0.5.txt"])
    assert board["Software Version"] == "23.0.5" and board["Firmware Version"] == "7.1.0.7.220"
    assert board["PCIe Bus Info"] == "0000:61:00.0" and board["Class ID"] == "NA"
    assert "/usr/local/bin/npu-smi info -i 0 -t board" not in "".join(board)


def test_newer_board_with_serial_number():
    board = parse_npu_smi_detail(DETAILS["board-910b2c-25.5.2.txt"])
    assert (board["Serial Number"], board["Software Version"]) == ("102415083974", "25.5.2")
    assert board["Model"] == "NA"


def test_usages_keys_keep_their_units():
    usages = parse_npu_smi_detail(DETAILS["usages-910b1.txt"])
    assert usages["HBM Capacity(MB)"] == "65536" and usages["HBM Usage Rate(%)"] == "4"
    assert usages["Aivector Usage Rate(%)"] == "0" and usages["Chip ID"] == "0"


def test_common_keeps_the_die_not_the_mcu_for_a_repeated_key():
    common = parse_npu_smi_detail(DETAILS["common-910b1.txt"])
    assert common["Temperature(C)"] == "46"  # the MCU block says 38
    assert common["NPU Real-time Power(W)"] == "93.4" and common["Chip Name"] == "mcu"


def test_health_ecc_and_list():
    assert parse_npu_smi_detail(DETAILS["health-ok.txt"]) == {
        "Health Status": "OK", "Error Code": "NA", "Error Information": "NA"}
    assert parse_npu_smi_detail(DETAILS["ecc.txt"])["HBM Double Bit Isolated Pages Count"] == "0"
    assert parse_npu_smi_detail(DETAILS["list-800ia2.txt"])["Total Count"] == "8"
    assert parse_npu_smi_detail(DETAILS["map-800ia2.txt"]) == {}  # a table, not key/value


def test_health_in_alarm_joins_continuation_lines():
    # Built from the printf description in §1.4 ([source]): no real capture of an alarm exists.
    text = ("\tHealth Status                  : Alarm\n"
            "\tError Code                     : 80E01801 80CB8009\n"
            "\tError Information              : first description\n"
            "\t" + " " * 30 + " : second description\n")
    assert parse_npu_smi_detail(text) == {
        "Health Status": "Alarm", "Error Code": "80E01801 80CB8009",
        "Error Information": "first description; second description"}


@settings(max_examples=100, deadline=None)
@given(mangled(list(DETAILS.values())) | st.text())
def test_detail_never_raises(text: str):
    assert all(isinstance(v, str) for v in parse_npu_smi_detail(text).values())


# ---- errors -----------------------------------------------------------------------------------

ERROR_LINES = [line.replace("%d", "-8005").replace("%s", "board")
               for line in sample("npu-smi-errors/source-formats.txt").splitlines()
               if not line.startswith("[WARNING]")]


@pytest.mark.parametrize("line", ERROR_LINES)
def test_every_npu_smi_message_is_recognised_by_its_text_even_with_exit_0(line: str):
    for code in (0, 2, None):
        reason = npu_smi_error(line + "\n", "", code)
        assert reason is not None and line in reason


def test_device_held_by_another_container():
    reason = npu_smi_error(sample("npu-smi-errors/dcmi-8020.txt"), "", 0)
    assert reason is not None and "another container" in reason and "-8020" in reason


def test_driver_not_loaded():
    reason = npu_smi_error("dcmi module initialize failed. ret is -8005\n", "", 0)
    assert reason is not None and reason.startswith("NPU driver not loaded")


@pytest.mark.parametrize("stderr", ["bash: npu-smi: command not found\n", "sh: 1: npu-smi: not found\n", ""])
def test_missing_tool(stderr: str):
    reason = npu_smi_error("", stderr, 127)
    assert reason is not None and "not installed" in reason


def test_a_missing_tool_under_the_probes_timeout_is_not_said_to_be_timeouts_fault():
    said = "timeout: failed to run command 'npu-smi': No such file or directory\n"
    assert npu_smi_error("", said, 127) == ("npu-smi not installed (no Ascend driver package?): "
                                           "failed to run command 'npu-smi': No such file or directory")


def test_empty_output_and_unknown_failures():
    assert "printed nothing" in (npu_smi_error("", "", 0) or "")
    assert npu_smi_error("", "", None) is None  # exit unknown, nothing said: the transport reports it
    assert npu_smi_error("something odd\n", "", 3) == "npu-smi exited 3: something odd"


@pytest.mark.parametrize("name", sorted(TABLES))
def test_a_table_is_not_an_error(name: str):
    assert npu_smi_error(TABLES[name], "", 0) is None


def test_driver_warning_after_a_table_is_not_an_error():
    warning = sample("npu-smi-errors/source-formats.txt").splitlines()[-1]
    assert npu_smi_error(TABLES["910a-1.8.21.txt"] + warning + "\n", "", 0) is None


@settings(max_examples=100, deadline=None)
@given(st.text(), st.text(), st.none() | st.integers(-300, 300))
def test_error_never_raises(stdout: str, stderr: str, code: int | None):
    reason = npu_smi_error(stdout, stderr, code)
    assert reason is None or reason.strip()
