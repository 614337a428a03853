"""The Solar Hijri calendar of Afghanistan and Iran: conversion to and from the Gregorian calendar.

Years start at the March equinox (Nowruz). Months 1–6 have 31 days, 7–11 have 30, the twelfth 29 or
30. Leap years follow the astronomical calendar; the break-year table below (Borkowski's algorithm, as
used by jalaali-js and jdatetime) reproduces it exactly from 1 to 3177 SH. Afghanistan and Iran use the
same days under different month names: 24 Mizan 1399 (Dari) = 24 Mehr 1399 (Persian) = 15 October 2020.
"""

from __future__ import annotations

from datetime import date, timedelta

# Years of the 2,820-year cycle in which the 33-year leap pattern restarts.
_BREAKS = (-61, 9, 38, 199, 426, 686, 756, 818, 1111, 1181, 1210, 1635, 2060, 2097, 2192, 2262, 2324, 2394,
           2456, 3178)
FIRST_YEAR, LAST_YEAR = _BREAKS[0], _BREAKS[-1] - 1


def _div(a: int, b: int) -> int:
    """Integer division truncated toward zero (the algorithm is stated with C semantics)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _mod(a: int, b: int) -> int:
    return a - _div(a, b) * b


def _year_info(year: int) -> tuple[bool, date]:
    """(is a leap year, the Gregorian date of its 1 Farvardin / 1 Hamal) for Solar Hijri ``year``."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"Solar Hijri year {year} is outside {FIRST_YEAR}..{LAST_YEAR}")
    gregorian_year = year + 621
    leap_count = -14
    previous = _BREAKS[0]
    jump = 0
    for brk in _BREAKS[1:]:
        jump = brk - previous
        if year < brk:
            break
        leap_count += _div(jump, 33) * 8 + _div(_mod(jump, 33), 4)
        previous = brk
    n = year - previous
    leap_count += _div(n, 33) * 8 + _div(_mod(n, 33) + 3, 4)
    if _mod(jump, 33) == 4 and jump - n == 4:
        leap_count += 1
    gregorian_leaps = _div(gregorian_year, 4) - _div((_div(gregorian_year, 100) + 1) * 3, 4) - 150
    march_day = 20 + leap_count - gregorian_leaps
    if jump - n < 6:
        n = n - jump + _div(jump + 4, 33) * 33
    leap = _mod(_mod(n + 1, 33) - 1, 4)
    return leap == 0, date(gregorian_year, 3, march_day)


def month_length(year: int, month: int) -> int:
    """Days in ``month`` (1–12) of Solar Hijri ``year``."""
    if month <= 6:
        return 31
    if month <= 11:
        return 30
    return 30 if _year_info(year)[0] else 29


def to_gregorian(year: int, month: int, day: int) -> date:
    """The Gregorian date of a Solar Hijri date. Raises ValueError for a day that does not exist."""
    if not 1 <= month <= 12:
        raise ValueError(f"month {month} is not 1..12")
    if not 1 <= day <= month_length(year, month):
        raise ValueError(f"day {day} is not in month {month} of {year}")
    _, nowruz = _year_info(year)
    offset = (month - 1) * 31 if month <= 7 else 6 * 31 + (month - 7) * 30
    return nowruz + timedelta(days=offset + day - 1)


def from_gregorian(when: date) -> tuple[int, int, int]:
    """The Solar Hijri (year, month, day) of a Gregorian date."""
    year = when.year - 621
    _, nowruz = _year_info(year)
    if when < nowruz:
        year -= 1
        _, nowruz = _year_info(year)
    offset = (when - nowruz).days
    if offset < 6 * 31:
        return year, offset // 31 + 1, offset % 31 + 1
    offset -= 6 * 31
    return year, offset // 30 + 7, offset % 30 + 1
