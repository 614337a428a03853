"""The ``ask``, ``summarize`` and ``chat`` subcommands (wired into :mod:`bot.cli.main` by ``add_commands``).

Handlers take ``(args, settings)`` and return the exit status; expected failures raise
:class:`~retrieval.errors.SitrepError`, which the CLI prints as one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.answer.results import Answer
from bot.answer.topic_span import parse_topic_span
from bot.render.text import render_sources
from bot.runtime import open_corpus
from bot.settings import Settings
from retrieval.errors import QueryError
from retrieval.progress import Progress
from retrieval.timeparse import parse_when

if TYPE_CHECKING:
    from bot.answer.engine import Engine
    from retrieval.corpus import Corpus


def add_commands(sub: Any) -> None:
    """Add ``ask``, ``summarize`` and ``chat`` to the CLI's subparsers (``parser.add_subparsers()``)."""
    p = sub.add_parser("ask", help="answer a question from the ingested articles, with citations")
    p.add_argument("question", nargs="+", metavar="QUESTION", help="the question, in plain words (quotes optional)")
    p.add_argument("--since", metavar="WHEN", help="only articles published since WHEN (ISO date or 24h, 7d)")
    p.add_argument("--until", metavar="WHEN", help="only articles published until WHEN")
    add_as_of(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_ask)

    p = sub.add_parser("summarize", help="a cited summary, grouped by event, of a topic or of the latest articles")
    p.add_argument("topic", nargs="*", metavar="TOPIC",
                   help="what to summarize (default: the biggest stories); may name the span too: "
                        "Helmand this week, last 3 days Kandahar")
    p.add_argument("--since", metavar="WHEN", help="only articles published since WHEN (ISO date or 24h, 7d)")
    p.add_argument("--until", metavar="WHEN", help="only articles published until WHEN")
    add_as_of(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_summarize)

    p = sub.add_parser("chat", help="an interactive session with follow-up questions")
    add_as_of(p)
    p.set_defaults(handler=cmd_chat)


def add_as_of(parser: argparse.ArgumentParser) -> None:
    """The ``--as-of WHEN`` option: replay a past moment."""
    parser.add_argument(
        "--as-of", metavar="WHEN", dest="as_of",
        help="answer as at WHEN (ISO date or datetime, or 24h, 7d ago): only articles published by then are "
             "visible, and 'today' or 'this week' mean WHEN's",
    )


def as_of(args: argparse.Namespace) -> datetime | None:
    """The moment ``--as-of`` names, or None; QueryError when it is not a date or lies in the future."""
    raw = getattr(args, "as_of", None)
    if raw is None:
        return None
    now = datetime.now(UTC)
    when = parse_when(raw, now, name="--as-of")
    if when > now + timedelta(minutes=5):
        raise QueryError(f"--as-of {raw.strip()} is in the future; it replays a moment that has passed.")
    return when


def engine_for(settings: Settings, corpus: Corpus, when: datetime | None) -> Engine:
    """The answer engine, replaying ``when`` when given."""
    # Imported here: the engine loads the LLM client (openai) and its tokenizer, which `sitrep ingest`
    # and `reindex` (this module defines part of their parser) never need.
    from bot.answer.engine import Engine

    engine = Engine(settings.llm, corpus)
    return engine.at(when) if when is not None else engine


def _window(args: argparse.Namespace, when: datetime | None) -> tuple[datetime | None, datetime | None]:
    """``--since`` and ``--until``; relative spans count back from ``--as-of`` when given."""
    since = parse_when(args.since, when, name="--since") if args.since else None
    until = parse_when(args.until, when, name="--until") if args.until else None
    return since, until


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    when = as_of(args)
    since, until = _window(args, when)
    question = " ".join(args.question)
    corpus = open_corpus(settings)
    try:
        engine = engine_for(settings, corpus, when)
        if args.json:
            _print_json(engine.ask(question, since=since, until=until))
        else:
            stream = engine.ask_stream(question, since=since, until=until)
            _print_streamed(stream, stream.result)
    finally:
        corpus.close()
    return 0


def cmd_summarize(args: argparse.Namespace, settings: Settings) -> int:
    when = as_of(args)
    # The topic is free text and may carry its span: `sitrep summarize Helmand this week`.
    parsed = parse_topic_span(" ".join(args.topic), tz=settings.tz, now=when)
    if args.since and parsed.since:
        raise QueryError(f"Give the time span once: --since {args.since} and '{parsed.span}' in the topic.")
    since, until = _window(args, when)
    since = since or parsed.since
    corpus = open_corpus(settings)
    try:
        with Progress.for_terminal(quiet=args.json).working("summarizing"):
            answer = engine_for(settings, corpus, when).summarize(parsed.topic or None, since=since, until=until)
    finally:
        corpus.close()
    if args.json:
        _print_json(answer)
    else:
        _print_streamed([answer.answer], lambda: answer)
    return 0


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.chat import run_chat

    when = as_of(args)
    corpus = open_corpus(settings)
    try:
        return run_chat(engine_for(settings, corpus, when), sys.stdin, sys.stdout,
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
