"""`python -m model.serve --config JOB.yaml [--checkpoint CKPT] --host 127.0.0.1 --port P`: serve the model.

An OpenAI-compatible HTTP server (FastAPI on uvicorn, the pair vLLM uses) around the small DeepSeek-V3:
`GET /health`, `GET /v1/models`, `POST /v1/chat/completions` and `POST /v1/completions`, streamed as
server-sent events ending in `data: [DONE]` when asked. Without a checkpoint the weights are freshly
initialised, for a smoke test: `/v1/models` and the log say so. Bad requests get a 4xx with OpenAI's
error body, a generation that fails a 500 with it (streamed: an error event, then `[DONE]`), and the
server goes on serving.

One generation runs at a time, on one thread off the event loop (a CPU runs one well); other requests
wait their turn. Tokens are sent as they are chosen, and a client that goes away, streamed or not,
stops its generation after the token being computed. Model and tokenizer are loaded as `model.predict`
loads them.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing, asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from model.data.convert import ConvertError
from model.predict import in_job_dir, model_tokenizer
from model.serveapi import (
    CHAT,
    COMPLETION,
    ChatRequest,
    CompletionRequest,
    RefusedError,
    Sampled,
    Shape,
    error_body,
    error_response,
    failure_message,
    sse,
    validation_message,
)
from model.servetext import Message, TextStream, chat_prompt
from model.train import CONFIG_ERROR, load_or_report, log, setup_logging

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from model.deepseek.generate import Sampling
    from model.deepseek.predictor import Predictor

CLIENT_GONE = 499
"""The status of a request whose client left before its answer (nginx's "client closed request")."""
DONE = "data: [DONE]\n\n"
"""A stream's last event, after its answer or its error."""
FRESH_WARNING = ("freshly initialised weights, not a trained checkpoint: the answers are noise "
                 "(a smoke test of the serving path)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m model.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True,
                        help="the job config the model was trained with")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="a .ckpt file, or a checkpoint directory (rank_0's newest is used), absolute or "
                             "relative to the job directory; default: the config's load_checkpoint, else "
                             "freshly initialised weights (a smoke test)")
    parser.add_argument("--tokenizer", type=Path, default=None,
                        help="tokenizer.json (default: processor.tokenizer.tokenizer_file, else the embedded "
                             "corpus's)")
    parser.add_argument("--job-dir", type=Path, default=None,
                        help="where relative paths are read from (default: the config's directory)")
    parser.add_argument("--served-model-name", default=None,
                        help="the model's id in /v1/models and requests (default: the config's file name)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0, help="the fresh weights' seed")
    return parser.parse_args(argv)


# --- the model --------------------------------------------------------------------------------------


class Model:
    """The network and its tokenizer. `tokens` is called on the generation thread only."""

    def __init__(self, predictor: Predictor, tokenizer: Tokenizer, *, name: str, fresh: bool) -> None:
        from model.data.convert import EOS_TOKEN

        self._predictor, self._tokenizer = predictor, tokenizer
        self.name = name
        self.warning = FRESH_WARNING if fresh else None
        self.context = predictor.network.spec.max_position_embeddings
        self.eos = tokenizer.token_to_id(EOS_TOKEN)
        self.created = int(time.time())

    def encode(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text).ids)

    def decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))

    def tokens(self, prompt: list[int], *, max_new_tokens: int, sampling: Sampling,
               ignore_eos: bool) -> Iterator[int]:
        from model.deepseek.generate import stream

        stops = frozenset() if self.eos is None or ignore_eos else frozenset({self.eos})
        return stream(self._predictor.network, prompt, max_new_tokens=max_new_tokens, stop_tokens=stops,
                      sampling=sampling)


_END = object()
"""The generation thread's last word on a request's queue."""


