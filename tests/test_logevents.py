"""Log events: every reference sample and every log recorded with the real msrun gives the events a person
would point at, one per thing; any text or bytes never make the parser raise."""

import calendar
import math
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model import loglines
from model.logevents import (
    KINDS,
    LAUNCHER_SOURCE,
    MAX_EVENT_LINES,
    LogEvent,
    LogEventParser,
    default_followed_ranks,
    line_pid,
    line_severity,
    line_time,
    loss_ranks,
)
from model.logsummary import summarize, summary_lines

LOGS = Path(__file__).parent / "samples" / "logs"
REFERENCE = LOGS / "reference"


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def parse(lines: list[str], **kwargs: float | int | None) -> list[LogEvent]:
    parser = LogEventParser(**kwargs)  # type: ignore[arg-type]
    return parser.feed(lines) + parser.flush()


def parse_file(path: Path) -> list[LogEvent]:
    return parse(lines_of(path))


def kinds(events: list[LogEvent], *, skip: tuple[str, ...] = ("warning", "cluster_retry"),
          ) -> list[tuple[int, str]]:
    return [(e.line, e.kind) for e in events if e.kind not in skip]


def ms_time(text: str) -> float:
    """`2026-12-06-21:07:15.174.000` read as UTC, the way the parser reads it."""
    day, clock = text[:10], text[11:]
    hms, ms, us = clock.split(".")
    stamp = calendar.timegm(time.strptime(f"{day} {hms}", "%Y-%m-%d %H:%M:%S"))
    return stamp + int(ms) / 1000 + int(us) / 1e6


# -- the format reference ----------------------------------------------------------------------

def test_reference_msrun_failure_console():
    events = parse_file(REFERENCE / "msrun-fail-console.txt")
    assert kinds(events) == [(2, "worker_started"), (3, "worker_started"), (7, "traceback"),
                             (11, "worker_exit"), (12, "workers_killed"), (13, "job_failed")]
    by_kind = {e.kind: e for e in events}
    assert [e.rank for e in events if e.kind == "worker_started"] == [0, 1]
    rank_error = by_kind["traceback"]
    assert rank_error.message == "RuntimeError: simulated failure on rank 1"
    assert rank_error.lines[0] == "Traceback (most recent call last):" and len(rank_error.lines) == 4
    assert rank_error.source == "/srv/msruntest/fail.py:5" and rank_error.severity == "error"
    # no timestamp of its own: the msrun line before it gives the time
    assert rank_error.time == ms_time("2026-11-28-12:46:05.372.000")
    exit_ = by_kind["worker_exit"]
    assert (exit_.pid, exit_.exit_code, exit_.module) == (10448, 1, "ME")
    assert exit_.source == "mindspore/parallel/cluster/process_entity/_api.py:365"
    assert exit_.time == ms_time("2026-11-28-12:46:08.373.000")
    assert by_kind["workers_killed"].severity == "warning"
    launcher = by_kind["job_failed"]
    assert launcher.source == LAUNCHER_SOURCE and len(launcher.lines) == 13
    assert launcher.message.startswith("RuntimeError: Distributed job exited with exception.")
    assert [e.kind for e in events if e.kind == "warning"] == ["warning"]  # "Distributed job is spawned"


def test_reference_msrun_failure_logs_and_starts():
    events = parse_file(REFERENCE / "msrun-fail-logs.txt")
    assert kinds(events) == [(7, "traceback")]
    assert events[0].time is None
    node_rank = parse_file(REFERENCE / "msrun-node-rank-console.txt")
    assert [(e.kind, e.rank) for e in node_rank if e.kind == "worker_started"] == \
        [("worker_started", 2), ("worker_started", 3)]
    assert not [e for e in parse_file(REFERENCE / "msrun-ok-console.txt") if e.severity == "error"]


def test_reference_cluster_bring_up_is_not_an_error():
    events = parse_file(REFERENCE / "msinit-logs.txt")
    assert not [e for e in events if e.severity == "error"]
    retries = [e for e in events if e.kind == "cluster_retry"]
    assert [e.line for e in retries] == [4, 7, 27] and {e.severity for e in retries} == {"info"}
    assert retries[0].message == "Topology build timed out., retry(1/120)."
    assert retries[0].module == "DISTRIBUTED"
    assert retries[0].source == "mindspore/ccsrc/cluster/topology/cluster_context.cc:316"
    registered = next(e for e in events if "The new node: 1" in e.message)
    assert registered.kind == "warning" and registered.rank == 1


