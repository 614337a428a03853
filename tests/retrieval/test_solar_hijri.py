"""Solar Hijri conversion against the calendar as published (Nowruz dates from 1279 to 1420 SH)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from retrieval.loaders.solar_hijri import from_gregorian, month_length, to_gregorian

# The March day of 1 Farvardin (1 Hamal) for the years 1279..1420 SH, as the Iranian calendar authority
# publishes them (taken from jdatetime 6.1.1; not computed by the code under test).
NOWRUZ_DAY = [
    21, 21, 22, 22, 21, 21, 22, 22, 21, 21, 22, 22, 21, 21, 22, 22, 21, 21, 22, 22, 21, 21, 22, 22, 21, 21, 22, 22,
    21, 21, 21, 22, 21, 21, 21, 22, 21, 21, 21, 22, 21, 21, 21, 22, 21, 21, 21, 22, 21, 21, 21, 22, 21, 21, 21, 22,
    21, 21, 21, 22, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21,
    21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 20, 21, 21, 21, 20, 21, 21, 21, 20, 21, 21, 21, 20, 21, 21, 21,
    20, 21, 21, 21, 20, 21, 21, 21, 20, 21, 21, 21, 20, 21, 21, 21, 20, 20, 21, 21, 20, 20, 21, 21, 20, 20, 21, 21,
    20, 20,
]


@pytest.mark.parametrize("year", range(1279, 1421))
def test_nowruz_and_year_length(year: int) -> None:
    nowruz = date(year + 621, 3, NOWRUZ_DAY[year - 1279])
    assert to_gregorian(year, 1, 1) == nowruz
    assert from_gregorian(nowruz) == (year, 1, 1)
    next_nowruz = date(year + 622, 3, NOWRUZ_DAY[year - 1278]) if year < 1420 else None
    if next_nowruz:
        days = (next_nowruz - nowruz).days
        assert sum(month_length(year, m) for m in range(1, 13)) == days
        assert from_gregorian(next_nowruz - timedelta(days=1)) == (year, 12, month_length(year, 12))


def test_every_day_round_trips_from_1900_to_2100() -> None:
    day, previous = date(1900, 1, 1), from_gregorian(date(1899, 12, 31))
    while day < date(2100, 1, 1):
        sh = from_gregorian(day)
        assert to_gregorian(*sh) == day
        y, m, d = previous  # consecutive days are consecutive Solar Hijri dates, none skipped or repeated
        assert sh in ((y, m, d + 1), (y, m + 1, 1), (y + 1, 1, 1))
        assert sh[2] <= month_length(sh[0], sh[1])
        previous, day = sh, day + timedelta(days=1)


def test_known_dates() -> None:
    assert to_gregorian(1399, 7, 24) == date(2020, 10, 15)  # 24 Mizan/Mehr 1399, the sample article's date
    assert to_gregorian(1399, 7, 1) == date(2020, 9, 22)
    with pytest.raises(ValueError):
        to_gregorian(1400, 12, 30)  # 1400 is a common year
    assert to_gregorian(1403, 12, 30) == date(2025, 3, 20)
