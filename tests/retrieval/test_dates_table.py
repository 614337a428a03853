"""The real-world date table: every string sitrep meets in news sites, feeds and JSON exports, each with the
UTC value it must give (to the second, as stored) or ``null`` for "unknown". Zero wrong dates is the target."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime

import pytest

from retrieval.dating import iso_utc
from retrieval.errors import ConfigError
from retrieval.loaders.dates import ParsedDate, parse_date, parse_published

from conftest import FIXTURES

TABLE = FIXTURES / "dates" / "real_world.jsonl"
# The table's ingestion moment: fixed, so "after the ingestion time" means the same thing on any day.
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def table() -> list[dict[str, object]]:
    return [json.loads(line) for line in TABLE.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_the_table_covers_every_form_with_at_least_60_strings() -> None:
    rows = table()
    assert len(rows) >= 60
    unknown = [r for r in rows if r["expected"] is None]
    assert len(unknown) >= 15 and len(rows) - len(unknown) >= 60
    assert any(isinstance(r["value"], int) for r in rows) and any(r.get("date_order") for r in rows)


@pytest.mark.parametrize("row", table(), ids=lambda r: f"{r['value']!r}:{r.get('date_order') or ''}")
def test_real_world_date(row: dict[str, object]) -> None:
    parsed = parse_date(row["value"], date_order=row.get("date_order"), now=NOW)  # type: ignore[arg-type]
    assert iso_utc(parsed.when) == row["expected"], row["from"]
    if parsed.when is None:
        # Unknown always comes with a reason naming the value (or saying there was none).
        assert parsed.explain().startswith("no publication date" if row["value"] == "" else "publication date")


def test_unknown_dates_say_why() -> None:
    assert parse_date("04/10/2022", now=NOW).problem == (
        "could be 4 October or 10 April (declare how the source writes dates with --date-order dmy or mdy)")
    assert "relative" in (parse_date("3 hours ago", now=NOW).problem or "")
    assert "after the time it was ingested" in (parse_date("2031-05-01", now=NOW).problem or "")
    assert "wrong weekday" in (parse_date("Wednesday, October 4, 2022", now=NOW).problem or "")
    assert "several zones" in (parse_date("Oct 4, 2022 10:30 IST", now=NOW).problem or "")
    assert parse_date("۳۰ حوت ۱۴۰۰", now=NOW).problem == (
        "names day 30 of Solar Hijri month 12 of 1400, which does not exist")
    assert parse_date(None, now=NOW) == ParsedDate(None, "", None)


def test_future_dates_allow_for_clock_skew_and_naive_local_times() -> None:
    # A zoned value may run a few minutes ahead of the ingesting machine's clock.
    assert parse_date("2026-11-29T12:05:00Z", now=NOW).when == datetime(2026, 11, 29, 12, 5, tzinfo=UTC)
    assert parse_date("2026-11-29T12:30:00Z", now=NOW).when is None
    # A value with no zone may be a local time east of UTC (Kabul is +04:30), read as UTC.
    assert parse_date("2026-11-29 16:20", now=NOW).when == datetime(2026, 11, 29, 16, 20, tzinfo=UTC)
    assert parse_date("2026-11-30 06:00", now=NOW).when is None


def test_parse_published_contract() -> None:
    """The original entry point keeps its signature and behaviour for every kind of value it accepted."""
    assert parse_published("2020-10-14T09:30:00+04:30") == datetime(2020, 10, 14, 5, 0, tzinfo=UTC)
    assert parse_published("Wed, 14 Oct 2020 09:30:00 -0400") == datetime(2020, 10, 14, 13, 30, tzinfo=UTC)
    assert parse_published(time.struct_time((2020, 10, 14, 9, 30, 0, 2, 288, 0))) == datetime(
        2020, 10, 14, 9, 30, tzinfo=UTC)
    assert parse_published(datetime(2020, 10, 14, 9, 30)) == datetime(2020, 10, 14, 9, 30, tzinfo=UTC)
    assert parse_published(date(2020, 10, 14)) == datetime(2020, 10, 14, tzinfo=UTC)
    assert parse_published(1602667800) == datetime(2020, 10, 14, 9, 30, tzinfo=UTC)
    assert parse_published(1602667800.5) == datetime(2020, 10, 14, 9, 30, 0, 500000, tzinfo=UTC)
    for nothing in ("", None, True, "last Tuesday-ish", "0001-01-01", float("nan"), ["2020-10-14"], "x" * 500):
        assert parse_published(nothing) is None


def test_date_order_is_validated() -> None:
    assert parse_date("04/10/2022", date_order=" DMY ", now=NOW).when == datetime(2022, 10, 4, tzinfo=UTC)
    with pytest.raises(ConfigError, match="dmy"):
        parse_date("04/10/2022", date_order="ymd")