def test_reference_oom_block_is_one_event():
    events = parse_file(REFERENCE / "oom-block.txt")
    assert len(events) == 1
    oom = events[0]
    assert (oom.kind, oom.line, len(oom.lines)) == ("oom", 1, 17)
    assert oom.message == "Out of Memory!!! Request memory size: 33100113920B, Memory Statistic:"
    assert oom.lines[-1].endswith("ascend_kernel_executor.cc:252 PreprocessBeforeRunGraph")


def test_reference_stream_sync_and_device_errors():
    events = parse_file(REFERENCE / "stream-sync.txt")
    assert [(e.line, e.kind, e.module) for e in events] == [
        (1, "stream_sync", "GE"), (2, "warning", "DEVICE"), (3, "ms_error", "DEVICE"),
        (4, "ms_error", "DEVICE")]
    assert events[0].message == "Call rt api rtStreamSynchronize failed, ret: 507011"
    assert events[0].time == ms_time("2021-09-11-16:48:31.511.063")


def test_reference_hccl_notify_timeout():
    events = parse_file(REFERENCE / "hccl-ei0002.txt")
    assert [(e.line, e.kind) for e in events] == [(1, "ms_error"), (2, "cann_error")]
    torch_npu, cann = events
    assert torch_npu.rank == 101 and torch_npu.message == "ERR00100 PTA call acl api failed."
    assert cann.code == "EI0002" and len(cann.lines) == 2  # the indented "Possible Cause" belongs to it
    assert cann.lines[1].lstrip().startswith("Possible Cause:")
    assert cann.time == ms_time("2025-10-11-15:09:34.713.335")


@pytest.mark.parametrize("name", ["mindformers-2.1-stdout.txt", "mindformers-2.1-info-log.txt"])
def test_reference_mindformers_loss_lines_both_forms(name: str):
    events = parse_file(REFERENCE / name)
    assert [(e.line, e.kind) for e in events] == [(1, "loss"), (3, "loss")]
    first, second = (e.loss for e in events)
    assert first is not None and second is not None
    assert (first.step, first.loss, first.parts["mtp_loss"]) == (12, 10.123456, 0.002222)
    assert (second.step, second.loss) == (200, 3.5)
    assert events[0].message == "step 12/1000 loss 10.1235"


def test_every_loss_sample_line_is_a_loss_event():
    lines = lines_of(Path(__file__).parent / "samples" / "loss-lines.txt")
    events = parse(lines)
    assert [e.line for e in events] == list(range(1, len(lines) + 1))
    assert {e.kind for e in events} == {"loss"}


