"""Linux and Docker text parsers: fixed texts in the formats the tools print, this machine's own
/proc and df output, and arbitrary text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remote.probes.system import (
    ContainerState,
    DiskUsage,
    Memory,
    parse_df,
    parse_docker_ps,
    parse_driver_version,
    parse_loadavg,
    parse_meminfo,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and GNU df")

DF = ("Filesystem     1024-blocks       Used  Available Capacity Mounted on\n"
      "/dev/nvme0n1p1  3750157312 1234567890 2325386598      35% /data\n")


def test_df_posix_output():
    assert parse_df(DF) == DiskUsage("/data", 3750157312, 1234567890, 2325386598, 35)


def test_df_mount_point_and_filesystem_with_spaces():
    text = "Filesystem 1024-blocks Used Available Capacity Mounted on\nmy fs 100 40 60 40% /mnt/my data\n"
    assert parse_df(text) == DiskUsage("/mnt/my data", 100, 40, 60, 40)


def test_df_capacity_dash_is_worked_out():
    text = "Filesystem 1024-blocks Used Available Capacity Mounted on\nnone 0 0 0 - /proc/x\n"
    assert parse_df(text) == DiskUsage("/proc/x", 0, 0, 0, 0)


@pytest.mark.parametrize("text", ["", "df: /nope: No such file or directory\n", DF.splitlines()[0]])
def test_df_without_a_data_line_is_none(text: str):
    assert parse_df(text) is None


@linux_only
def test_df_on_this_machine():
    done = subprocess.run(["df", "-Pk", "/"], capture_output=True, text=True, check=True)
    usage = parse_df(done.stdout)
    assert usage is not None and usage.mount == "/" and usage.size_kb > 0 and 0 <= usage.use_pct <= 100


MEMINFO = "MemTotal:       24683652 kB\nMemFree:        24007444 kB\nMemAvailable:   24154948 kB\n" \
          "Buffers:            5872 kB\nCached:           321156 kB\nHugePages_Total:       0\n"


def test_meminfo():
    assert parse_meminfo(MEMINFO) == Memory(24683652, 24154948)


def test_meminfo_before_memavailable_estimates_it():
    old_kernel = "".join(line + "\n" for line in MEMINFO.splitlines() if not line.startswith("MemAvailable"))
    assert parse_meminfo(old_kernel) == Memory(24683652, 24007444 + 5872 + 321156)


@linux_only
def test_meminfo_and_loadavg_on_this_machine():
    memory = parse_meminfo(Path("/proc/meminfo").read_text())
    assert memory is not None and 0 < memory.available_kb <= memory.total_kb
    load = parse_loadavg(Path("/proc/loadavg").read_text())
    assert load is not None and all(value >= 0 for value in load)


def test_loadavg():
    assert parse_loadavg("1.36 0.71 0.48 5/150 2537\n") == (1.36, 0.71, 0.48)
    assert parse_loadavg("") is None and parse_loadavg("cat: /proc/loadavg: No such file\n") is None


# The shape of /usr/local/Ascend/driver/version.info as published in captures of real nodes; the
# values here are made up. It is not in the format reference.
VERSION_INFO = ("Version=24.1.rc2.2\nascendhal_version=7.35.23\naicpu_version=1.0\n"
                "Innerversion=V100R001C18SPC001B233\ncompatible_version=[V100R001C30],[V100R001C18]\n"
                "compatible_version_fw=[7.0.0,7.2.99]\npackage_version=24.1.rc2.2\n")


def test_driver_version():
    assert parse_driver_version(VERSION_INFO) == "24.1.rc2.2"
    assert parse_driver_version("Version=23.0.3\n") == "23.0.3"
    # where Version names a component, the package's release is what people quote
    assert parse_driver_version("Version=7.35.23\npackage_version=26.0.rc1\n") == "26.0.rc1"
    assert parse_driver_version("cat: version.info: No such file or directory\n") is None
    assert parse_driver_version("Version=\n") is None


@pytest.mark.parametrize("text, state", [
    ("ds3\trunning\tUp 3 hours\n", ContainerState("ds3", True, "Up 3 hours")),
    ("ds3\texited\tExited (137) 2 days ago\n", ContainerState("ds3", False, "Exited (137) 2 days ago")),
    ("ds3\tpaused\tUp 5 minutes (Paused)\n", ContainerState("ds3", False, "Up 5 minutes (Paused)")),
    ("ds3\tcreated\tCreated\n", ContainerState("ds3", False, "Created")),
    # an old docker without {{.State}} prints `<no value>`: Status decides
    ("ds3\t<no value>\tUp 2 weeks\n", ContainerState("ds3", True, "Up 2 weeks")),
    ("ds3\t<no value>\tUp 2 weeks (Paused)\n", ContainerState("ds3", False, "Up 2 weeks (Paused)")),
])
def test_docker_ps(text: str, state: ContainerState):
    assert parse_docker_ps(text) == state


@pytest.mark.parametrize("text", [
    "", "\n", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n",
    "ds3 running Up 3 hours\n"])
def test_docker_ps_without_a_container_line_is_none(text: str):
    assert parse_docker_ps(text) is None


@settings(max_examples=100, deadline=None)
@given(st.text() | st.sampled_from([DF, MEMINFO, VERSION_INFO]).map(lambda text: text[: len(text) // 2]))
def test_arbitrary_text_gives_a_record_or_none(text: str):
    disk = parse_df(text)
    assert disk is None or (isinstance(disk, DiskUsage) and disk.mount and disk.mount in text
                            and min(disk.size_kb, disk.used_kb, disk.avail_kb, disk.use_pct) >= 0)
    memory = parse_meminfo(text)
    assert memory is None or ("MemTotal" in text and isinstance(memory, Memory)
                              and min(memory.total_kb, memory.available_kb) >= 0)
    load = parse_loadavg(text)
    assert load is None or (len(load) == 3 and all(isinstance(value, float) for value in load))
    version = parse_driver_version(text)
    assert version is None or ("=" in text and version in text and version == version.strip() != "")
    container = parse_docker_ps(text)
    assert container is None or (isinstance(container, ContainerState) and "\t" in text
                                 and container.name in text and container.status in text)
