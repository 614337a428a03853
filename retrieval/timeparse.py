"""Parsing ``WHEN`` values: ISO dates or datetimes, or relative spans such as ``24h``, ``7d``, ``30m``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from retrieval.errors import QueryError

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|mins|minutes?|h|hrs?|hours?|d|days?|w|weeks?)\s*$", re.I)
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(text: str, now: datetime | None = None, name: str = "--since") -> datetime:
    """A timezone-aware UTC datetime for ``text``; naive ISO values are taken as UTC."""
    now = now or datetime.now(UTC)
    raw = (text or "").strip()
    match = _SPAN.match(raw)
    if match:
        amount = float(match.group(1))
        unit = match.group(2)[0].lower()
        try:
            return now - timedelta(seconds=amount * _UNIT_SECONDS[unit])
        except (OverflowError, ValueError):  # "999999999d" reaches before year 1
            raise QueryError(f"{name} {raw} reaches back before any date; use a shorter span or a date.") from None
    lowered = raw.lower()
    if lowered in ("today", "yesterday"):
        midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight if lowered == "today" else midnight - timedelta(days=1)
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(
            f"{name} {raw!r} is not a date: use an ISO date (2020-10-14), a datetime "
            "(2020-10-14T08:00), or a span such as 24h or 7d."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # "0001-01-01T00:00+05:00" lies before year 1 in UTC
        raise QueryError(f"{name} {raw} lies outside the calendar; use a date from year 1 to 9999.") from None


def check_not_future(when: datetime, now: datetime | None = None, name: str = "--since") -> datetime:
    """Reject a ``since`` in the future: it can only ever match nothing."""
    now = now or datetime.now(UTC)
    if when > now + timedelta(minutes=5):
        raise QueryError(f"{name} {when.date().isoformat()} is in the future; nothing has been published since.")
    return when
