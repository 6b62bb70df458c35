"""`ascend-console chat JOB|--url URL [--prompt TEXT [--json]]`: talk to a serve job's model, or to any
OpenAI-compatible endpoint.

Without `--prompt` the console opens on the chat pane; with it, one answer is printed as it streams
(the figures on stderr, so stdout is the answer alone) or, with `--json`, as one document.
"""

from __future__ import annotations

import argparse
import sys

from console import exitcodes
from console.arguments import positive_int
from console.commands.endpoint import add_target_arguments, with_target
from console.render import print_error, print_json, print_warning
from console.serving.answer import AnswerClock, AnswerStats
from console.serving.client import EndpointError, ServedModel, ServingClient
from console.serving.conversation import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, ChatSettings, stream_answer
from remote.inventory import Cluster

HELP = "talk to a serve job's model or an OpenAI-compatible endpoint: the chat pane, or one answer (--prompt)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser, url_help="any OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000 "
                                          "(with or without /v1)")
    parser.add_argument("--prompt", metavar="TEXT", help="ask once and print the answer (no pane)")
    parser.add_argument("--json", action="store_true",
                        help="with --prompt: the answer and its figures as JSON")
    parser.add_argument("--model", metavar="ID", help="the model to ask (default: the endpoint's first)")
    parser.add_argument("--max-tokens", type=positive_int, default=DEFAULT_MAX_TOKENS, metavar="K",
                        help=f"at most K tokens an answer (default {DEFAULT_MAX_TOKENS})")
    parser.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE,
                        help=f"0: greedy (default {DEFAULT_TEMPERATURE})")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    if args.prompt is None and args.json:
        raise exitcodes.UsageError("--json needs --prompt: the pane is not a document")
    return with_target(args, cluster, "chat", lambda url: chat(args, cluster, url))


def chat(args: argparse.Namespace, cluster: Cluster, url: str) -> int:
    settings = ChatSettings(url, args.model, args.max_tokens, args.temperature)
    if args.prompt is None:
        from console.cli import run_dashboard

        return run_dashboard(args, cluster, chat=settings)
    try:
        served, stats = answer_once(settings, args.prompt, echo=not args.json)
    except EndpointError as exc:
        print_error(str(exc))
        return exitcodes.NODE_FAILED if exc.reachable else exitcodes.UNREACHABLE
    if args.json:
        print_json({"url": settings.url, "model": served.id, "warning": served.warning, "text": stats.text,
                    "finish_reason": stats.finish_reason, "tokens": stats.tokens, "seconds": stats.seconds,
                    "first_token_seconds": stats.first_token_seconds,
                    "tokens_per_second": stats.tokens_per_second})
    else:
        print(stats.summary(), file=sys.stderr)
    return exitcodes.OK


def answer_once(settings: ChatSettings, prompt: str, *, echo: bool) -> tuple[ServedModel, AnswerStats]:
    """The model asked and its answer; `echo` writes the text to stdout as it comes."""
    with ServingClient(settings.url) as client:
        served = client.model(settings.model)
        if served.warning and echo:
            print_warning(f"{served.id}: {served.warning}")
        answer = AnswerClock()
        for text in stream_answer(client, settings, served.id, [{"role": "user", "content": prompt}], answer):
            if echo:
                sys.stdout.write(text)
                sys.stdout.flush()
        if echo:
            sys.stdout.write("\n")
        return served, answer.stats()

