"""Publication dates from whatever a source offers: a timezone-aware UTC datetime, or why there is none.

A date is right or unknown, never guessed: no part of it is taken from today, a numeric day/month order
is only assumed when the date allows one reading or the source declared its order, and a result after the
ingestion moment or before 1900 is a parsing accident, not a date. The forms read are listed in
:mod:`retrieval.loaders.datetext`.
"""

from __future__ import annotations

import calendar
import math
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from retrieval.errors import ConfigError
from retrieval.loaders.datetext import DATE_ORDERS, DateProblem, epoch_datetime, read_date_text

# Bumped whenever parsing changes what a stored raw value means: the next ingest re-parses stored dates.
PARSER_VERSION = "2"
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
# How far past the ingestion moment a date may lie: a little clock skew when the value names its zone; up
# to the largest UTC offset when it does not, since a local time east of UTC read as UTC runs ahead.
SKEW_ZONED = timedelta(minutes=10)
SKEW_NAIVE = timedelta(hours=14)
MAX_RAW_CHARS = 200
# The zero values of date types in databases and exports: a missing date, not 1 January.
_PLACEHOLDERS = frozenset({datetime(1900, 1, 1, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC)})


@dataclass(frozen=True)
class ParsedDate:
    """A parsed publication date: ``when`` (UTC) or ``problem`` (why not); ``raw`` is the value as text."""

    when: datetime | None
    raw: str
    problem: str | None = None

    @property
    def absent(self) -> bool:
        """True when the source gave no date at all."""
        return not self.raw.strip()

    def explain(self) -> str:
        """One sentence on why there is no date, naming the value."""
        if self.absent:
            return "no publication date given"
        return f"publication date {self.raw!r} {self.problem}"


def check_date_order(order: str | None) -> str | None:
    """``order`` lower-cased when it is ``dmy`` or ``mdy`` (None stays None); ConfigError otherwise."""
    if order is None:
        return None
    cleaned = order.strip().lower()
    if cleaned not in DATE_ORDERS:
        raise ConfigError(f"date order {order!r} is not dmy (day first, 04/10/2022 = 4 October) or mdy (month first)")
    return cleaned


def parse_date(value: object, *, date_order: str | None = None, now: datetime | None = None) -> ParsedDate:
    """Parse a publication date, saying why when it cannot (never an exception for a bad value).

    Accepts strings (see :mod:`~retrieval.loaders.datetext`), datetimes (naive means UTC), dates
    (midnight UTC), ``time.struct_time`` in UTC (feedparser's ``*_parsed`` fields) and Unix timestamps
    (seconds, or milliseconds when too large for seconds). ``date_order`` (``dmy``/``mdy``) settles numeric
    dates such as ``04/10/2022``; without it they are unknown unless only one reading is a real date.
    ``now`` is the ingestion moment (default: the current time): later dates are rejected.
    """
    order = check_date_order(date_order)
    raw = _raw(value)
    if not raw.strip():
        return ParsedDate(None, "")
    try:
        parsed = _to_datetime(value, raw, order)
    except DateProblem as exc:
        return ParsedDate(None, raw, str(exc))
    naive = parsed.tzinfo is None
    when = parsed.replace(tzinfo=UTC) if naive else parsed.astimezone(UTC)
    moment = now or datetime.now(UTC)
    if when > moment + (SKEW_NAIVE if naive else SKEW_ZONED):
        return ParsedDate(None, raw, f"is after the time it was ingested ({when.isoformat(timespec='minutes')})")
    if when in _PLACEHOLDERS:
        return ParsedDate(None, raw, "is the zero value of a date type (a missing date), not a publication date")
    if when < EARLIEST:
        return ParsedDate(None, raw, f"is before 1900 ({when.date().isoformat()})")
    return ParsedDate(when, raw)


def parse_published(value: object) -> datetime | None:
    """Parse a publication date robustly; ``None`` when absent or not known for sure (never an error)."""
    return parse_date(value).when


def _raw(value: object) -> str:
    """The value as text, as it is kept in the store so a later version can parse it again."""
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, time.struct_time):
        return datetime.fromtimestamp(calendar.timegm(value), UTC).isoformat()
    return str(value)[:MAX_RAW_CHARS] if not isinstance(value, str) else value.strip()[:MAX_RAW_CHARS + 1]


def _to_datetime(value: object, raw: str, order: str | None) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, time.struct_time):
        return datetime.fromisoformat(raw)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DateProblem("is not a date value")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise DateProblem("is not a number of seconds")
        return epoch_datetime(value)
    if len(raw) > MAX_RAW_CHARS:
        raise DateProblem("is too long to be a date")
    return read_date_text(raw, order)
