"""parse(format(d)) == d over random dates, for every numeric and named form sitrep reads.

A seeded random loop (no extra dependency): each form gets the same 300 random moments between 1900 and
the test's ingestion time. Formatters are written here from the forms' definitions, not taken from the
parser; forms without a time are compared at midnight UTC, and forms with a zone are printed in that zone.
Timestamps near 1970 are where forms overlap: eight digits or fewer of text are an ISO basic date
(``20221004``), and milliseconds under 10^10 are read as seconds. Timestamps are therefore drawn outside
1969-09-07..1973-03-03 (``|seconds| < 10^8``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import pytest

from retrieval.loaders.dates import parse_date
from retrieval.loaders.solar_hijri import from_gregorian

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
SAMPLES = 300
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
AFGHAN_MONTHS = ["حمل", "ثور", "جوزا", "سرطان", "اسد", "سنبله", "میزان", "عقرب", "قوس", "جدی", "دلو", "حوت"]
IRANIAN_MONTHS = ["فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور", "مهر", "آبان", "آذر", "دی", "بهمن", "اسفند"]
PASHTO_MONTHS = ["وری", "غویی", "غبرګولی", "چنګاښ", "زمری", "وږی", "تله", "لړم", "لیندۍ", "مرغومی", "سلواغه", "کب"]
ROMAN_AFGHAN = ["Hamal", "Sawr", "Jawza", "Saratan", "Asad", "Sunbula", "Mizan", "Aqrab", "Qaws", "Jadi", "Dalw", "Hut"]
PERSIAN_WEEKDAYS = ["دوشنبه", "سه‌شنبه", "چهارشنبه", "پنجشنبه", "جمعه", "شنبه", "یکشنبه"]  # Monday first
ZONES = {"EST": -5, "EDT": -4, "CST": -6, "PDT": -7, "GMT": 0, "BST": 1, "CET": 1, "CEST": 2, "EET": 2, "MSK": 3,
         "AFT": 4.5, "PKT": 5, "IRST": 3.5, "JST": 9}


def persian(text: str) -> str:
    return text.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))


def arabic_indic(text: str) -> str:
    return text.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))


def moments() -> list[datetime]:
    rng = random.Random(20221004)
    start, span = datetime(1900, 1, 2, tzinfo=UTC), int((NOW - timedelta(days=1) - datetime(1900, 1, 2, tzinfo=UTC))
                                                        .total_seconds())
    return [start + timedelta(seconds=rng.randrange(span)) for _ in range(SAMPLES)]


def midnight(d: datetime) -> datetime:
    return d.replace(hour=0, minute=0, second=0)


def in_zone(d: datetime, hours: float) -> datetime:
    return d.astimezone(timezone(timedelta(hours=hours)))


def twelve_hour(d: datetime) -> str:
    return f"{d.hour % 12 or 12}:{d:%M} {'AM' if d.hour < 12 else 'PM'}"


def named_zone(d: datetime, rng: random.Random) -> tuple[str, datetime]:
    name = rng.choice(sorted(ZONES))
    return name, in_zone(d, ZONES[name])


def ordinal(day: int) -> str:
    return f"{day}{'th' if 10 <= day <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th')}"


def solar(d: datetime) -> tuple[int, int, int]:
    return from_gregorian(d.date())


# Each form: (name, formatter(moment, rng) -> (text, expected moment), date order to declare).
Form = tuple[str, Callable[[datetime, random.Random], tuple[object, datetime]], str | None]


def _rfc2822(d: datetime, rng: random.Random) -> tuple[object, datetime]:
    return format_datetime(in_zone(d, rng.choice([-7, -4, 0, 2, 4.5, 5.75]))), d


def _iso_offset(d: datetime, rng: random.Random) -> tuple[object, datetime]:
    return in_zone(d, rng.choice([-5, 0, 3.5, 4.5, 9])).isoformat(), d


def _byline(d: datetime, rng: random.Random) -> tuple[object, datetime]:
    name, local = named_zone(d, rng)
    return f"{local:%A}, {MONTHS[local.month - 1]} {local.day}, {local.year} {twelve_hour(local)} {name}", \
        d.replace(second=0)


def _generic_us(d: datetime, rng: random.Random) -> tuple[object, datetime]:
    name, zone = rng.choice([("ET", "America/New_York"), ("PT", "America/Los_Angeles")])
    local = d.astimezone(ZoneInfo(zone))
    if local.fold or local.replace(fold=1).utcoffset() != local.utcoffset():
        local = d.astimezone(ZoneInfo(zone)) + timedelta(hours=3)  # the repeated autumn hour is ambiguous as text
        d = local.astimezone(UTC)
    return f"{MONTHS[local.month - 1][:3]}. {local.day}, {local.year} {twelve_hour(local)} {name}", d.replace(second=0)


def _afghan(d: datetime, rng: random.Random) -> tuple[object, datetime]:
    y, m, day = solar(d)
    weekday = f"{PERSIAN_WEEKDAYS[d.weekday()]} " if rng.random() < 0.5 else ""
    return persian(f"{weekday}{day} {AFGHAN_MONTHS[m - 1]} {y}"), midnight(d)


FORMS: list[Form] = [
    ("iso-z", lambda d, _: (d.strftime("%Y-%m-%dT%H:%M:%SZ"), d), None),
    ("iso-offset", _iso_offset, None),
    ("iso-basic", lambda d, _: (d.strftime("%Y%m%dT%H%M%SZ"), d), None),
    ("iso-week", lambda d, _: ("{}-W{:02d}-{}".format(*d.isocalendar()), midnight(d)), None),
    ("iso-ordinal", lambda d, _: (f"{d.year}-{d.timetuple().tm_yday:03d}", midnight(d)), None),
    ("rfc2822", _rfc2822, None),
    ("year-first-slash", lambda d, _: (f"{d.year}/{d.month:02d}/{d.day:02d}", midnight(d)), None),
    ("year-first-dot", lambda d, _: (f"{d.year}.{d.month}.{d.day}", midnight(d)), None),
    ("year-first-time", lambda d, _: (f"{d.year}/{d.month:02d}/{d.day:02d}/{d:%H:%M}", d.replace(second=0)), None),
    ("dmy-slash", lambda d, _: (f"{d.day:02d}/{d.month:02d}/{d.year}", midnight(d)), "dmy"),
    ("dmy-dot-time", lambda d, _: (f"{d.day}.{d.month}.{d.year} {d:%H:%M}", d.replace(second=0)), "dmy"),
    ("mdy-slash", lambda d, _: (f"{d.month}/{d.day}/{d.year}", midnight(d)), "mdy"),
    ("mdy-dash-12h", lambda d, _: (f"{d.month:02d}-{d.day:02d}-{d.year} {twelve_hour(d)}", d.replace(second=0)),
     "mdy"),
    ("unix-seconds", lambda d, _: (int(d.timestamp()), d), None),
    ("unix-seconds-text", lambda d, _: (str(int(d.timestamp())), d), None),
    ("unix-millis", lambda d, _: (int(d.timestamp()) * 1000, d), None),
    ("pdf", lambda d, _: (in_zone(d, 4.5).strftime("D:%Y%m%d%H%M%S+04'30'"), d), None),
    ("month-day-year", lambda d, _: (f"{MONTHS[d.month - 1][:3]} {d.day}, {d.year}", midnight(d)), None),
    ("day-month-year", lambda d, _: (f"{d.day} {MONTHS[d.month - 1]} {d.year}", midnight(d)), None),
    ("ordinal-of", lambda d, _: (f"{ordinal(d.day)} of {MONTHS[d.month - 1]} {d.year}", midnight(d)), None),
    ("year-month-day-named", lambda d, _: (f"{d.year} {MONTHS[d.month - 1][:3]} {d.day}", midnight(d)), None),
    ("byline-zone", _byline, None),
    ("byline-generic-us", _generic_us, None),
    ("asctime", lambda d, _: (d.strftime("%a %b ") + f"{d.day:2d}" + d.strftime(" %H:%M:%S %Y"), d), None),
    ("javascript", lambda d, _: (in_zone(d, 4.5).strftime("%a %b %d %Y %H:%M:%S GMT+0430 (Afghanistan Time)"), d),
     None),
    ("go", lambda d, _: (d.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"), d), None),
    ("persian-digits-iso", lambda d, _: (persian(d.strftime("%Y-%m-%d")), midnight(d)), None),
    ("arabic-indic-slash", lambda d, _: (arabic_indic(f"{d.year}/{d.month:02d}/{d.day:02d}"), midnight(d)), None),
    ("solar-hijri-numeric", lambda d, _: (persian("{}/{:02d}/{:02d}".format(*solar(d))), midnight(d)), None),
    ("solar-hijri-afghan", _afghan, None),
    ("solar-hijri-iranian", lambda d, _: (persian(f"{solar(d)[2]} {IRANIAN_MONTHS[solar(d)[1] - 1]} {solar(d)[0]}"),
                                          midnight(d)), None),
    ("solar-hijri-pashto", lambda d, _: (persian(f"{solar(d)[2]} {PASHTO_MONTHS[solar(d)[1] - 1]} {solar(d)[0]}"),
                                         midnight(d)), None),
    ("solar-hijri-roman", lambda d, _: (f"{solar(d)[2]} {ROMAN_AFGHAN[solar(d)[1] - 1]} {solar(d)[0]}", midnight(d)),
     None),
]


@pytest.mark.parametrize(("name", "form", "order"), FORMS, ids=[f[0] for f in FORMS])
def test_parse_of_format_is_identity(name: str, form: Callable[[datetime, random.Random], tuple[object, datetime]],
                                     order: str | None) -> None:
    rng = random.Random(name)
    for moment in moments():
        if name.startswith("unix") and abs(moment.timestamp()) < 1e8:
            continue
        text, expected = form(moment, rng)
        parsed = parse_date(text, date_order=order, now=NOW)
        assert parsed.when == expected, f"{name}: {text!r} gave {parsed.when} ({parsed.problem}), not {expected}"


@pytest.mark.parametrize("separator", ["/", ".", "-"])
def test_undeclared_day_month_order_is_right_or_unknown(separator: str) -> None:
    """Without a declared order, a day-first or month-first date is read only when one reading exists."""
    read = 0
    for moment in moments():
        day = midnight(moment)
        for text in (f"{day.day:02d}{separator}{day.month:02d}{separator}{day.year}",
                     f"{day.month:02d}{separator}{day.day:02d}{separator}{day.year}"):
            parsed = parse_date(text, now=NOW)
            unambiguous = day.day > 12 or day.day == day.month
            assert parsed.when == (day if unambiguous else None), text
            read += parsed.when is not None
    assert read > SAMPLES  # most random days (13th–31st) have only one reading


def test_no_value_crashes_the_parser() -> None:
    """Random runs of date-like pieces: always a date within bounds or a reason, never an exception."""
    pieces = ["2022", "9999", "0000", "1399", "10", "04", "31", "366", "24", "-", "/", ".", ":", " ", "T", "Z",
              "+04:30", "-0500", "Oct", "October", "Mizan", "میزان", "۱۳۹۹", "۲۴", "am", "PM", "ET", "GMT", "gmt+",
              "W53", "W", "D:", "(", ")", "th", "Tue", "sept.", "1664893800", "99999999999999", "24:00", "60", "12",
              "00", "ه.ش", "ق", ",", "nan", "\u200f", "\u200c", "٫"]
    rng = random.Random(7)
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        parsed = parse_date(text, date_order=rng.choice([None, "dmy", "mdy"]), now=NOW)
        assert parsed.absent or (parsed.when is None) != (parsed.problem is None), text
        if parsed.when is not None:
            assert datetime(1900, 1, 1, tzinfo=UTC) <= parsed.when <= NOW + timedelta(hours=14), text
