"""The health model on recorded probe output: each rule gives its status and a reason a person can act on."""

from dataclasses import replace

from remote.health import NodeJob, Status, assess, keep_last_good, summarize, with_drift
from remote.inventory import HealthThresholds
from remote.probe import ProbeOutput, Section
from remote.probes.jobs import JobProcess
from tests.recorded_health import BUSY_PIDS, CLOCK, cpu_node, health, marked, npu_node, probe_output

NODE = npu_node("node0")


def with_section(probe: ProbeOutput, name: str, text: str, code: int = 0) -> ProbeOutput:
    return replace(probe, sections={**probe.sections, name: Section(name, text, code)})


def test_a_healthy_node_is_ok_with_every_npu_and_link():
    report = health(NODE, "healthy")
    assert (report.status, report.reasons) == (Status.OK, ())
    assert len(report.npus) == 8 and len(report.links) == 8
    assert report.system is not None and report.system.driver_version == "23.0.3"


def test_a_cpu_node_is_honest_about_having_no_npus():
    report = health(cpu_node("node0"), "healthy")
    assert report.status is Status.OK and report.npus == () and report.links == ()
    assert report.system is not None and report.system.backend == "cpu" and report.system.cpus == 192


def test_hot_npu_warns_with_the_threshold():
    report = health(NODE, "healthy", thresholds=HealthThresholds(temperature_c=39.5))
    assert report.status is Status.WARN
    assert "NPU 0: 40 C (> 39.5 C)" in report.reasons


def test_net_health_init_is_a_warning_not_a_failure():
    probe = probe_output(NODE, "healthy")
    for device in range(8):
        probe = with_section(probe, f"net_health {device}", "net health status: Init\n")
    single = assess(NODE, with_section(probe_output(NODE, "healthy"), "link 3", "link status: DOWN\n"),
                    HealthThresholds())
    assert single.status is Status.FAIL and single.reasons == ("link 3 DOWN",)
    report = assess(NODE, probe, HealthThresholds())
    assert report.status is Status.WARN
    assert report.reasons == ("links 0-7 net_health Init (no detect IP set)",)


def test_clock_offset_is_judged_only_when_certain():
    probe = with_section(probe_output(NODE, "healthy"), "clock", f"{CLOCK + 5:.3f}")
    assert "clock: +5.0 s from the console's" in assess(NODE, probe, HealthThresholds()).reasons
    # the node answered within a 10 s window: 5 s may be transit, not skew
    slow = replace(probe, sent_at=CLOCK, received_at=CLOCK + 10)
    assert not any(r.startswith("clock") for r in assess(NODE, slow, HealthThresholds()).reasons)


def test_hbm_held_by_no_visible_process_is_busy():
    report = health(NODE, "healthy", thresholds=HealthThresholds(hbm_busy_mb=3000))
    assert report.status is Status.WARN
    assert any("MB HBM in use by no visible process" in r for r in report.reasons)


def test_missing_npus_fail():
    report = health(replace(NODE, devices=16), "healthy")
    assert report.status is Status.FAIL and "only 8 of 16 NPUs visible" in report.reasons


def test_drift_is_judged_against_the_nodes_that_report_a_version():
    reports = with_drift([health(npu_node("a"), "healthy"), health(npu_node("b"), "healthy"),
                          health(npu_node("c"), "no-driver"), health(npu_node("d"), "busy")])
    assert any(r.startswith("drift: driver 24.1.rc2 (most nodes: 23.0.3)") for r in reports[3].reasons)
    assert not any(r.startswith("drift") for r in reports[0].reasons + reports[2].reasons)
    # one each way is no majority: nobody drifts
    pair = with_drift([health(npu_node("a"), "healthy"), health(npu_node("d"), "busy")])
    assert not any(r.startswith("drift") for report in pair for r in report.reasons)


