"""The ``ask``, ``summarize`` and ``chat`` subcommands (wired into :mod:`bot.cli` by ``add_commands``).

Handlers take ``(args, settings)`` and return the exit status; expected failures raise
:class:`~retrieval.errors.SitrepError`, which the CLI prints as one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from typing import Any

from bot.chat import run_chat
from bot.engine import Engine
from bot.render_text import render_sources
from bot.results import Answer
from bot.runtime import open_corpus
from bot.settings import Settings
from retrieval.progress import Progress
from retrieval.timeparse import parse_when


def add_commands(sub: Any) -> None:
    """Add ``ask``, ``summarize`` and ``chat`` to the CLI's subparsers (``parser.add_subparsers()``)."""
    p = sub.add_parser("ask", help="answer a question from the ingested articles, with citations")
    p.add_argument("question", nargs="+", metavar="QUESTION", help="the question, in plain words (quotes optional)")
    p.add_argument("--since", metavar="WHEN", help="only articles published since WHEN (ISO date or 24h, 7d)")
    p.add_argument("--until", metavar="WHEN", help="only articles published until WHEN")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_ask)

    p = sub.add_parser("summarize", help="a cited summary, grouped by event, of a topic or of the latest articles")
    p.add_argument("topic", nargs="*", metavar="TOPIC", help="what to summarize (default: the biggest stories)")
    p.add_argument("--since", metavar="WHEN", help="only articles published since WHEN (ISO date or 24h, 7d)")
    p.add_argument("--until", metavar="WHEN", help="only articles published until WHEN")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_summarize)

    p = sub.add_parser("chat", help="an interactive session with follow-up questions")
    p.set_defaults(handler=cmd_chat)


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    since = parse_when(args.since, name="--since") if args.since else None
    until = parse_when(args.until, name="--until") if args.until else None
    question = " ".join(args.question)
    corpus = open_corpus(settings)
    try:
        engine = Engine(settings, corpus)
        if args.json:
            _print_json(engine.ask(question, since=since, until=until))
        else:
            stream = engine.ask_stream(question, since=since, until=until)
            _print_streamed(stream, stream.result)
    finally:
        corpus.close()
    return 0


def cmd_summarize(args: argparse.Namespace, settings: Settings) -> int:
    since = parse_when(args.since, name="--since") if args.since else None
    until = parse_when(args.until, name="--until") if args.until else None
    corpus = open_corpus(settings)
    try:
        with Progress.for_terminal(quiet=args.json).working("summarizing"):
            answer = Engine(settings, corpus).summarize(" ".join(args.topic) or None, since=since, until=until)
    finally:
        corpus.close()
    if args.json:
        _print_json(answer)
    else:
        _print_streamed([answer.answer], lambda: answer)
    return 0


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    corpus = open_corpus(settings)
    try:
        return run_chat(Engine(settings, corpus), sys.stdin, sys.stdout,
                        history_file=settings.data_dir / "chat_history")
    finally:
        corpus.close()


def _print_json(answer: Answer) -> None:
    print(json.dumps(answer.to_json(), ensure_ascii=False, indent=2))


def _print_streamed(deltas: Iterable[str], result: Callable[[], Answer]) -> None:
    """Print the text as it comes, then the sources and notes of the finished answer."""
    for delta in deltas:
        sys.stdout.write(delta)
        sys.stdout.flush()
    sources = render_sources(result())
    sys.stdout.write(f"\n\n{sources}\n" if sources else "\n")