@pytest.mark.parametrize(("line", "kind", "check"), [
    # serving-and-logs.md §3 and §4, with the placeholders filled in
    ("[WARNING] ME(1:2,MainProcess):2026-11-28-12:46:08.373.000 [mindspore/parallel/cluster/process_entity/"
     "_api.py:370] There's worker exits with exception, kill all other workers.", "workers_killed", None),
    ("[ERROR] ME(1:2,MainProcess):2026-11-28-12:46:08.373.000 [mindspore/parallel/cluster/process_entity/"
     "_api.py:385] Scheduler process 10433 exit with exception.", "scheduler_exit", ("pid", 10433)),
    ("Time out nodes are [2, 3]", "scheduler_timeout", ("message", "Timed out nodes: 2, 3")),
    ("[INFO] ME(1:2,MainProcess):2026-11-28-12:46:08.373.00 [mindspore/parallel/cluster/process_entity/"
     "_api.py:375] All workers successfully exit!", "all_exited", None),
    ("EI0006: [PID: 12] 2026-11-28-12:46:08.373.000 Getting socket times out. Reason: Remote Rank did not "
     "send the data in time", "cann_error", ("code", "EI0006")),
    ("[ERROR] HCCL(1,7f,python):2026-11-28-12:46:08.373.000 [hccl/link.cc:1] Wait] [Wait][LinkEstablish]wait "
     "socket establish timeout, role[1] rank[12] timeout[120]", "ms_error", ("module", "HCCL")),
    ("Device(id:0) memory isn't enough and alloc failed, kernel name: Add, alloc size: 1024B.", "oom", None),
    ("ValueError: loss is nan, terminate training.", "nan_loss", None),
    ("There is nan in loss with value nan, terminate training.", "nan_loss", None),
    ("{ Epoch:[  1/  1], step:[    4/   10], loss: nan, per_step_time: 9ms, overflow cond: False, "
     "loss_scale: 1.0, global_norm: None", "nan_loss", ("message", "step 4/10 loss nan")),
    ("EJ0001: Failed to initialize the HCCP process. Reason: Maybe the last training process is running.",
     "cann_error", ("code", "EJ0001")),
    ("[EXCEPTION] DEVICE(1,7f,python):2026-11-28-12:46:08.373.000 [x.cc:1] F] EZ9999: Kernel task happen "
     "error, retCode=0x31", "cann_error", ("code", "EZ9999")),
    ("2026-11-28 12:51:27,168 - mindformers[mindformers/trainer/base.py:10] - ERROR - checkpoint not found",
     "ms_error", ("source", "mindformers/trainer/base.py:10")),
    ("2026-11-28 12:51:27,168 - mindformers[mindformers/trainer/base.py:10] - WARNING - no eval dataset",
     "warning", ("message", "no eval dataset")),
    ("/opt/venv/lib/python3.11/site-packages/numpy/core/fromnumeric.py:88: RuntimeWarning: overflow",
     "warning", None),
    ("RuntimeError: Distributed job exited with exception. Please check logs in directory: x.",
     "job_failed", None),
    ("Call rt api rtStreamSynchronize failed, ret: 507011", "stream_sync", None),
])
def test_single_lines(line: str, kind: str, check: tuple[str, object] | None):
    events = parse([line])
    assert [e.kind for e in events] == [kind]
    assert events[0].severity == KINDS[kind]
    if check is not None:
        assert getattr(events[0], check[0]) == check[1]


@pytest.mark.parametrize("line", [
    "", "rank 0 of 2", "role MS_WORKER RANK_ID 0",
    "2026-11-28 12:51:27,169 - mindformers[x.py:9] - INFO -    1.2% |   | 1.75123 samples/s/p  1:15:12 }",
    "[INFO] DISTRIBUTED(1,7f,python):2026-11-28-12:47:16.562.194 [tcp_client.cc:367] Start] Event base "
    "dispatch success!", "==> fail_log/worker_1.log <==",
    "2025-04-07 15:34:27.363613 info 1879138 [TTP controller.cpp:1512] rank:4, report group list: [0, 4]",
    "[const vector]{0, 1}", "E1234 is not a CANN code",
])
def test_lines_that_are_no_event(line: str):
    assert parse([line]) == []


# -- logs recorded with the real msrun (tests/samples/logs/README.md) ---------------------------

def test_recorded_raising_rank():
    worker = parse_file(LOGS / "msrun-fail" / "worker_1.log")
    assert [(e.line, e.kind, e.message) for e in worker] == \
        [(2, "traceback", "RuntimeError: simulated failure on rank 1")]
    assert parse_file(LOGS / "msrun-fail" / "worker_0.log") == []
    console = parse_file(LOGS / "msrun-fail" / "console.txt")
    assert kinds(console) == [(2, "worker_started"), (3, "worker_started"), (7, "traceback"),
                              (11, "worker_exit"), (12, "workers_killed"), (13, "job_failed")]
    exit_ = next(e for e in console if e.kind == "worker_exit")
    assert (exit_.pid, exit_.exit_code) == (3735, 1)
    assert [e.source for e in console if e.kind in ("traceback", "job_failed")] == \
        ["/tmp/msrec/fail.py:5", LAUNCHER_SOURCE]


