"""The pure parts of serving: answer text made incrementally with stop strings, the chat template, the
client's reading of server-sent events, answer timing on a given clock, and the load test's figures."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from console.serving.answer import AnswerClock
from console.serving.bench import RequestResult, local_url_problem, percentile, summarize
from console.serving.client import (
    Chunk,
    EndpointError,
    ServingClient,
    base_url,
    chunk_of,
    parsed_chunk,
    sse_data,
)
from model.servetext import ASSISTANT, END, USER, Message, TextStream, chat_prompt
from tests.held_endpoint import fixed_endpoint

PIECES = ["Hel", "lo", " wor", "ld", "!"]


def decoder(pieces: list[str]):
    """Token i decodes to pieces[i]; a token of None is the first half of a character."""
    return lambda ids: "".join(pieces[i] for i in ids)


def streamed(stream: TextStream, tokens: int) -> list[str]:
    return [stream.add(i).text for i in range(tokens)] + [stream.flush().text]


def test_text_comes_a_piece_a_token_and_ends_whole():
    stream = TextStream(decoder(PIECES))
    assert streamed(stream, 5) == [*PIECES, ""]
    assert stream.sent == "Hello world!"


def test_a_stop_string_across_tokens_is_never_sent_and_ends_the_answer():
    stream = TextStream(decoder(PIECES), stops=["o wo"])
    assert stream.add(0).text == "Hel"
    held = stream.add(1)
    assert held.text == "l" and not held.stopped  # "o" could begin the stop: held back
    ended = stream.add(2)
    assert ended.stopped and ended.text == ""
    assert stream.sent == "Hell"


def test_text_held_for_a_stop_that_never_comes_is_sent_at_the_end():
    stream = TextStream(decoder(PIECES), stops=["d?"])
    pieces = streamed(stream, 4)
    assert pieces == ["Hel", "lo", " wor", "l", "d"]
    assert stream.sent == "Hello world"


def test_half_a_character_waits_for_its_other_half():
    halves = {0: "\u5317", 1: "\ufffd"}  # token 1 alone is the first bytes of 京
    stream = TextStream(lambda ids: "".join(halves[i] for i in ids) if ids != [0, 1, 2] else "北京")
    assert stream.add(0).text == "北"
    assert stream.add(1).text == ""
    assert stream.add(2).text == "京"


def test_bytes_that_are_no_character_are_sent_after_four_tokens_not_held_to_the_end():
    stream = TextStream(lambda ids: "d" + "\ufffd" * (len(ids) - 1))
    assert [stream.add(i).text for i in range(6)] == ["d", "", "", "", "\ufffd" * 4, "\ufffd"]


def test_chat_prompt_is_deepseeks_template_with_the_assistant_turn_open():
    prompt = chat_prompt([Message("system", "Be brief."), Message("user", "Hi"),
                          Message("assistant", "Hello"), Message("user", "Who?")])
    assert prompt == f"Be brief.{USER}Hi{ASSISTANT}Hello{END}{USER}Who?{ASSISTANT}"


def test_sse_data_reads_data_lines_up_to_done_and_skips_the_rest():
    lines = [": keep-alive", "event: message", 'data: {"a": 1}', "", "data:{\"b\": 2}", "data: [DONE]",
             'data: {"after": true}']
    assert list(sse_data(lines)) == ['{"a": 1}', '{"b": 2}', "[DONE]"]


def test_chunks_of_chat_completion_usage_and_error_events():
    assert chunk_of({"choices": [{"delta": {"content": "x"}, "finish_reason": None}]}) == Chunk("x")
    assert chunk_of({"choices": [{"text": "y", "finish_reason": "stop"}]}) == Chunk("y", "stop")
    assert chunk_of({"choices": [], "usage": {"completion_tokens": 7}}) == Chunk(completion_tokens=7)
    with pytest.raises(EndpointError, match="out of memory"):
        chunk_of({"error": {"message": "out of memory", "type": "server_error"}})
    for junk in ("{not json", '{"choices": [1]}', "[]"):
        with pytest.raises(EndpointError, match="not an OpenAI chunk"):
            parsed_chunk(junk)


@pytest.mark.parametrize(("given", "root"), [
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000"), ("127.0.0.1:8000", "http://127.0.0.1:8000"),
    ("https://host/v1/", "https://host"),
])
def test_base_url_is_the_servers_root(given, root):
    assert base_url(given) == root


@pytest.mark.parametrize(("given", "said"), [
    ("ftp://127.0.0.1:8000", "http:// or https://"), ("http://a b:80", "no host name"), ("", "no host name"),
    ("http://127.0.0.1:99999", "1 to 65535"),
])
def test_a_url_that_names_no_server_says_why(given, said):
    with pytest.raises(ValueError, match=said):
        base_url(given)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "localhost:9", "http://[::1]:8000/v1",
                                 "http://127.0.0.2:80"])
def test_local_endpoints_may_be_load_tested(url):
    assert local_url_problem(url) is None


@pytest.mark.parametrize("url", ["http://10.0.0.5:8000", "https://api.openai.com/v1", "node-1:8000"])
def test_other_endpoints_are_refused_with_the_reason(url):
    problem = local_url_problem(url)
    assert problem is not None and "not this machine" in problem and "ssh -L" in problem


def test_answer_clock_times_the_first_text_and_prefers_the_servers_count():
    ticks = itertools.count(0.0, 0.5)  # each reading half a second after the last
    clock = AnswerClock(lambda: next(ticks))
    for chunk in (Chunk(""), Chunk("a"), Chunk("b"), Chunk("", "length"), Chunk(completion_tokens=3)):
        clock.heard(chunk)
    stats = clock.stats()
    assert stats.first_token_seconds == 1.0 and stats.seconds == 2.5
    assert stats.tokens == 3 and stats.text == "ab" and stats.finish_reason == "length"
    assert stats.tokens_per_second == pytest.approx(1.2)


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.99])
def test_percentiles_interpolate_as_numpy_does(fraction):
    values = [0.3, 1.7, 0.2, 5.0, 2.2, 0.9, 1.1]
    assert percentile(values, fraction) == pytest.approx(float(np.percentile(values, fraction * 100)))


def test_the_report_counts_completed_tokens_rates_and_folds_errors():
    ticks = itertools.count(0.0, 1.0)
    answers = []
    for tokens in (4, 2):
        clock = AnswerClock(lambda: next(ticks))
        for _ in range(tokens):
            clock.heard(Chunk("t"))
        answers.append(RequestResult(clock.stats()))
    failed = [RequestResult(None, "cannot reach x"), RequestResult(None, "cannot reach x")]
    report = summarize([*answers, *failed], model="m", concurrency=2, duration=4.0)
    assert report.completed == 2 and report.requests == 4 and report.errors == {"cannot reach x": 2}
    assert report.output_tokens == 6 and report.output_tokens_per_second == 1.5
    assert report.requests_per_second == 0.5
    assert report.ttft is not None and report.ttft.mean == 1.0  # each answer's first text a tick in
    assert report.latency is not None and report.latency.p50 == pytest.approx(3.0)
    assert report.tpot is not None and report.tpot.mean == 1.0


@pytest.mark.parametrize(("body", "said"), [
    ('{"data": [{"name": "m"}]}', "not an OpenAI /v1/models answer"),
    ('{"models": ["m"]}', "not an OpenAI /v1/models answer"),
    ("[1, 2]", "not a JSON object"),
])
def test_a_models_answer_that_is_not_openais_is_said_as_such(body, said):
    with fixed_endpoint(200, body) as url, ServingClient(url) as client, \
            pytest.raises(EndpointError) as wrong:
        client.model()
    assert said in str(wrong.value) and wrong.value.reachable and wrong.value.kind == "failed"


def test_a_stream_that_ends_without_done_stopped_midway():
    cut = 'data: {"choices": [{"delta": {"content": "x"}}]}\n\n'
    with fixed_endpoint(200, cut, "text/event-stream") as url, ServingClient(url) as client:
        pieces = client.stream("/v1/chat/completions", {"messages": []})
        assert next(pieces) == Chunk("x")
        with pytest.raises(EndpointError, match="without \\[DONE\\]") as cut_off:
            next(pieces)
    assert cut_off.value.kind == "gone"


@pytest.mark.parametrize(("status", "kind"), [(400, "refused"), (404, "refused"), (500, "failed")])
def test_an_error_status_is_a_refusal_or_a_failure(status, kind):
    body = '{"error": {"message": "no", "type": "x"}}'
    with fixed_endpoint(status, body) as url, ServingClient(url) as client, \
            pytest.raises(EndpointError) as said:
        client.models()
    assert said.value.kind == kind and said.value.reachable
