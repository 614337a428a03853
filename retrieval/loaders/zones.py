"""Time-zone names and offsets as news sites and feeds print them.

Only unambiguous abbreviations are known. ``IST`` (India, Ireland, Israel), ``AST`` (Atlantic, Arabia) and
``GST`` (Gulf, South Georgia) name several zones hours apart, so a date carrying one is reported rather than
guessed. ``CST`` and ``BST`` are read as US Central and British Summer Time, the meanings US and European
outlets print. ``ET``/``CT``/``MT``/``PT`` are the US zones whatever the season: their offset is the one in
force at that date and time.
"""

from __future__ import annotations

import re
from datetime import timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo


def _fixed(hours: float) -> timezone:
    return timezone(timedelta(hours=hours))


_FIXED_HOURS: dict[str, float] = {
    # UTC and Europe
    "z": 0, "ut": 0, "utc": 0, "gmt": 0, "wet": 0, "west": 1, "bst": 1, "cet": 1, "cest": 2, "met": 1,
    "mest": 2, "eet": 2, "eest": 3, "msk": 3,
    # North America
    "est": -5, "edt": -4, "cst": -6, "cdt": -5, "mst": -7, "mdt": -6, "pst": -8, "pdt": -7, "akst": -9,
    "akdt": -8, "hst": -10, "adt": -3, "nst": -3.5, "ndt": -2.5,
    # Afghanistan and the region
    "aft": 4.5, "irst": 3.5, "irdt": 4.5, "pkt": 5, "npt": 5.75, "tjt": 5, "uzt": 5,
    # Elsewhere, as wire services print them
    "eat": 3, "cat": 2, "wat": 1, "sast": 2, "ict": 7, "wib": 7, "sgt": 8, "hkt": 8, "jst": 9, "kst": 9,
    "awst": 8, "aest": 10, "aedt": 11, "nzst": 12, "nzdt": 13,
}
_GENERIC: dict[str, str] = {
    "et": "America/New_York", "ct": "America/Chicago", "mt": "America/Denver", "pt": "America/Los_Angeles",
}
AMBIGUOUS = frozenset({"ist", "ast", "gst"})

# "+04:30", "+0430", "-05", "−0500" (a Unicode minus is normalized before this is used).
OFFSET = re.compile(r"([+-])(\d{1,2})(?::?(\d{2}))?")


def zone_named(name: str) -> tzinfo | None:
    """The zone an abbreviation names (lower-case, no dots), or None when it is unknown or ambiguous."""
    if name in _FIXED_HOURS:
        return _fixed(_FIXED_HOURS[name])
    if name in _GENERIC:
        return ZoneInfo(_GENERIC[name])
    return None


def is_zone_word(name: str) -> bool:
    """Whether ``name`` is a zone abbreviation this module knows, ambiguous ones included."""
    return name in _FIXED_HOURS or name in _GENERIC or name in AMBIGUOUS


def offset_zone(sign: str, hours: str, minutes: str | None) -> tzinfo | None:
    """A fixed offset from its parts, or None when it is not a real UTC offset (beyond ±14:00)."""
    h, m = int(hours), int(minutes or 0)
    if m >= 60 or h * 60 + m > 14 * 60:
        return None
    delta = timedelta(hours=h, minutes=m)
    return timezone(-delta if sign == "-" else delta)
