"""``sitrep migrate --to postgresql://…``: copy the SQLite state into PostgreSQL (wired into :mod:`bot.cli.main`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bot.settings import Settings
from retrieval.errors import QueryError
from retrieval.statedb import Component, is_postgres, state_path


def add_commands(subparsers: Any) -> None:
    """Register the subcommand (``subparsers`` from ``add_subparsers``)."""
    p = subparsers.add_parser(
        "migrate", help="copy the SQLite state (articles, Slack, digests, feeds) into PostgreSQL",
        description="Copy every table of the state database in SITREP_DATA_DIR (state.db) into an empty "
                    "PostgreSQL database in one transaction, then check every table's row count. The vectors "
                    "(Chroma) stay where they are. Afterwards set SITREP_DATABASE_URL to the same URL.")
    p.add_argument("--to", required=True, metavar="URL",
                   help="the PostgreSQL database: postgresql://user:password@host:5432/dbname (it must hold no "
                        "sitrep tables yet, or exactly this state from an earlier migrate)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_migrate)


def state_components() -> list[Component]:
    """The components of sitrep's state, the corpus first (importing their modules would register them)."""
    from bot.digest.delivery import DELIVERIES
    from bot.feeds.registry import FEEDS
    from bot.slack.state import SLACK
    from retrieval.state import CORPUS

    return [CORPUS, SLACK, DELIVERIES, FEEDS]


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from retrieval.state_copy import copy_state

    if not is_postgres(args.to):
        raise QueryError(f"--to needs a PostgreSQL URL (postgresql://user@host:5432/dbname), not {args.to!r}.")
    report = copy_state(state_path(settings.data_dir), args.to, state_components())
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
        return 0
    if report.already:
        print(f"{report.target} already holds this state (every table has the same rows as {report.source}); "
              "nothing was copied.")
    else:
        print(f"Copied {report.source} into {report.target} in one transaction; every table's row count matches:")
    width = max(len(name) for name, _ in report.tables)
    print(f"  {'table':<{width}}  {'rows':>9}")
    for name, rows in sorted(report.tables):
        print(f"  {name:<{width}}  {rows:>9,}")
    schema = ", ".join(f"{name} v{version}" for name, version in report.components.items())
    print(f"Schema: {schema}.")
    if report.skipped:
        print(f"Not copied (no sitrep component owns them): {', '.join(report.skipped)}.")
    print("The vectors stay in the Chroma store. To use the copy, set SITREP_DATABASE_URL to the same URL "
          f"(state.db in {settings.data_dir} is left as it was).")
    return 0