def test_recorded_sigkilled_rank():
    console = parse_file(LOGS / "msrun-sigkill" / "console.txt")
    assert kinds(console) == [(2, "worker_started"), (3, "worker_started"), (37, "worker_exit"),
                              (38, "workers_killed"), (39, "scheduler_exit"), (45, "scheduler_timeout"),
                              (46, "ms_error"), (47, "scheduler_timeout"), (58, "job_failed")]
    killed = console[[e.kind for e in console].index("worker_exit")]
    assert (killed.pid, killed.exit_code) == (3810, -9)
    assert killed.message.endswith("Error code: -9. (killed by SIGKILL)")
    # the killed rank's log names that pid, so the console can say which rank it was
    rank_1 = lines_of(LOGS / "msrun-sigkill" / "worker_1.log")
    assert {line_pid(line) for line in rank_1 if line.startswith("[")} == {3810}
    assert not [e for e in parse(rank_1) if e.severity == "error"]  # nothing in its own log

    scheduler = parse_file(LOGS / "msrun-sigkill" / "scheduler.log")
    assert kinds(scheduler) == [(17, "scheduler_timeout"), (18, "ms_error"), (19, "scheduler_timeout")]
    node, _, block = scheduler[-3:]
    assert node.message == "Timed out nodes: 1"
    # the init() traceback with MindSpore's C++ call stack after the exception: one event
    assert block.message == "Timed out nodes: 1 (worker 1 timed out first)"
    assert len(block.lines) == 11 and block.lines[-1].endswith("meta_server_node.cc:554 UpdateTopoState")
    assert block.source is not None and block.source.endswith("mindspore/communication/management.py:210")


def test_recorded_clean_runs_have_no_errors():
    for path in sorted((LOGS / "msrun-ok").iterdir()):
        events = parse_file(path)
        assert not [e for e in events if e.severity == "error"], path
    glog = parse_file(LOGS / "msrun-ok-glog1" / "console.txt")
    assert not [e for e in glog if e.severity == "error"]
    done = [e for e in glog if e.kind == "all_exited"]
    assert len(done) == 1 and done[0].time == ms_time("2026-12-06-21:12:06.330.00")


def test_recorded_training_of_our_own_ranks():
    for rank in (0, 1):
        events = parse_file(LOGS / "train-tiny" / f"worker_{rank}.log")
        losses = [e.loss for e in events if e.kind == "loss"]
        assert [r.step for r in losses if r] == [1, 2, 3, 4, 5, 6]
        assert all(r is not None and r.total_steps == 200 and r.loss is not None and 9 < r.loss < 11 and
                   set(r.parts) == {"lm_loss", "load_balancing_loss", "mtp_loss"} for r in losses)
        assert not [e for e in events if e.severity == "error"]
    first = parse_file(LOGS / "train-tiny" / "worker_0.log")
    step_1 = next(e for e in first if e.kind == "loss")
    assert step_1.time == calendar.timegm((2026, 12, 6, 21, 9, 55, 0, 0, 0)) + 0.122


def test_recorded_mindspore_error_with_call_stack():
    events = parse_file(LOGS / "mindspore-shape-error.txt")
    assert len(events) == 1
    error = events[0]
    assert error.kind == "traceback" and len(error.lines) == 15
    assert error.message == \
        "RuntimeError: For 'MatMulExt' op, shape1[-1] must be equal to shape2[-2], but got 3 and 2."
    assert error.lines[-1] == "mindspore/ops/infer/ops_func_impl//matmul_ext.cc:43 CheckMatMulShapes"


# -- grouping ------------------------------------------------------------------------------------

def test_chained_tracebacks_are_one_event():
    lines = ["Traceback (most recent call last):", '  File "a.py", line 1, in <module>', "KeyError: 'x'", "",
             "During handling of the above exception, another exception occurred:", "",
             "Traceback (most recent call last):", '  File "a.py", line 3, in <module>',
             "ValueError: loss is nan, terminate training.", "rank 0 done"]
    events = parse(lines)
    assert [(e.line, e.kind, len(e.lines)) for e in events] == [(1, "nan_loss", 9)]
    assert events[0].message == "ValueError: loss is nan, terminate training."


def test_oom_raised_as_an_exception_is_one_oom_event():
    block = lines_of(REFERENCE / "oom-block.txt")
    lines = ["Traceback (most recent call last):", '  File "train.py", line 9, in <module>',
             "    model.train()", "RuntimeError: ", *block, "rank 0 exits"]
    events = parse(lines)
    assert [(e.kind, len(e.lines)) for e in events] == [("oom", 4 + len(block))]