class Generations:
    """One generation at a time on one thread; each request waits its turn and may give it up."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate")
        self._stops: set[threading.Event] = set()

    async def tokens(self, label: str, prompt: list[int], *, max_new_tokens: int, sampling: Sampling,
                     ignore_eos: bool) -> AsyncGenerator[int, None]:
        """The new tokens as the thread chooses them. Closing the iterator (a client gone, a stop string)
        stops the generation after the token being computed, or before it starts if it is waiting."""
        loop = asyncio.get_running_loop()
        arrived: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()
        self._stops.add(stop)

        def run() -> None:
            made = 0
            try:
                if stop.is_set():  # its client left while it waited: not even the prompt is run
                    return
                for token in self.model.tokens(prompt, max_new_tokens=max_new_tokens, sampling=sampling,
                                               ignore_eos=ignore_eos):
                    if stop.is_set():
                        break
                    made += 1
                    loop.call_soon_threadsafe(arrived.put_nowait, token)
            except Exception as exc:  # noqa: BLE001 - the request ends with the error instead of waiting forever
                loop.call_soon_threadsafe(arrived.put_nowait, exc)
            finally:
                # the thread is free for the next request; "stopped": its client went or a stop string came
                stopped = " (stopped)" if stop.is_set() else ""
                log.info(f"Generation {label} ended after {made} tokens{stopped}")
                loop.call_soon_threadsafe(arrived.put_nowait, _END)

        loop.run_in_executor(self._pool, run)  # what it ends with arrives on the queue
        log.info(f"Added request {label}")
        try:
            while (item := await arrived.get()) is not _END:
                if isinstance(item, Exception):
                    raise item
                assert isinstance(item, int)
                yield item
        finally:
            stop.set()
            self._stops.discard(stop)

    def close(self) -> None:
        """Stop every generation (the server is shutting down) and let the thread end."""
        for stop in list(self._stops):
            stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)


# --- answers ------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """One request's answer so far: what its log line and `usage` say."""

    id: str
    prompt_tokens: int
    completion_tokens: int = 0
    finish: str | None = None
    text: list[str] = field(default_factory=list)

    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


