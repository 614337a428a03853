"""Publication dates from whatever a source offers, as timezone-aware UTC datetimes."""

from __future__ import annotations

import calendar
import time
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime

from feedparser.datetimes import _parse_date as _feedparser_parse_date

# Outside this range a "date" is a parsing accident (an id, a price), not a publication date.
_EARLIEST_YEAR, _LATEST_YEAR = 1900, 2200


def parse_published(value: object) -> datetime | None:
    """Parse a publication date robustly; ``None`` when absent or unparsable (never an error).

    Accepts datetimes (naive means UTC), dates (midnight UTC), ``time.struct_time`` in UTC (feedparser's
    ``*_parsed`` fields), Unix timestamps in seconds, and strings in ISO 8601, RFC 2822 or any of the
    many formats feedparser recognises.
    """
    parsed = _to_datetime(value)
    if parsed is None or not _EARLIEST_YEAR <= parsed.year <= _LATEST_YEAR:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _to_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, time.struct_time):
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        return _parse_text(value.strip())
    return None


def _parse_text(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        pass
    # feedparser knows W3C-DTF, RFC 822 variants, asctime, Greek/Hungarian/Korean feed dates, ...
    parsed = _feedparser_parse_date(text)
    return _to_datetime(parsed) if parsed else None