def test_two_tracebacks_back_to_back_are_two_events():
    one = ["Traceback (most recent call last):", '  File "a.py", line 1, in <module>', "KeyError: 'x'"]
    events = parse(one + one)
    assert [(e.line, e.kind) for e in events] == [(1, "traceback"), (4, "traceback")]


def test_a_long_traceback_is_cut_keeping_its_head_and_exception():
    frames = [f'  File "deep.py", line {i}, in f' for i in range(5000)]
    lines = ["Traceback (most recent call last):", *frames,
             "RecursionError: maximum recursion depth exceeded"]
    events = parse(lines)
    assert len(events) == 1
    event = events[0]
    assert len(event.lines) == MAX_EVENT_LINES
    assert event.lines[0] == lines[0] and event.lines[-1] == lines[-1]
    marker = [line for line in event.lines if "lines cut" in line]
    assert marker == [f"… [{len(lines) - MAX_EVENT_LINES + 1} lines cut] …"]
    assert event.message == "RecursionError: maximum recursion depth exceeded"


def test_a_lone_dashed_line_is_nothing():
    assert parse(["-" * 52, "rank 0 of 2", "-" * 52]) == []


def test_pending_group_and_resume():
    lines = lines_of(LOGS / "msrun-sigkill" / "console.txt")
    whole = parse(lines)
    parser = LogEventParser()
    head = parser.feed(lines[:50])  # inside the scheduler's traceback (starts at line 47)
    assert parser.pending_from == 47
    # a console restarting from the persisted point parses the rest the same way
    again = LogEventParser(first_line=47, last_time=parser.last_time)
    rest = again.feed(lines[46:]) + again.flush()
    assert head + rest == whole


def test_feeding_in_any_pieces_gives_the_same_events():
    lines = lines_of(LOGS / "msrun-sigkill" / "console.txt") + lines_of(LOGS / "mindspore-shape-error.txt")
    whole = parse(lines)
    for size in (1, 2, 3, 7, 50):
        parser = LogEventParser()
        events: list[LogEvent] = []
        for start in range(0, len(lines), size):
            events += parser.feed(lines[start:start + size])
        assert events + parser.flush() == whole


def test_first_line_and_last_time_carry_over():
    events = parse(["Traceback (most recent call last):", "OSError: disk full"],
                   first_line=101, last_time=5.0)
    assert [(e.line, e.time) for e in events] == [(101, 5.0)]


# -- single-line helpers -------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "clock", "fraction"), [
    ("[WARNING] ME(1:2,MainProcess):2026-11-28-12:46:19.300.00 [x.py:1] m", (2026, 11, 28, 12, 46, 19), 0.3),
    ("[WARNING] DEVICE(1,7f,python):2026-11-28-12:47:14.221.381 [x.cc:1] F] m", (2026, 11, 28, 12, 47, 14),
     0.221381),
    ("2025-04-07 15:34:27,308 - [callback.py:529] - INFO - x", (2025, 4, 7, 15, 34, 27), 0.308),
    ("2025-04-07 15:34:27.363613 info 1879138 [TTP controller.cpp:1512] x", (2025, 4, 7, 15, 34, 27),
     0.363613),
    ("[ERROR] 2025-10-11-15:09:34 (PID:2969, Device:0, RankID:101) ERR00100 x", (2025, 10, 11, 15, 9, 34),
     0.0),
])
def test_line_time_reads_every_timestamp_as_utc(text: str, clock: tuple[int, ...], fraction: float):
    assert line_time(text) == pytest.approx(calendar.timegm((*clock, 0, 0, 0)) + fraction)


@pytest.mark.parametrize("text", ["2026-13-01 00:00:00", "2026-02-31-99:00:00", "no time",
                                  "9999-99-99 99:99:99"])
def test_impossible_times_are_none(text: str):
    assert line_time(text) is None


def test_line_pid():
    assert line_pid("[WARNING] DISTRIBUTED(11278,7f2f02a0db80,python):2026-11-28-12:47:08.900.731 [x] y") \
        == 11278
    assert line_pid("[WARNING] ME(10280:140340315519872,MainProcess):2026-11-28-12:45:58.721.000 [x] y") \
        == 10280
    assert line_pid("Worker process 10448 exit with exception.") is None