class Server:
    """The routes' logic on a loaded model."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.generations = Generations(model)

    def models(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": self.model.name, "object": "model", "created": self.model.created,
                                 "owned_by": "ascend-console", "max_model_len": self.model.context}
        if self.model.warning is not None:
            entry["warning"] = self.model.warning
        return {"object": "list", "data": [entry]}

    def prompt_ids(self, request: ChatRequest | CompletionRequest) -> tuple[list[int], int]:
        """The prompt's tokens and the most new tokens to make, or a RefusedError saying why not."""
        if request.model is not None and request.model != self.model.name:
            raise RefusedError(404, f"The model `{request.model}` does not exist; this server serves "
                                    f"`{self.model.name}`.", param="model", code="model_not_found")
        if isinstance(request, ChatRequest):
            messages = [Message(m.template_role, m.text) for m in request.messages]
            text, param = chat_prompt(messages), "messages"
        else:
            text, param = request.prompt, "prompt"
        ids = self.model.encode(text)
        if not ids:  # the network needs a token to go on from
            raise RefusedError(400, f"The {param} is empty: there is nothing to go on from.", param=param)
        wanted = (request.token_limit if request.token_limit is not None
                  else max(1, self.model.context - len(ids)))
        if len(ids) + wanted > self.model.context:
            raise RefusedError(400, f"This model's maximum context length is {self.model.context} tokens. "
                                    f"However, you requested {len(ids) + wanted} tokens ({len(ids)} in the "
                                    f"{param}, {wanted} in the completion). Please reduce the length of the "
                                    f"{param} or completion.", param=param, code="context_length_exceeded")
        return ids, wanted

    async def pieces(self, request: Sampled, ids: list[int], wanted: int, tally: Tally) -> AsyncIterator[str]:
        """The answer's text as it comes; `tally` counts it and says why it ended."""
        from model.deepseek.generate import Sampling

        stops = [request.stop] if isinstance(request.stop, str) else (request.stop or [])
        text = TextStream(self.model.decode, stops)
        sampling = Sampling(greedy=request.temperature == 0, temperature=request.temperature,
                            top_p=request.top_p, seed=request.seed if request.seed is not None
                            else secrets.randbits(32))
        last = None
        generated = self.generations.tokens(tally.id, ids, max_new_tokens=wanted, sampling=sampling,
                                            ignore_eos=request.ignore_eos)
        async with aclosing(generated) as tokens:
            async for last in tokens:
                tally.completion_tokens += 1
                piece = text.add(last)
                if piece.text:
                    yield piece.text
                if piece.stopped:
                    tally.finish = "stop"
                    return
        if rest := text.flush().text:
            yield rest
        ended = last is not None and last == self.model.eos and not request.ignore_eos
        tally.finish = "stop" if ended else "length"

    async def whole(self, shape: Shape, request: Sampled, ids: list[int], wanted: int) -> dict[str, Any]:
        tally = self.tally(shape, ids)
        try:
            async for piece in self.pieces(request, ids, wanted, tally):
                tally.text.append(piece)
        except asyncio.CancelledError:
            self.aborted(tally)
            raise
        self.finished(tally)
        return {**self.head(shape, tally, chunk=False),
                "choices": [shape.choice("".join(tally.text), tally.finish, chunk=False)],
                "usage": tally.usage()}

    async def events(self, shape: Shape, request: Sampled, ids: list[int], wanted: int) -> AsyncIterator[str]:
        """Server-sent events: a chunk per piece of text, the finish, usage if asked, `[DONE]`."""
        tally = self.tally(shape, ids)
        head = self.head(shape, tally, chunk=True)
        try:
            if shape.chat:
                yield sse({**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                "finish_reason": None}]})
            async for piece in self.pieces(request, ids, wanted, tally):
                yield sse({**head, "choices": [shape.choice(piece, None, chunk=True)]})
            yield sse({**head, "choices": [shape.choice(None, tally.finish, chunk=True)]})
            if request.stream_options is not None and request.stream_options.include_usage:
                yield sse({**head, "choices": [], "usage": tally.usage()})
            yield DONE
            self.finished(tally)
        except asyncio.CancelledError:
            self.aborted(tally)
            raise
        except Exception as exc:  # noqa: BLE001 - the status is sent: the stream says why it ends (as vLLM)
            log.exception(f"Failed request {tally.id} after {tally.completion_tokens} generated tokens")
            yield sse(error_body(failure_message(exc), kind="server_error"))
            yield DONE

    def tally(self, shape: Shape, ids: list[int]) -> Tally:
        return Tally(f"{shape.id_prefix}-{secrets.token_hex(12)}", len(ids))

    def head(self, shape: Shape, tally: Tally, *, chunk: bool) -> dict[str, Any]:
        kind = f"{shape.object}.chunk" if chunk and shape.chat else shape.object
        return {"id": tally.id, "object": kind, "created": int(time.time()), "model": self.model.name}

    def aborted(self, tally: Tally) -> None:
        log.info(f"Aborted request {tally.id} after {tally.completion_tokens} generated tokens: it was "
                 f"cancelled (the client went away, or the server is shutting down)")

    def finished(self, tally: Tally) -> None:
        log.info(f"Finished request {tally.id}: {tally.prompt_tokens} prompt tokens, "
                 f"{tally.completion_tokens} generated tokens, finish_reason={tally.finish}")


# --- the application ------------------------------------------------------------------------------------