def test_a_node_that_stops_answering_keeps_its_last_values_marked_stale():
    good = health(NODE, "healthy")
    lost = health(NODE, "unreachable")
    kept = keep_last_good(good, lost)
    assert kept.stale and kept.status is Status.UNREACHABLE and kept.npus == good.npus
    assert kept.reasons == lost.reasons
    summary = summarize([kept, health(npu_node("node1"), "healthy")])
    assert summary.text == "1/2 nodes OK · 8/16 NPUs · 1 unreachable"


def test_a_probe_that_did_not_run_says_why():
    from remote.transport import RunResult
    probe = replace(probe_output(NODE, "healthy"), sections={},
                    result=RunResult("node0", "sh -c <probe>", 127, "", "sh: 1: timeout: not found\n", 0.1))
    report = assess(NODE, probe, HealthThresholds())
    assert report.status is Status.FAIL
    assert report.reasons == ("probe did not run (exit 127): sh: 1: timeout: not found",)


def test_an_unreadable_link_is_unknown_not_down():
    probe = with_section(probe_output(NODE, "healthy"), "link 3", "", 124)
    report = assess(NODE, probe, HealthThresholds())
    assert report.status is Status.UNKNOWN
    assert any(r.startswith("link 3 state unknown") for r in report.reasons), report.reasons
    assert summarize([report]).links_down == 0


def test_clock_offset_uses_both_readings():
    at = CLOCK
    probe = replace(probe_output(NODE, "healthy", at), sent_at=at - 3, received_at=at + 3)
    probe = with_section(with_section(probe, "clock", f"{at - 2:.3f}"), "clock_end", f"{at + 2:.3f}")
    report = assess(NODE, probe, HealthThresholds())
    assert report.system is not None and report.system.clock_offset_s == 0.0


JOB = "20261206-214024-tiny"


def test_processes_of_a_console_job_on_npus_are_that_job_not_foreign():
    busy = health(NODE, "busy")
    assert busy.status is Status.WARN and busy.jobs == ()
    assert all("1 foreign process(es)" in " ".join(n.reasons) for n in busy.npus)

    ours = health(NODE, "busy", jobs=marked(f"{JOB}@node0", dict(zip(BUSY_PIDS, range(8), strict=True))))
    assert (ours.status, ours.reasons) == (Status.OK, ())
    assert [n.status for n in ours.npus] == [Status.OK] * 8
    npu3 = ours.npus[3]
    assert npu3.jobs == (JobProcess(277630, JOB, "node0", 3),)
    assert npu3.job_of(277630) == npu3.jobs[0] and npu3.job_of(1) is None
    assert ours.jobs == (NodeJob(JOB, tuple(range(8)), tuple(range(8))),)


def test_a_job_beside_a_foreign_process_leaves_that_one_foreign():
    report = health(NODE, "busy", jobs=marked(f"{JOB}@node0", {277624: 0, 277626: 1}))
    assert [n.status for n in report.npus] == [Status.OK] * 2 + [Status.WARN] * 6
    assert "NPU 2: busy: 1 foreign process(es) (277628)" in report.reasons
    assert report.jobs == (NodeJob(JOB, (0, 1), (0, 1)),)


def test_a_job_is_the_nodes_when_its_marker_names_it_or_it_holds_an_npu():
    # Nodes sharing a process table (containers, the test cluster) see each other's markers.
    elsewhere = marked(f"{JOB}@node1", {5000: 0}) + marked(f"{JOB}-b@other-name", {277624: 0})
    report = health(NODE, "busy", jobs=elsewhere + marked(f"{JOB}-c@node0", {6000: None}))
    assert [job.id for job in report.jobs] == [f"{JOB}-b", f"{JOB}-c"]
    assert report.jobs[0] == NodeJob(f"{JOB}-b", (0,), (0,))  # another console's name for the node
    assert report.jobs[1] == NodeJob(f"{JOB}-c", (), ())  # msrun alone, before its ranks hold NPUs
    cpu = health(cpu_node("node0"), "healthy", jobs=elsewhere + marked(f"{JOB}@node0", {7000: 1}))
    assert cpu.status is Status.OK and cpu.jobs == (NodeJob(JOB, (1,), ()),)
