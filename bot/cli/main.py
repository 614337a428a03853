"""The ``sitrep`` command line.

Each subcommand is a handler ``(args, settings) -> exit status``. Expected failures
(:class:`~retrieval.errors.SitrepError`) print one line and exit 2; the log keeps the details.
A command checks only the settings sections it uses (:data:`COMMAND_SECTIONS`), so a bad digest setting
never blocks ``search`` or ``ask``; ``serve`` and unknown commands check them all.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bot.cli import answer as cli_answer
from bot.cli import data as cli_data
from bot.cli import dates as cli_dates
from bot.cli import digest as cli_digest
from bot.cli import evaluate as cli_eval
from bot.cli import migrate as cli_migrate
from bot.cli import serve as cli_slack
from bot.logs import setup_logging
from bot.runtime import ensure_sample, open_corpus
from bot.settings import ALL_SECTIONS, Settings, read_settings, require
from retrieval.errors import SitrepError
from retrieval.progress import Progress
from retrieval.timeparse import parse_when

if TYPE_CHECKING:
    from retrieval.corpus import Corpus

Handler = Callable[[argparse.Namespace, Settings], int]

_CORPUS = frozenset({"core", "store"})
_ANSWERS = _CORPUS | {"llm"}
# The settings sections each command reads; any other command (serve) needs them all.
COMMAND_SECTIONS: dict[str, frozenset[str]] = {
    "ingest": _CORPUS | {"fetch"},
    "search": _CORPUS,
    "stats": _CORPUS,
    "eval": _ANSWERS,
    "reindex": _CORPUS,
    "doctor": frozenset(),  # reports every problem itself
    "ask": _ANSWERS,
    "summarize": _ANSWERS,
    "chat": _ANSWERS,
    "digest": _ANSWERS | {"digest"},
    "feeds": frozenset({"core", "feeds"}),
    "migrate": frozenset({"core"}),
}
WHEN_HELP = "an ISO date or datetime (2022-10-31, 2022-10-31T08:00) or a span back from now (24h, 7d)"


def _print_json(obj: object) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


def _size_note(corpus: Corpus, settings: Settings) -> None:
    """Say on stderr when the embedded store has outgrown the memory an ingest should take."""
    from retrieval.store import embedded_size_advice

    if advice := embedded_size_advice(corpus.stats().chunks, settings.chroma_host, settings.data_dir):
        print(f"note: {advice}", file=sys.stderr)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    corpus = open_corpus(settings, writes_only=True)
    try:
        report = corpus.ingest(args.sources, feed=True if args.feed else None, source_name=args.source_name,
                               progress=Progress.for_terminal(quiet=args.json), date_order=args.date_order,
                               force=args.force)
        _size_note(corpus, settings)
    except KeyboardInterrupt:
        print("\nsitrep: ingest stopped. Everything committed so far stays searchable; run the same command again "
              "to finish (what is already in is not read again).", file=sys.stderr)
        return 130
    finally:
        corpus.close()
    if args.json:
        _print_json(report.to_json())
    else:
        print(f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
              f"duplicates {report.duplicates}, failed {len(report.failed)}")
        for failure in report.failed:
            print(f"  failed: {failure.error}", file=sys.stderr)
        cli_dates.print_date_notes(report.warnings, report.redated)
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
        date = f"date unknown, ingested {date}" if hit.date_source == "ingested" else date
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
            if key not in cli_dates.STAT_KEYS:
                print(f"{key:>17}: {value}")
        cli_dates.print_date_stats(stats)
    return 0


def cmd_reindex(args: argparse.Namespace, settings: Settings) -> int:
    if args.dates:
        return cli_dates.cmd_reindex_dates(args, settings)
    corpus = open_corpus(settings, reindexing=True, writes_only=True)
    try:
        total = corpus.reindex(progress=Progress.for_terminal(quiet=args.json))
        _size_note(corpus, settings)
    except KeyboardInterrupt:
        print("\nsitrep: reindex stopped. Searches still use the index from before; run `sitrep reindex` again to "
              "rebuild it.", file=sys.stderr)
        return 130
    finally:
        corpus.close()
    if args.json:
        _print_json({"reindexed_chunks": total, "embedding_model": corpus.model})
    else:
        print(f"re-embedded {total} chunks with {corpus.model}")
    return 0


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.doctor import run_checks
    from bot.settings import unknown_variables

    _, problems = read_settings()
    failed = 0
    for check in run_checks(settings, problems, unknown_variables()):
        failed += not check.ok
        print(f"[{check.status:<4}] {check.name}: {check.detail}", flush=True)
    print(f"{failed} problem(s) to fix." if failed else "Everything checked is fine.")
    return 1 if failed else 0


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
    parser = argparse.ArgumentParser(
        prog="sitrep", description="Answers from the articles your team ingested.",
        epilog="Settings come from the environment and ./.env; `sitrep doctor` checks them all.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="ingest files, folders, article URLs or feeds",
                       description="Ingest articles. Unchanged content is skipped; changed content replaces its "
                                   "old version. Page clutter (datelines, captions, ads) is removed and kept aside.")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="a file (.txt .md .html .pdf .json .jsonl), a folder (read recursively), an article URL "
                        "or a feed URL")
    p.add_argument("--feed", action="store_true", help="treat URLs as RSS/Atom feeds (default: detect)")
    p.add_argument("--source-name", metavar="NAME",
                   help="the outlet to record for these sources, instead of the one found in them or their URL")
    cli_dates.add_date_order(p)
    p.add_argument("--force", action="store_true", help="ingest again articles taken out with `sitrep remove`")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_ingest)

    p = sub.add_parser("search", help="hybrid search over the corpus")
    p.add_argument("query", metavar="QUERY", help="words to look for (meaning and exact words both count)")
    p.add_argument("-k", type=int, default=8, metavar="N", help="how many passages to show (default 8)")
    p.add_argument("--since", metavar="WHEN", help=f"only articles published since WHEN: {WHEN_HELP}")
    p.add_argument("--until", metavar="WHEN", help="only articles published until WHEN (same forms as --since)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_search)

    p = sub.add_parser("stats", help="what the corpus holds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_stats)

    p = sub.add_parser("eval", help="retrieval (and, with answers, answer) quality on a JSONL question file")
    p.add_argument("file", metavar="FILE.jsonl",
                   help='one {"question": ..., "gold_urls": [...]} (or "gold_doc_ids") object per line, optionally '
                        'with "answers" and "asked_at"')
    p.add_argument("-k", type=int, default=10, metavar="N",
                   help="how many documents to rank per question (default 10)")
    p.add_argument("--mode", choices=("hybrid", "rrf", "dense", "lexical"), default="hybrid",
                   help="rank with sitrep's hybrid search (default) or a baseline: plain RRF, dense or BM25 only "
                        "(retrieval scores only; answers always use hybrid search)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cli_eval.cmd_eval)

    p = sub.add_parser("reindex", help="re-embed every chunk with the configured embedding model")
    p.add_argument("--dates", action="store_true",
                   help="only read every stored publication date again from its raw value (no re-embedding)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_reindex)

    p = sub.add_parser("doctor", help="check every setting, the model files, the store, Slack and the LLM")
    p.set_defaults(handler=cmd_doctor)

    cli_answer.add_commands(sub)
    cli_digest.add_commands(sub)
    cli_slack.add_commands(sub)
    cli_data.add_commands(sub)
    cli_migrate.add_commands(sub)

    p = sub.add_parser("start", help="the Slack bot if Slack tokens are set, else a local chat over the sample corpus")
    p.set_defaults(handler=cmd_start)
    _explain_common_options(parser)
    return parser


def _explain_common_options(parser: argparse.ArgumentParser) -> None:
    """Give options that many commands share (``--json``) the same explanation wherever one lacks it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _explain_common_options(child)
        elif action.help is None and "--json" in action.option_strings:
            action.help = "print the result as JSON (the shape README documents) instead of text"


def command_sections(args: argparse.Namespace, settings: Settings) -> frozenset[str]:
    """The settings sections a parsed command uses."""
    if args.command == "start":
        return ALL_SECTIONS if settings.slack_bot_token else COMMAND_SECTIONS["chat"]
    if args.command == "digest" and getattr(args, "post", False):
        return COMMAND_SECTIONS["digest"] | {"slack"}
    return COMMAND_SECTIONS.get(args.command, ALL_SECTIONS)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sitrep`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings, problems = read_settings()
        setup_logging(settings.data_dir, settings.log_level, settings.secrets())
        require(problems, command_sections(args, settings))
        handler: Handler = args.handler
        return handler(args, settings)
    except SitrepError as exc:
        print(f"sitrep: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