@pytest.mark.parametrize(("line", "severity"), [
    ("Traceback (most recent call last):", "error"), ("RuntimeError: simulated failure on rank 1", "error"),
    ("[ERROR] ME(1:2,MainProcess):2026-11-28-12:46:08.373.000 [x.py:1] boom", "error"),
    ("[WARNING] DISTRIBUTED(1,7f,python):2026-11-28-12:47:09.071.939 [c.cc:316] BuildCluster] Topology build "
     "timed out., retry(1/120).", "info"),
    ("[WARNING] ME(1:2,MainProcess):2026-11-28-12:46:08.373.000 [x.py:1] careful", "warning"),
    ("{ step:[    1/   10], loss:  11.813965, per_step_time:  13570ms, lr: 1.000000e-05 }", "info"),
    ("  File \"a.py\", line 1, in <module>", None), ("rank 0 of 2", None),
])
def test_line_severity(line: str, severity: str | None):
    assert line_severity(line) == severity


def test_loss_ranks_and_followed_ranks():
    assert loss_ranks(world=8, pipeline_stages=2) == range(4, 8)
    assert loss_ranks(world=8, pipeline_stages=1) == range(8)
    assert loss_ranks(world=32, pipeline_stages=4) == range(24, 32)
    assert loss_ranks(world=2, pipeline_stages=4) == range(1, 2)
    assert loss_ranks(world=0, pipeline_stages=2) == range(0)
    assert loss_ranks(world=8, pipeline_stages=0) == range(8)
    assert default_followed_ranks(world=8) == (0, 7)
    assert default_followed_ranks(world=1) == (0,)
    assert default_followed_ranks(world=0) == ()


# -- never raising -------------------------------------------------------------------------------

FRAGMENTS = [
    "Traceback (most recent call last):", '  File "x.py", line 1, in f', "RuntimeError: ", "-" * 52,
    "- Framework Error Message:", "- C++ Call Stack: (For framework developers)", "", "EI0002: x",
    "    Possible Cause: y",
    "[ERROR] ME(1:2,M):2026-11-28-12:46:08.373.000 [a.py:1] Worker process 9 exit with exception. "
    "Error code: -9.",
    "{ step:[    1/   10], loss: nan, per_step_time: 5ms }",
    "During handling of the above exception, another exception occurred:", "x.cc:1 F", "Out of Memory!!!",
    "output result is: [{'text_generation_text': ['", "total time: 1 s; generated tokens: 2 tokens; "]


def check_events(events: list[LogEvent], first: int, count: int) -> None:
    numbers = [e.line for e in events]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert all(first <= n < first + max(count, 1) for n in numbers)
    for event in events:
        assert event.severity == KINDS[event.kind]
        assert 1 <= len(event.lines) <= MAX_EVENT_LINES
        assert event.time is None or math.isfinite(event.time)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.one_of(st.text(max_size=200), st.sampled_from(FRAGMENTS),
                                st.builds(str.__add__, st.sampled_from(FRAGMENTS), st.text(max_size=40))),
                      max_size=60), first=st.integers(1, 10**6))
def test_any_text_lines_never_raise(lines: list[str], first: int):
    parser = LogEventParser(first_line=first)
    events = parser.feed(lines) + parser.flush()
    check_events(events, first, len(lines))
    assert parser.pending_from is None


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=4000))
def test_any_bytes_never_raise(data: bytes):
    lines = data.decode("utf-8", errors="replace").split("\n")
    events = parse(lines)
    check_events(events, 1, len(lines))
    for line in lines:
        line_severity(line)
        line_pid(line)
        line_time(line)


@given(world=st.integers(-5, 5000), stages=st.integers(-5, 100))
def test_rank_helpers_never_raise(world: int, stages: int):
    ranks = loss_ranks(world=world, pipeline_stages=stages)
    assert all(0 <= r < world for r in ranks) and (len(ranks) > 0) == (world > 0)
    followed = default_followed_ranks(world=world)
    assert list(followed) == sorted(set(followed))


# -- summary -------------------------------------------------------------------------------------

def test_summary_of_a_training_log():
    summary = summarize(parse_file(LOGS / "train-tiny" / "worker_0.log"))
    assert (summary.steps, summary.first_step, summary.last_step, summary.total_steps) == (6, 1, 6, 200)
    assert summary.first_loss is not None and summary.first_loss.step == 1
    assert summary.min_loss is not None and summary.min_loss.step == 6
    assert summary.mean_step_ms == pytest.approx((341 + 733 + 702 + 1165 + 3483) / 5, abs=300)
    assert summary.steps_per_second is not None and summary.error_count == 0 and summary.errors == ()
    text = summary_lines(summary)
    assert text[0] == "steps: 6 (step 1 to 6 of 200)"
    assert text[1].startswith("loss: first 9.9")
    assert summary.as_json()["steps"] == 6


def test_summary_of_the_reference_loss_lines_and_errors():
    events = parse(lines_of(Path(__file__).parent / "samples" / "loss-lines.txt")[:5]
                   + lines_of(REFERENCE / "oom-block.txt"))
    summary = summarize(events)
    assert summary.mean_step_ms == pytest.approx((1752 + 1754 + 1756 + 1758) / 4)
    assert summary.throughput_tflops == pytest.approx((2.896 + 170.738 + 170.523 + 170.319 + 170.173) / 5)
    assert [(e.kind, e.line) for e in summary.errors] == [("oom", 6)]
    assert summary.errors[0].first_lines[1] == "- Framework Error Message:"
    text = summary_lines(summary)
    assert "errors: 1" in text and "  line 6: oom: Out of Memory!!! Request memory size: 33100113920B, " \
        "Memory Statistic:" in text


def test_summary_of_nothing_and_of_a_nan():
    assert summary_lines(summarize([])) == ["steps: none seen", "warnings: 0", "errors: 0"]
    nan = summarize(parse(["{ step:[    1/   10], loss: nan, per_step_time: 5ms }"]))
    assert nan.steps == 1 and nan.min_loss is None and nan.error_count == 1


def _severity_by_parsing(line: str) -> str | None:
    """line_severity as it was: the whole single-line parse of every line."""
    if line.startswith("Traceback (most recent call last)") or loglines._exception_line(line):
        return "error"
    event = loglines.single_event(line, 0, None)
    return event.severity if event is not None else None


def test_line_severity_takes_short_cuts_that_agree_with_parsing():
    every = [line for path in sorted(LOGS.rglob("*")) if path.is_file() and path.suffix in (".log", ".txt")
             for line in lines_of(path)]
    assert len(every) > 1000
    assert [line_severity(line) for line in every] == [_severity_by_parsing(line) for line in every]


def test_line_severity_does_not_parse_a_plain_loss_line_or_look_for_words_in_an_error(
        monkeypatch: pytest.MonkeyPatch):
    loss = ("2026-12-06 21:10:05,122 - mindformers[train.py:86] - INFO - { Epoch:[  1/  1], "
            "step:[    3/  200], loss: 9.997000, per_step_time: 341ms, lr: 0.00015, overflow cond: False, "
            "loss_scale: 1.0")
    error = ("[ERROR] DISTRIBUTED(3900,7f1d12dfab80,python):2026-12-06-21:07:20.000.000 "
             "[mindspore/ccsrc/cluster/rpc/tcp/tcp_comm.cc:485] Connect] Connection refused")

    def costly(*_: object) -> None:
        raise AssertionError("the short cut was not taken")

    monkeypatch.setattr(loglines, "parse_loss_line", costly)
    monkeypatch.setattr(loglines, "specific_kind", costly)
    assert line_severity(loss) == "info"
    assert line_severity(error) == "error"


def test_our_trainers_checkpoint_line_is_a_checkpoint_event():
    line = ("2026-12-06 22:28:10,511 - mindformers[trainer.py:198] - INFO - saved checkpoint "
            "output/checkpoint/rank_0/tiny_rank_0-1_200.ckpt")
    [event] = LogEventParser().feed([line])
    assert (event.kind, event.severity) == ("checkpoint", "info")
    assert event.message == "saved checkpoint output/checkpoint/rank_0/tiny_rank_0-1_200.ckpt"
