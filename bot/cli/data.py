"""The data-care subcommands: ``remove``, ``forget``, ``backup`` and ``restore`` (wired into :mod:`bot.cli.main`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bot.runtime import corpus_config, open_corpus
from bot.settings import Settings
from bot.slack.state import SlackState
from retrieval.errors import QueryError
from retrieval.removal import RemovalReport, RemovalRequest
from retrieval.timeparse import parse_when


def add_commands(subparsers: Any) -> None:
    """Register the subcommands (``subparsers`` from ``add_subparsers``)."""
    p = subparsers.add_parser("remove", help="take articles out for good (by URL, document id, outlet or date)")
    p.add_argument("targets", nargs="*", metavar="URL|DOC_ID", help="article URLs, document ids or ingested files")
    p.add_argument("--outlet", metavar="NAME", help="only articles of this outlet (case-insensitive)")
    p.add_argument("--before", metavar="WHEN", help="only articles published before WHEN (ISO date, or 30d)")
    p.add_argument("--dry-run", action="store_true", help="show what would be removed, change nothing")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_remove)

    p = subparsers.add_parser("forget", help="delete one person's stored questions, answers and feedback")
    p.add_argument("--user", required=True, metavar="SLACK_USER_ID",
                   help="the Slack user id (U…) whose questions, answers and feedback to delete")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_forget)

    p = subparsers.add_parser("backup", help="a consistent copy of the corpus and the bot's state in a new folder")
    p.add_argument("dest", metavar="DEST", help="a new folder to write the backup into (must not exist yet)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_backup)

    p = subparsers.add_parser("restore", help="restore a backup into SITREP_DATA_DIR (empty, unless --force)")
    p.add_argument("src", metavar="SRC", help="a folder written by `sitrep backup`")
    p.add_argument("--force", action="store_true", help="replace what the data directory holds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_restore)


def _print_json(obj: object) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    before = parse_when(args.before, name="--before") if args.before else None
    request = RemovalRequest(targets=args.targets, outlet=args.outlet, before=before)
    corpus = open_corpus(settings)
    try:
        report = corpus.remove(request, dry_run=args.dry_run)
    finally:
        corpus.close()
    if args.json:
        _print_json(report.to_json())
    else:
        print(describe_removal(report))
    return 0


def describe_removal(report: RemovalReport) -> str:
    """What ``sitrep remove`` did (or would do), for people."""
    n = len(report.documents)
    lines = []
    if n:
        what = f"{n} article{'s' if n != 1 else ''} ({report.chunks} passage{'s' if report.chunks != 1 else ''})"
        lines.append(f"Would remove {what}; nothing was changed (--dry-run):" if report.dry_run
                     else f"Removed {what}; ingesting them again is refused unless --force:")
        for doc in report.documents:
            lines.append(f"  {doc.doc_id}  {doc.title or '(untitled)'} — {doc.source or 'unknown outlet'}, "
                         f"{doc.published[:10] if doc.published else 'date unknown'}")
            lines.extend(f"      {url or key}" for key, url in doc.sources)
    else:
        lines.append("Nothing to remove: no article in the corpus matches.")
    lines.extend(f"Not found (nothing removed for it): {target}" for target in report.not_found)
    return "\n".join(lines)


def cmd_forget(args: argparse.Namespace, settings: Settings) -> int:
    user = args.user.strip()
    if not user:
        raise QueryError("--user needs a Slack user id, such as U0123ABCD.")
    state = SlackState.open(settings.state_location, settings.retention_days)
    try:
        counts = state.forget_user(user)
    finally:
        state.close()
    if args.json:
        _print_json({"user": user, "deleted": counts})
    elif not any(counts.values()):
        print(f"Nothing stored for {user}; nothing deleted.")
    else:
        print(f"Deleted {user}'s records: {counts['answers']} question(s) with their answers, "
              f"{counts['feedback']} feedback entr{'y' if counts['feedback'] == 1 else 'ies'} they gave, "
              f"{counts['feedback_on_their_answers']} feedback entr"
              f"{'y' if counts['feedback_on_their_answers'] == 1 else 'ies'} others gave on their answers, "
              f"{counts['threads']} thread mark(s), {counts['removals']} pending removal request(s).")
    return 0


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from retrieval.backup import backup

    dest = Path(args.dest).expanduser().absolute()
    manifest = backup(corpus_config(settings), dest)
    if args.json:
        _print_json({"path": str(dest), **manifest})
        return 0
    counts = manifest["counts"]
    print(f"Backed up {counts['documents']} articles ({counts['chunks']} passages, {counts['vectors']} vectors, "
          f"{counts['tombstones']} tombstones) and the bot's state to {dest}.")
    if manifest["re_embedded"]:
        print(f"  {manifest['re_embedded']} passage(s) replaced by an ingest during the backup were embedded "
              "again from the snapshot's text.")
    print(f"  Not included: {'; '.join(manifest['not_included'])}.")
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from retrieval.backup import restore

    manifest = restore(corpus_config(settings), Path(args.src), force=args.force)
    corpus = open_corpus(settings)
    try:
        stats = corpus.stats().to_json()
    finally:
        corpus.close()
    if args.json:
        _print_json({"restored": manifest["counts"], "stats": stats})
        return 0
    counts = manifest["counts"]
    print(f"Restored {counts['documents']} articles ({counts['chunks']} passages, {counts['vectors']} vectors) "
          f"from the backup of {manifest['created']} into {settings.data_dir}; the counts match the backup.")
    for key, value in stats.items():
        print(f"{key:>17}: {value}")
    return 0