def make_app(server: Server) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("Available routes are:")
        for route in app.routes:
            if isinstance(route, APIRoute):
                log.info(f"Route: {route.path}, Methods: {', '.join(sorted(route.methods or ()))}")
        yield
        server.generations.close()

    app = FastAPI(title="ascend-console model server", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = validation_message(exc.errors())
        return error_response(400, message, param=param)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(RefusedError)
    async def refused(_request: Request, exc: RefusedError) -> JSONResponse:
        return error_response(exc.status, str(exc), param=exc.param, code=exc.code)

    @app.exception_handler(Exception)
    async def failed(_request: Request, exc: Exception) -> JSONResponse:
        """A generation that raised: OpenAI's body, not Starlette's plain text (which logs the traceback)."""
        return JSONResponse(error_body(failure_message(exc), kind="server_error"), status_code=500)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return server.models()

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: ChatRequest, raw: Request) -> dict[str, Any] | Response:
        return await answer(server, CHAT, request, raw)

    @app.post("/v1/completions", response_model=None)
    async def completions(request: CompletionRequest, raw: Request) -> dict[str, Any] | Response:
        return await answer(server, COMPLETION, request, raw)

    return app


async def answer(server: Server, shape: Shape, request: ChatRequest | CompletionRequest, raw: Request,
                 ) -> dict[str, Any] | Response:
    ids, wanted = server.prompt_ids(request)
    if request.stream:  # Starlette cancels a stream whose client leaves
        return StreamingResponse(server.events(shape, request, ids, wanted), media_type="text/event-stream")
    return await unless_gone(raw, server.whole(shape, request, ids, wanted))


async def unless_gone(raw: Request, work: Awaitable[dict[str, Any]]) -> dict[str, Any] | Response:
    """`work`'s answer; cancelled, and so its generation stopped, if the client leaves first (as vLLM's
    `with_cancellation`): nothing else would notice before the whole answer was made."""
    answering, leaving = asyncio.ensure_future(work), asyncio.ensure_future(disconnected(raw))
    try:
        await asyncio.wait((answering, leaving), return_when=asyncio.FIRST_COMPLETED)
    finally:  # the answer is not left running when this request is cancelled (the server stopping)
        leaving.cancel()
        answering.cancel()  # nothing once it is done
    if not answering.done():  # its client left
        with suppress(asyncio.CancelledError):
            await answering  # its generation is told to stop before the request ends
        return Response(status_code=CLIENT_GONE)  # read by nobody: nginx's code for it, in the log
    return answering.result()


async def disconnected(raw: Request) -> None:
    """Returns when the client disconnects: the body is read, so the next message can be nothing else."""
    while (await raw.receive())["type"] != "http.disconnect":
        pass


def load_model(args: argparse.Namespace) -> Model | None:
    """The model the arguments name, or None once the problem is on stderr."""
    loaded = load_or_report(args.config, None)
    if loaded is None:
        return None
    job, run = loaded
    job_dir = args.job_dir if args.job_dir is not None else args.config.resolve().parent
    given = args.checkpoint or (Path(job.training.load_checkpoint) if job.training.load_checkpoint else None)
    try:
        tokenizer = model_tokenizer(job, run, args.tokenizer, job_dir)
        from model.deepseek.predictor import Predictor  # MindSpore loads here, after the cheap checks

        checkpoint = None if given is None else in_job_dir(given, job_dir)
        predictor = Predictor(job, checkpoint, prefix=run.checkpoint.prefix, seed=args.seed)
    except (FileNotFoundError, ValueError, ConvertError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    name = args.served_model_name or args.config.stem
    if checkpoint is None:
        log.warning(f"serving {name} with {FRESH_WARNING}")
    else:
        log.info(f"serving {name} from {checkpoint}")
    return Model(predictor, tokenizer, name=name, fresh=checkpoint is None)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8", errors="replace", line_buffering=True)
    setup_logging()
    model = load_model(args)
    if model is None:
        return CONFIG_ERROR
    # a stream the client left is cancelled at once, not after the graceful-shutdown wait for it to end
    uvicorn.run(make_app(Server(model)), host=args.host, port=args.port, timeout_graceful_shutdown=2,
                log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
