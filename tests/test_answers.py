"""Predict's answers read back (model/answers.py): MindFormers' result line in every form the reference
shows, many prompts, any UTF-8, the result file, the speed line; and the `answer` and `generation` events
the log parser makes of them. Garbage never raises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from console.commands.logs import print_answer
from console.jobs.answer import JobAnswer, file_answer, job_answer, speed_text
from console.jobs.logview import log_event_document
from console.records import LogEventRecord
from model.answers import (
    RESULT_FILE,
    Speed,
    file_texts,
    parse_speed,
    result_line,
    result_repr,
    result_texts,
    shown_text,
    speed_line,
)
from model.logevents import LogEventParser
from tests.handjobs import worker_exit_line

BOS = "<\uff5cbegin\u2581of\u2581sentence\uff5c>"
PREFIX = "2026-12-06 22:14:01,123 - mindformers[mindformers/trainer/base_trainer.py:1020] - INFO - "


def test_the_reference_result_line_with_a_chinese_prompt():
    line = PREFIX + "output result is: [{'text_generation_text': ['请介绍一下北京。北京是中国的首都']}]"
    assert result_texts(line) == ("请介绍一下北京。北京是中国的首都",)


def test_many_prompts_one_mapping_each_or_one_mapping_with_many_texts_in_prompt_order():
    each = "output result is: [{'text_generation_text': ['a 1']}, {'text_generation_text': ['b 2']}]"
    together = "output result is: [{'text_generation_text': ['a 1', 'b 2']}]"
    assert result_texts(each) == result_texts(together) == ("a 1", "b 2")


def test_quotes_newlines_and_emoji_survive_the_round_trip():
    texts = ["it's \"quoted\"\nand on two lines", "emoji 🙂 and tab\t", f"{BOS}Return the number of"]
    assert result_texts(result_line(texts)) == tuple(texts)
    assert shown_text(texts[2]) == "Return the number of"
    assert shown_text("no token") == "no token"


def test_the_result_file_is_the_same_repr_or_one_text_a_line():
    assert RESULT_FILE == "text_generation_result.txt"
    assert file_texts(result_repr(["x\ny", "z"])) == ("x\ny", "z")
    assert file_texts("first answer\n\nsecond answer\n") == ("first answer", "second answer")
    assert file_texts("") == ()
    assert file_texts(result_repr(["a long answer"])[:20]) == ()  # cut short: no answer made of its pieces


def test_what_is_not_a_result_is_none():
    assert result_texts("output result is saved at: text_generation_result.txt") is None
    assert result_texts("output result is: [not python") is None
    assert result_texts("output result is: [[{'score': 0.99, 'label': 'sunflower'}]]") is None
    assert result_texts("loss: 3.2") is None


def test_the_speed_line_mindformers_form_and_ours():
    theirs = (PREFIX.replace("trainer/base_trainer.py:1020", "generation/text_generator.py:478") +
              "total time: 0.6454319953918457 s; generated tokens: 9 tokens; generate speed: "
              "13.944149134621139 tokens/s")
    assert parse_speed(theirs) == Speed(0.6454319953918457, 9, 13.944149134621139)
    ours = Speed(1.5, 24, 16.0, 0.25)
    assert parse_speed(speed_line(ours)) == ours
    assert parse_speed("generated tokens: many") is None


def test_the_parser_makes_answer_and_generation_events_keeping_the_answer_line_whole():
    long_answer = "word " * 2000
    lines = [PREFIX + speed_line(Speed(2.0, 12, 6.0, 0.5)), PREFIX + result_line([long_answer, "二"]),
             PREFIX + "output result is saved at: text_generation_result.txt",
             PREFIX + ".........Predict Over!............."]
    events = LogEventParser().feed(lines)
    assert [e.kind for e in events] == ["generation", "answer"]
    assert events[0].message == "12 tokens in 2.00 s (6.0 tokens/s, first after 0.50 s)"
    assert result_texts(events[1].lines[0]) == (long_answer, "二")
    assert events[1].severity == "info" and events[1].message.endswith("…")


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.text(max_size=50), min_size=1, max_size=5))
def test_any_texts_come_back_as_they_went(texts: list[str]):
    assert result_texts(result_line(texts)) == tuple(texts)


@settings(max_examples=300, deadline=None)
@given(tail=st.one_of(st.text(max_size=300), st.sampled_from(["[" * 200, "{'text_generation_text': ",
                                                                 "[{'text_generation_text': [1, None]}]"])))
def test_garbage_never_raises(tail: str):
    result_texts("output result is: " + tail)
    file_texts(tail)
    parse_speed("total time: " + tail + " generated tokens: " + tail)


def recorded(kind: str, line: str, rank: int | None, node: str = "n0") -> LogEventRecord:
    return LogEventRecord("j", node, f"logs/worker_{rank}.log", 1, kind, "info", "", rank, None, (line,))


def test_the_jobs_answer_is_the_lowest_ranks_latest_with_its_speeds_one_a_prompt():
    events = [recorded("answer", result_line(["late rank"]), 1, "n1"),
              recorded("generation", speed_line(Speed(1.0, 4, 4.0, 0.2)), 0),
              recorded("generation", speed_line(Speed(2.0, 8, 4.0, 0.3)), 0),
              recorded("generation", speed_line(Speed(9.0, 9, 1.0)), 1, "n1"),
              recorded("answer", result_line([f"{BOS}old", "older"]), 0),
              recorded("answer", result_line([f"{BOS}first 一", "second"]), 0)]
    answer = job_answer(events)
    assert answer is not None and (answer.node, answer.rank) == ("n0", 0)
    assert answer.texts == ("first 一", "second")
    assert answer.speed_of(1) == Speed(2.0, 8, 4.0, 0.3)
    assert answer.as_json()["answers"][0] == {"prompt": 0, "text": "first 一", "seconds": 1.0, "tokens": 4,
                                              "tokens_per_second": 4.0, "first_token_seconds": 0.2}
    assert speed_text(Speed(2.0, 8, 4.0, 0.3)) == "first token 0.30 s · 8 tokens at 4.0 tokens/s"
    assert job_answer(events[1:4]) is None


def test_speeds_that_do_not_match_the_prompts_are_not_given_to_one():
    answer = job_answer([recorded("generation", speed_line(Speed(1.0, 4, 4.0)), 0),
                         recorded("answer", result_line(["a", "b"]), 0)])
    assert answer is not None and answer.speed_of(0) is None and len(answer.speeds) == 1


def test_a_result_file_answers_too():
    answer = file_answer("n0", "/jobs/j/text_generation_result.txt", result_repr([f"{BOS}x"]))
    assert answer is not None and answer.texts == ("x",) and answer.rank is None
    assert file_answer("n0", "/x", "") is None


def test_logs_json_gives_an_answer_events_texts():
    [event] = LogEventParser().feed([PREFIX + result_line([f"{BOS}甲", "b"])])
    document = log_event_document(event, node="n0", rank=0, file="logs/worker_0.log", time=None)
    assert document["kind"] == "answer" and document["texts"] == [f"{BOS}甲", "b"]


def test_logs_json_keeps_the_pid_and_exit_code_of_msruns_worker_line():
    line = worker_exit_line(4242, -9)
    [event] = LogEventParser().feed([line])
    document = log_event_document(event, node="n0", rank=None, file="console.log", time=None)
    assert (document["kind"], document["pid"], document["exit_code"]) == ("worker_exit", 4242, -9)


def test_an_answer_is_printed_whole_but_no_escape_sequence_of_it_reaches_the_terminal(capsys):
    print_answer(JobAnswer("n0", 0, ("first line\nsecond \x1b[2J line",)), as_json=False)
    out = capsys.readouterr().out
    assert "first line\nsecond ␛[2J line" in out and "\x1b[2J" not in out
