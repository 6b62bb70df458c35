"""Pure parts of distribution: manifests, the tools' outputs, waves, the relay chain, rate and ETA."""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

import pytest

from remote.inventory import InventoryError, load_cluster
from remote.manifest import (
    ManifestEntry,
    ManifestError,
    make_manifest,
    manifest_from_listing,
    nul_list,
    parse_find_sizes,
    parse_sha256sum,
    scan_directory,
)
from remote.relayplan import ROOT, Hop, RateMeter, plan_chain, plan_copies, plan_waves
from remote.rsync import RsyncReport, SSHEndpoint, remote_spec, rsync_argv, source_args, ssh_argv

HEX = "0123456789abcdef" * 4


def entry(path: str, size: int = 1) -> ManifestEntry:
    return ManifestEntry(path, size, HEX)


def test_scan_directory_hashes_every_file_and_skips_the_staging_tree(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.bin").write_bytes(b"bee")
    (tmp_path / "a.json").write_bytes(b"{}")
    (tmp_path / ".ascend-incoming").mkdir()
    (tmp_path / ".ascend-incoming" / "half").write_bytes(b"x")
    manifest = scan_directory(tmp_path)
    assert [(e.path, e.size) for e in manifest.entries] == [("a.json", 2), ("sub/b.bin", 3)]
    assert manifest.entries[1].sha256 == hashlib.sha256(b"bee").hexdigest()
    assert manifest.total_bytes == 5


def test_a_single_file_is_a_set_of_one(tmp_path: Path) -> None:
    (tmp_path / "w.safetensors").write_bytes(b"12345")
    assert [e.path for e in scan_directory(tmp_path / "w.safetensors").entries] == ["w.safetensors"]


@pytest.mark.parametrize("path", ["/etc/passwd", "../up", "a/../../b", "", ".ascend-incoming/x"])
def test_paths_that_could_escape_the_destination_are_refused(path: str) -> None:
    with pytest.raises(ManifestError):
        make_manifest([entry(path)])


def test_a_path_listed_twice_is_refused() -> None:
    with pytest.raises(ManifestError, match="twice"):
        make_manifest([entry("a"), entry("a")])


def test_find_sizes_keep_spaces_and_newlines_in_names() -> None:
    output = "12 a b\0" "3 new\nline\0" "0 -dash\0"
    assert parse_find_sizes(output) == {"a b": 12, "new\nline": 3, "-dash": 0}


def test_sha256sum_escaped_names_are_read_back() -> None:
    # what GNU sha256sum prints for "./a\nb", "./c\\d" and "./ x" (recorded on coreutils 9.1)
    output = (f"\\{HEX}  ./a\\nb\n" f"\\{HEX}  ./c\\\\d\n" f"{HEX}  ./ x\n" f"{HEX} *./binary\n"
              "sha256sum: ./gone: No such file or directory\n")
    assert parse_sha256sum(output) == {"./a\nb": HEX, "./c\\d": HEX, "./ x": HEX, "./binary": HEX}


def test_a_node_manifest_needs_a_digest_for_every_file() -> None:
    with pytest.raises(ManifestError, match="could not hash"):
        manifest_from_listing({"a": 1, "b": 2}, {"a": HEX})
    assert len(manifest_from_listing({"a": 1}, {"a": HEX})) == 1


def test_file_lists_for_xargs_are_nul_separated_and_dot_prefixed() -> None:
    assert nul_list(["-rf", "x\ny"]) == b"./-rf\0./x\ny\0"


def test_waves_cut_by_bytes_and_a_big_file_travels_alone() -> None:
    entries = [entry("a", 30), entry("b", 30), entry("c", 100), entry("d", 10), entry("e", 10)]
    waves = plan_waves(entries, wave_bytes=64)
    assert [[e.path for e in w.entries] for w in waves] == [["a", "b"], ["c"], ["d", "e"]]
    assert [w.index for w in waves] == [0, 1, 2] and waves[1].size == 100


def test_waves_cut_by_file_count_and_by_the_length_of_their_names() -> None:
    assert len(plan_waves([entry(f"f{i}") for i in range(5)], wave_files=2)) == 3
    long_names = [entry("n" * 1000 + str(i)) for i in range(30)]
    assert all(sum(len(e.path) for e in w.entries) < 48_000 // 4 for w in plan_waves(long_names))


def test_a_chain_relays_where_it_can_and_falls_back_to_the_source() -> None:
    reachable = {("n0", "n1"), ("n2", "n3")}
    hops = plan_chain(["n0", "n1", "n2", "n3"], can_relay=lambda a, b: (a, b) in reachable)
    assert hops == (Hop("n0", ROOT), Hop("n1", "n0"), Hop("n2", ROOT), Hop("n3", "n2"))


def test_a_node_as_the_root_feeds_the_first_hop() -> None:
    hops = plan_chain(["n1", "n2"], root="n0")
    assert hops == (Hop("n1", "n0"), Hop("n2", "n1"))


def test_one_place_is_one_copy_sent_to_its_first_node() -> None:
    places = [("a0", ("10.0.0.1", "/w")), ("a1", ("10.0.0.1", "/w")), ("b0", ("10.0.0.2", "/w")),
              ("a2", ("10.0.0.1", "/other"))]
    assert plan_copies(places) == (("a0", None), ("a1", "a0"), ("b0", None), ("a2", None))


def test_a_node_at_the_source_nodes_directory_shares_the_source_not_the_source_nodes_copy() -> None:
    """The source node n1 reads /src and receives a copy at /dest; n1b, on its machine, has DEST at /src:
    it shares the source's directory (whole from the start), not n1's copy at /dest, which may fail."""
    places = [("n0", ("10.0.0.1", "/dest")), ("n1", ("10.0.0.2", "/dest")), ("n1b", ("10.0.0.2", "/src"))]
    assert plan_copies(places, origin=("n1", ("10.0.0.2", "/src"))) == (
        ("n0", None), ("n1", None), ("n1b", ROOT))


def test_the_source_node_at_its_own_directory_is_left_out() -> None:
    places = [("n0", ("10.0.0.1", "/d")), ("n1", ("10.0.0.2", "/d")), ("n1b", ("10.0.0.2", "/d"))]
    assert plan_copies(places, origin=("n1", ("10.0.0.2", "/d"))) == (("n0", None), ("n1b", ROOT))


def test_no_node_can_be_named_as_the_root(tmp_path: Path) -> None:
    """ROOT keys the source beside the nodes: the inventory refuses it as a node name (and takes
    "console", the name the console as a source is shown by, so that cannot be the key)."""
    file = tmp_path / "c.yaml"
    file.write_text(f"name: c\nnodes:\n  - {{name: '{ROOT}', host: 10.0.0.1}}\n")
    with pytest.raises(InventoryError, match="name"):
        load_cluster(file)
    file.write_text("name: c\nnodes:\n  - {name: console, host: 10.0.0.1}\n")
    assert [n.name for n in load_cluster(file).nodes] == ["console"]


def test_rate_over_a_window_and_the_eta_from_it() -> None:
    now = [0.0]
    meter = RateMeter(window=5.0, clock=lambda: now[0])
    assert meter.eta(100) is None
    for second, done in enumerate((0, 10, 20, 30)):
        now[0] = float(second)
        meter.add(done)
    assert meter.rate() == pytest.approx(10.0)
    assert meter.eta(50) == pytest.approx(5.0) and meter.eta(0) == 0.0


def test_rsync_report_reads_progress_stats_exit_and_complaints() -> None:
    report = RsyncReport()
    assert report.feed("      4,620,288  55%    2.00MB/s    0:00:01  ")
    for line in ("Number of regular files transferred: 2", "Literal data: 1,000 bytes",
                 "Total bytes sent: 8,390,730", "rsync: connection unexpectedly closed",
                 "@@ascend-rsync-exit=30"):
        assert not report.feed(line)
    assert (report.progress, report.bytes_sent, report.literal, report.files_transferred) == (
        4620288, 8390730, 1000, 2)
    assert not report.ok and "timeout" in report.describe() and "unexpectedly" in report.describe()


def test_a_complaint_on_a_progress_line_is_kept() -> None:
    report = RsyncReport()
    assert report.feed('         32,768   3%    0.00kB/s    0:00:00  rsync: [receiver] write failed on '
                       '"/srv/w/model.bin": No space left on device (28)')
    assert not report.feed("rsync error: error in file IO (code 11) at receiver.c(657) [receiver=3.5.0]")
    report.feed("@@ascend-rsync-exit=11")
    assert report.progress == 32768
    assert 'write failed on "/srv/w/model.bin": No space left on device (28)' in report.describe()


def test_rsync_command_is_quoted_parts_with_strict_host_keys() -> None:
    ssh = ssh_argv(SSHEndpoint("10.0.0.2", 2222, "ai user", ("/k ey",), "/kh"), connect_timeout=5,
                   keepalive=3)
    assert "StrictHostKeyChecking=yes" in ssh and ssh[ssh.index("-p"):ssh.index("-p") + 2] == ["-p", "2222"]
    argv = rsync_argv(source_args("~/w", ["-rf", "a b"]), remote_spec("fe80::1", "/d/.s/"), ssh,
                      io_timeout=10, receiver_pids="/d/.s/.receivers")
    assert argv[-3:] == ["./w/./-rf", "./w/./a b", "[fe80::1]:/d/.s/"]
    assert shlex.split(argv[argv.index("--rsh") + 1]) == ssh  # rsync splits -e as a shell would
    assert "-s" in argv and "--partial-dir=.ascend-partial" in argv
