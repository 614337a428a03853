"""The ``sitrep`` command line.

Each subcommand is a handler ``(args, settings) -> exit status``. Expected failures
(:class:`~retrieval.errors.SitrepError`) print one line and exit 2; the log keeps the details.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bot import cli_answer, cli_digest, cli_slack
from bot.logs import setup_logging
from bot.runtime import ensure_sample, open_corpus
from bot.settings import Settings, load_settings
from retrieval.errors import SitrepError
from retrieval.timeparse import parse_when

Handler = Callable[[argparse.Namespace, Settings], int]


def _print_json(obj: object) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    corpus = open_corpus(settings)
    try:
        report = corpus.ingest(args.sources, feed=True if args.feed else None, source_name=args.source_name,
                               progress=not args.json and sys.stderr.isatty())
    finally:
        corpus.close()
    if args.json:
        _print_json(report.to_json())
    else:
        print(f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
              f"duplicates {report.duplicates}, failed {len(report.failed)}")
        for failure in report.failed:
            print(f"  failed: {failure.error}", file=sys.stderr)
    return 1 if report.failed else 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    since = parse_when(args.since, name="--since") if args.since else None
    until = parse_when(args.until, name="--until") if args.until else None
    corpus = open_corpus(settings)
    try:
        hits = corpus.search(args.query, k=args.k, since=since, until=until)
    finally:
        corpus.close()
    if args.json:
        _print_json({"query": args.query, "results": [h.to_json() for h in hits]})
        return 0
    if not hits:
        print("No matching passages.")
    for hit in hits:
        date = (hit.published or "date unknown")[:10]
        print(f"{hit.rank}. {hit.title or '(untitled)'} — {hit.source or 'unknown outlet'}, {date}  {hit.url}")
        print(f"   {hit.text[:300]}{'…' if len(hit.text) > 300 else ''}")
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    corpus = open_corpus(settings)
    try:
        stats = corpus.stats()
    finally:
        corpus.close()
    if args.json:
        _print_json(stats.to_json())
    else:
        for key, value in stats.to_json().items():
            print(f"{key:>17}: {value}")
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from retrieval.evaluate import evaluate, load_cases

    cases = load_cases(Path(args.file))
    corpus = open_corpus(settings)
    try:
        result = evaluate(cases, lambda q: corpus.ranked_documents(q, k=args.k, mode=args.mode))
    finally:
        corpus.close()
    if args.json:
        _print_json(result)
    else:
        print("  ".join(f"{k}={v}" for k, v in result.items()))
    return 0


def cmd_reindex(args: argparse.Namespace, settings: Settings) -> int:
    corpus = open_corpus(settings, reindexing=True)
    try:
        total = corpus.reindex(progress=not args.json)
    finally:
        corpus.close()
    if args.json:
        _print_json({"reindexed_chunks": total, "embedding_model": corpus.model})
    else:
        print(f"re-embedded {total} chunks with {corpus.model}")
    return 0


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from bot.doctor import run_checks

    ok = True
    for check in run_checks(settings):
        ok &= check.ok
        mark = "ok  " if check.ok else "FAIL"
        print(f"[{mark}] {check.name}: {check.detail}")
    return 0 if ok else 1


def cmd_start(args: argparse.Namespace, settings: Settings) -> int:
    """The README's main job: the Slack bot when Slack is configured, else a local chat over the corpus."""
    if settings.slack_bot_token:
        return cli_slack.cmd_serve(args, settings)
    corpus = open_corpus(settings)
    try:
        added = ensure_sample(corpus)
        stats = corpus.stats()
    finally:
        corpus.close()
    if added is not None:
        print(f"Ingested the sample corpus ({added.added} article) into {settings.data_dir}.")
    print(f"No Slack tokens configured (SLACK_BOT_TOKEN), so this is a local chat over {stats.documents} "
          f"article(s), newest {(stats.newest_published or 'unknown')[:10]}. Ingest more with `sitrep ingest`.")
    return cli_answer.cmd_chat(args, settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sitrep", description="Answers from the articles your team ingested.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="ingest files, folders, article URLs or feeds")
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--feed", action="store_true", help="treat URLs as RSS/Atom feeds")
    p.add_argument("--source-name", help="the outlet name to record for these sources")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_ingest)

    p = sub.add_parser("search", help="hybrid search over the corpus")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=8)
    p.add_argument("--since", metavar="WHEN")
    p.add_argument("--until", metavar="WHEN")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_search)

    p = sub.add_parser("stats", help="what the corpus holds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_stats)

    p = sub.add_parser("eval", help="retrieval quality on a JSONL question file")
    p.add_argument("file", metavar="FILE.jsonl")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--mode", choices=("hybrid", "rrf", "dense", "lexical"), default="hybrid",
                   help="rank with sitrep's hybrid search (default) or a baseline: plain RRF, dense or BM25 only")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_eval)

    p = sub.add_parser("reindex", help="re-embed every chunk with the configured embedding model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_reindex)

    p = sub.add_parser("doctor", help="check settings, model files, the store, Slack and the LLM")
    p.set_defaults(handler=cmd_doctor)

    cli_answer.add_commands(sub)
    cli_digest.add_commands(sub)
    cli_slack.add_commands(sub)

    p = sub.add_parser("start", help="the Slack bot if Slack tokens are set, else a local chat over the sample corpus")
    p.set_defaults(handler=cmd_start)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sitrep`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        setup_logging(settings.data_dir, settings.log_level, settings.secrets())
        handler: Handler = args.handler
        return handler(args, settings)
    except SitrepError as exc:
        print(f"sitrep: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
