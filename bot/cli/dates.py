"""Publication dates on the command line: ``--date-order``, date warnings and re-dated documents after an
ingest, ``sitrep reindex --dates``, and the date lines of ``sitrep stats``."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from bot.settings import Settings
from retrieval.corpus import CorpusStats
from retrieval.date_repair import Redated
from retrieval.documents import LoadWarning

SHOWN = 10  # re-dated documents listed by name; the rest are counted
STAT_KEYS = ("dated_by_publication", "dated_by_ingestion", "outlets_lacking_dates")  # printed by print_date_stats

DATE_ORDER_HELP = ("how these sources write numeric dates such as 04/10/2022: dmy (day first) or mdy (month "
                   "first); without it such dates are reported as unknown, never guessed")


def add_date_order(parser: argparse.ArgumentParser) -> None:
    """The ``--date-order dmy|mdy`` option."""
    parser.add_argument("--date-order", choices=("dmy", "mdy"), help=DATE_ORDER_HELP)


def print_date_notes(warnings: list[LoadWarning], redated: list[Redated]) -> None:
    """Human output after an ingest: date warnings (stderr, like failures) and the stored dates that moved."""
    for warning in warnings:
        print(f"  warning: {warning.source}: {warning.warning}", file=sys.stderr)
    if redated:
        print(f"re-read {len(redated)} stored date(s):")
        for item in redated[:SHOWN]:
            print(f"  {item.source}: {_day(item.before)} -> {_day(item.after)}")
        if len(redated) > SHOWN:
            print(f"  … and {len(redated) - SHOWN} more (--json lists them all)")


def _day(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else "unknown (ingestion time stands in)"


def cmd_reindex_dates(args: argparse.Namespace, settings: Settings) -> int:
    """``sitrep reindex --dates``: read every stored date again from its raw value; nothing is re-embedded."""
    from bot.runtime import open_corpus

    with contextlib.closing(open_corpus(settings)) as corpus:
        repair = corpus.repair_dates()
    if args.json:
        print(json.dumps({"checked": repair.checked, "redated": len(repair.redated),
                          "redated_documents": [r.to_json() for r in repair.redated],
                          "unverified": repair.unverified,
                          "warnings": [{"source": w.source, "warning": w.warning} for w in repair.warnings]},
                         ensure_ascii=False, indent=2))
        return 0
    print(f"checked {repair.checked} document date(s), changed {len(repair.redated)}")
    print_date_notes(repair.warnings, repair.redated)
    if repair.unverified:
        print(f"{repair.unverified} date(s) stored by an older sitrep have no raw value to check: ingest their "
              "sources again to verify them")
    return 0


def print_date_stats(stats: CorpusStats) -> None:
    """The date lines of ``sitrep stats``."""
    print(f"{'dated':>17}: {stats.published_dates} by publication date, {stats.ingested_dates} by ingestion time")
    for outlet in stats.lacking_dates:
        print(f"{'':>17}  {outlet.source}: {outlet.ingested} of {outlet.documents} without a publication date")
