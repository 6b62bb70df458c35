"""`model.serve` for real: the small model with fresh weights on a local port, asked over HTTP as any
OpenAI client asks it; then our client, `chat --prompt` and `bench-serve` against it. Bad requests get
OpenAI's error body and the server goes on serving; a client that leaves mid-stream frees the thread."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys

import httpx
import pytest
from tokenizers import Tokenizer, processors

from bench.served import Server, serving
from console.serving.client import EndpointError, ServingClient
from tests.rank_jobs import REPO
from tests.serving import running_server, serve_files

CHAT = [{"role": "user", "content": "Hello, who are you?"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("serve")) as running:
        yield running


def post(server: Server, route: str, body: object) -> httpx.Response:
    content = body if isinstance(body, str) else json.dumps(body)
    return httpx.post(f"{server.url}{route}", content=content, headers={"content-type": "application/json"},
                      timeout=120)


def events(response: httpx.Response) -> list[str]:
    return [line[len("data: "):] for line in response.text.splitlines() if line.startswith("data: ")]


def test_readiness_lines_and_routes_are_logged_as_uvicorn_and_vllm_print_them(server):
    log = server.log_text()
    for line in ("Application startup complete.", "Available routes are:", "Route: /health, Methods: GET",
                 "Route: /v1/models, Methods: GET", "Route: /v1/chat/completions, Methods: POST",
                 "Route: /v1/completions, Methods: POST", "freshly initialised weights"):
        assert line in log


def test_models_lists_the_model_with_the_fresh_weights_warning(server):
    listed = httpx.get(f"{server.url}/v1/models", timeout=10).json()
    [model] = listed["data"]
    assert listed["object"] == "list" and model["id"] == "tiny" and model["object"] == "model"
    assert "freshly initialised weights" in model["warning"]
    assert model["max_model_len"] == 512


def test_a_chat_completion_answers_in_openai_form(server):
    answer = post(server, "/v1/chat/completions", {"model": "tiny", "messages": CHAT, "max_tokens": 5})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["object"] == "chat.completion" and body["model"] == "tiny"
    [choice] = body["choices"]
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("length", "stop")
    assert 1 <= body["usage"]["completion_tokens"] <= 5
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_a_streamed_chat_sends_a_chunk_a_token_and_ends_with_done(server):
    answer = post(server, "/v1/chat/completions",
                  {"messages": CHAT, "max_tokens": 6, "stream": True, "temperature": 0, "ignore_eos": True,
                   "stream_options": {"include_usage": True}})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
    data = events(answer)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 6
    texts = [c["choices"][0]["delta"].get("content") for c in chunks[1:-2]]
    assert 1 <= len(texts) <= 6 and all(texts)  # a token a chunk (a half character waits for its rest)


def test_completions_answer_greedily_the_same_streamed_or_whole(server):
    body = {"prompt": "def add(a, b):", "max_tokens": 8, "temperature": 0, "ignore_eos": True}
    whole = post(server, "/v1/completions", body).json()
    assert whole["object"] == "text_completion" and whole["usage"]["completion_tokens"] == 8
    streamed = [json.loads(d) for d in events(post(server, "/v1/completions", {**body, "stream": True}))[:-1]]
    assert "".join(c["choices"][0]["text"] for c in streamed) == whole["choices"][0]["text"]


def test_openais_newer_forms_are_read_as_the_older_ones(server):
    older = {"messages": [{"role": "system", "content": "Be brief."}, *CHAT], "max_tokens": 3,
             "temperature": 0, "ignore_eos": True}
    newer = {"messages": [{"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
                          {"role": "user", "content": [{"type": "text", "text": "Hello, "},
                                                       {"type": "text", "text": "who are you?"}]}],
             "max_completion_tokens": 3, "temperature": 0, "ignore_eos": True}
    answers = [post(server, "/v1/chat/completions", body).json() for body in (older, newer)]
    assert answers[0]["usage"] == answers[1]["usage"] and answers[1]["usage"]["completion_tokens"] == 3
    assert answers[0]["choices"][0]["message"] == answers[1]["choices"][0]["message"]


def test_a_stop_string_ends_the_answer_before_it(server):
    body = {"prompt": "The quick brown", "max_tokens": 12, "temperature": 0, "ignore_eos": True}
    full = post(server, "/v1/completions", body).json()["choices"][0]["text"]
    stop = full[3:5]  # two characters of the greedy answer: it stops where they begin
    # room for 400 tokens: the generation is stopped long before it could end on its own
    answer = post(server, "/v1/completions", {**body, "max_tokens": 400, "stop": [stop]}).json()
    [cut] = answer["choices"]
    assert cut["finish_reason"] == "stop"
    assert cut["text"] == full[:full.index(stop)]
    log = server.wait_for_log(f"Generation {answer['id']} ended")
    ended = re.search(rf"Generation {answer['id']} ended after (\d+) tokens \(stopped\)", log)
    assert ended is not None and int(ended.group(1)) < 400


@pytest.mark.parametrize(("route", "body", "status", "param"), [
    ("/v1/chat/completions", '{"messages": [', 400, None),
    ("/v1/chat/completions", {"model": "tiny"}, 400, "messages"),
    ("/v1/completions", {"prompt": "x", "max_tokens": -3}, 400, "max_tokens"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": CHAT}, 404, "model"),
    ("/v1/completions", {"prompt": "word " * 600}, 400, "prompt"),
    ("/v1/chat/completions", {"messages": CHAT, "max_tokens": 600}, 400, "messages"),
    ("/v1/chat/completions", {"messages": CHAT, "n": 3}, 400, "n"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400,
     "messages.0.content.str"),
])
def test_bad_input_is_a_4xx_with_openais_error_body_and_the_server_goes_on(server, route, body, status,
                                                                            param):
    refused = post(server, route, body)
    assert refused.status_code == status, refused.text
    error = refused.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["message"]
    if "context" in error["message"]:
        assert error["code"] == "context_length_exceeded" and "512 tokens" in error["message"]
    assert post(server, "/v1/completions", {"prompt": "x", "max_tokens": 1}).status_code == 200


FAILING = {"prompt": "Once", "max_tokens": 4, "seed": -1}
"""A request the generation fails on: numpy's generator takes no negative seed, which OpenAI's API
allows and the server passes on."""


def test_a_generation_that_fails_is_a_500_with_openais_error_body_and_the_server_goes_on(server):
    failed = post(server, "/v1/completions", FAILING)
    assert failed.status_code == 500, failed.text
    error = failed.json()["error"]
    assert error["type"] == "server_error" and "ValueError" in error["message"]
    assert post(server, "/v1/completions", {"prompt": "x", "max_tokens": 1}).status_code == 200


def test_a_streamed_generation_that_fails_ends_with_an_error_event_then_done(server):
    data = events(post(server, "/v1/completions", {**FAILING, "stream": True}))
    assert data[-1] == "[DONE]"
    assert json.loads(data[-2])["error"]["type"] == "server_error"
    with ServingClient(server.url) as client, pytest.raises(EndpointError, match="failed mid-answer"):
        list(client.stream("/v1/completions", FAILING))


def test_a_prompt_of_no_tokens_is_refused(tmp_path):
    job, tokenizer = serve_files(tmp_path)
    bare = Tokenizer.from_file(str(tokenizer))
    bare.post_processor = processors.ByteLevel()  # no begin-of-sentence token: "" is no token at all
    bare.save(str(tokenizer))
    with serving(tmp_path, ["--config", str(job), "--tokenizer", str(tokenizer)],
                 corpus=tmp_path / "corpus") as server:
        refused = post(server, "/v1/completions", {"prompt": ""})
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["param"] == "prompt" and "empty" in error["message"]


def test_a_client_leaving_mid_stream_frees_the_generation_for_the_next_request(server):
    with httpx.stream("POST", f"{server.url}/v1/completions", timeout=120,
                      json={"prompt": "Once", "max_tokens": 400, "ignore_eos": True, "stream": True}) as left:
        lines = left.iter_lines()
        first = json.loads(next(line for line in lines if line.startswith("data: "))[6:])
    gone = first["id"]
    text = server.wait_for_log(f"Generation {gone} ended")
    ended = re.search(rf"Generation {gone} ended after (\d+) tokens \(stopped\)", text)
    assert ended is not None and int(ended.group(1)) < 400
    assert f"Aborted request {gone} after" in text
    nxt = post(server, "/v1/completions", {"prompt": "next", "max_tokens": 2, "ignore_eos": True}).json()
    assert nxt["usage"]["completion_tokens"] == 2
    log = server.log_text()  # the next one ran after the one left had stopped, not 400 tokens later
    assert log.index(f"Generation {gone} ended") < log.index(f"Finished request {nxt['id']}")


def test_a_client_leaving_a_whole_answer_frees_the_generation_for_the_next_request(server):
    host, port = server.url.removeprefix("http://").split(":")
    asked = len(server.log_text())
    body = json.dumps({"prompt": "Once", "max_tokens": 400, "ignore_eos": True}).encode()
    with socket.create_connection((host, int(port)), timeout=60) as left:
        left.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        gone = server.wait_for_match(r"Added request (\S+)", start=asked).group(1)
    log = server.wait_for_log(f"Generation {gone} ended")
    ended = re.search(rf"Generation {gone} ended after (\d+) tokens \(stopped\)", log)
    assert ended is not None and int(ended.group(1)) < 400
    assert f"Aborted request {gone} after" in log


def test_a_request_given_up_while_it_waited_never_runs(server):
    body = {"prompt": "Once", "max_tokens": 400, "ignore_eos": True, "stream": True}
    route = f"{server.url}/v1/completions"
    with httpx.stream("POST", route, json=body, timeout=120) as running:
        lines = running.iter_lines()
        first = json.loads(next(line for line in lines if line.startswith("data: "))[6:])["id"]
        with httpx.stream("POST", route, json={**body, "max_tokens": 5}, timeout=120):
            waiting = server.wait_for_match(rf"Added request {first}[\s\S]*Added request (\S+)").group(1)
        # left while it waited; then the running one is left too, and the thread comes to the waiting one
    log = server.wait_for_log(f"Generation {waiting} ended")
    assert f"Generation {waiting} ended after 0 tokens (stopped)" in log


def test_our_client_streams_an_answer_and_says_what_the_server_refused(server):
    with ServingClient(server.url + "/v1") as client:
        model = client.model()
        assert model.id == "tiny" and model.warning is not None
        # ignore_eos: fresh weights may well draw the end-of-sentence token before the fourth
        chunks = list(client.stream("/v1/chat/completions", {"messages": CHAT, "max_tokens": 4,
                                                             "ignore_eos": True}))
        assert chunks[-1].completion_tokens == 4
        with pytest.raises(EndpointError) as refused:
            list(client.stream("/v1/chat/completions", {"model": "nope", "messages": CHAT}))
    said = str(refused.value)
    assert refused.value.reachable and "404" in said and "`nope` does not exist" in said
    assert refused.value.code == "model_not_found"


def test_our_client_goes_to_the_endpoint_itself_whatever_proxy_the_environment_names(server, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with ServingClient(server.url) as client:
        assert client.model().id == "tiny"


def console(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_chat_prompt_json_answers_once_with_its_figures(server):
    done = console("chat", "--url", server.url, "--prompt", "Hello", "--max-tokens", "5", "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["model"] == "tiny" and "freshly initialised" in answer["warning"]
    assert answer["tokens"] == 5 or answer["finish_reason"] == "stop"
    assert answer["first_token_seconds"] <= answer["seconds"] and answer["tokens_per_second"] > 0


def test_bench_serve_reports_every_figure_of_a_small_bounded_load(server):
    done = console("bench-serve", "--url", server.url, "--concurrency", "2", "--requests", "4",
                   "--max-tokens", "3", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["completed"] == 4 and report["errors"] == {} and report["output_tokens"] == 12
    assert report["requests_per_second"] > 0 and report["output_tokens_per_second"] > 0
    for figure in ("ttft", "tpot", "latency"):
        spread = report[figure]
        assert 0 < spread["p50"] <= spread["p90"] <= spread["p99"], figure
    assert report["ttft"]["p99"] <= report["latency"]["p99"]


@pytest.mark.parametrize(("args", "code", "said"), [
    (("chat", "--url", "ftp://127.0.0.1:9", "--prompt", "x"), 64, "http:// or https://"),
    (("chat", "--url", "http://127.0.0.1:9", "--json"), 64, "--json needs --prompt"),
    (("chat", "--url", "http://127.0.0.1:9", "--prompt", "x"), 2, "cannot reach http://127.0.0.1:9"),
    (("bench-serve", "--url", "http://10.1.2.3:8000", "--concurrency", "2", "--requests", "2"), 64,
     "not this machine"),
    (("bench-serve", "--url", "http://127.0.0.1:9", "--concurrency", "65", "--requests", "2"), 64,
     "at most 64"),
])
def test_commands_refuse_or_fail_with_the_reason_and_no_traceback(args, code, said):
    done = console(*args)
    assert done.returncode == code, done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr
