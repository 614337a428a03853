"""Reading a printed date: the forms sitrep knows, or a :class:`DateProblem` saying why a text is not one.

Tried in order on the folded text (see :func:`~retrieval.loaders.date_words.fold`):

1. Unix timestamps written out: 9–13 digits or negative (seconds, or milliseconds from 10^10 up),
   ``/Date(ms)/``. Eight digits or fewer are an ISO basic date (``20221004``), never seconds.
2. PDF dates: ``D:YYYYMMDDHHmmSS+HH'mm'``.
3. ISO 8601: calendar, week and ordinal dates, basic or extended, with optional time and offset.
4. Everything else word by word: a numeric date (year first; day or month first only when unambiguous
   or when the source's order is declared) or a month name with a day and a year, in any order, with an
   optional weekday (checked against the date), time (24-hour or am/pm) and zone. Any word that is not part
   of a date makes the whole value unknown: nothing is guessed and no part is taken from today.

The result is naive when the text names no zone; the caller decides what that means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from retrieval.loaders import solar_hijri
from retrieval.loaders.date_words import (
    AM_WORDS,
    CALENDAR_MARKERS,
    FILLER,
    GREGORIAN_MONTHS,
    PM_WORDS,
    RELATIVE,
    SOLAR_HIJRI_MONTHS,
    WEEKDAYS,
    Calendar,
    fold,
    join_phrases,
)
from retrieval.loaders.zones import AMBIGUOUS, OFFSET, is_zone_word, offset_zone, zone_named

DATE_ORDERS = ("dmy", "mdy")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Solar Hijri years as printed today are 1300–1410; Gregorian years this low are rejected anyway (< 1900).
_SOLAR_HIJRI_YEARS = range(1200, 1600)


class DateProblem(ValueError):
    """Why a text is not a date sitrep can read. The message follows the value: "'04/10/2022' <message>"."""


def epoch_datetime(value: float) -> datetime:
    """A Unix timestamp in seconds, or in milliseconds when it is too large to be seconds of a plausible date
    (≥ 10^10, after the year 2286; as milliseconds that is any moment after 26 April 1970)."""
    seconds = value / 1000 if abs(value) >= 1e10 else value
    try:
        return _EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        raise DateProblem("is a number too large to be a timestamp") from None


def read_date_text(text: str, order: str | None = None) -> datetime:
    """The moment ``text`` names (naive when it names no zone). ``order``: ``dmy``/``mdy`` for numeric
    dates whose day and month could be swapped. Raises DateProblem."""
    folded = join_phrases(fold(text)).strip()
    if not folded:
        raise DateProblem("is empty")
    for form in (_timestamp, _pdf_date, _iso):
        found = form(folded)
        if found is not None:
            return found
    return _from_words(folded, order)


# ---------------------------------------------------------------------------------------- numbers only
_EPOCH_DIGITS = re.compile(r"(-?)(\d+)(?:\.\d+)?")
_MS_JSON = re.compile(r"/?date\((-?\d+)(?:[+-]\d{4})?\)/?")


def _timestamp(folded: str) -> datetime | None:
    if m := _MS_JSON.fullmatch(folded):
        return epoch_datetime(int(m.group(1)) / 1000)
    m = _EPOCH_DIGITS.fullmatch(folded)
    if not m or (not m.group(1) and len(m.group(2)) <= 8):  # up to eight digits: an ISO basic date (20221004)
        return None
    if len(m.group(2)) > 13:
        raise DateProblem(f"is a {len(m.group(2))}-digit number, too long for a timestamp in seconds or milliseconds")
    return epoch_datetime(float(folded))


_PDF = re.compile(r"d:(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})?(\d{2})?)?(?:(z)(?:00'?00'?)?|([+-])(\d{2})'?(\d{2})?'?)?")


def _pdf_date(folded: str) -> datetime | None:
    m = _PDF.fullmatch(folded)
    if not m:
        return None
    year, month, day, hour, minute, second, z, sign, oh, om = m.groups()
    zone = UTC if z else (_checked_offset(sign, oh, om) if sign else None)
    return _build(date_of(int(year), int(month), int(day)), _Clock(int(hour or 0), int(minute or 0),
                                                                   int(second or 0)), zone)


# ---------------------------------------------------------------------------------------------- ISO 8601
_ISO = re.compile(
    r"""(?P<year>\d{4})
    (?: -?(?P<month>\d{2})-?(?P<day>\d{2}) | -?w(?P<week>\d{2})(?:-?(?P<wday>[1-7]))? | -?(?P<yday>\d{3}) )
    (?: (?:t|\s+) (?P<hour>\d{2}) (?: :?(?P<minute>\d{2}) (?: :?(?P<second>\d{2}) (?:[.,](?P<frac>\d+))? )? )?
        \s*(?P<zone>z|[+-]\d{2}(?::?\d{2})?)? )?""",
    re.X,
)


def _iso(folded: str) -> datetime | None:
    m = _ISO.fullmatch(folded)
    if not m or int(m.group("year")) in _SOLAR_HIJRI_YEARS:  # 1399-07-24 is Solar Hijri: read word by word
        return None
    g = m.groupdict()
    year = int(g["year"])
    if g["week"]:
        if not g["wday"]:
            raise DateProblem("names a week, not a day")
        try:
            day = date.fromisocalendar(year, int(g["week"]), int(g["wday"]))
        except ValueError:
            raise DateProblem(f"names week {g['week']}, which {year} does not have") from None
    elif g["yday"]:
        yday = int(g["yday"])
        if not 1 <= yday <= (date_of(year, 12, 31) - date(year, 1, 1)).days + 1:
            raise DateProblem(f"names day {yday} of {year}, which does not exist")
        day = date(year, 1, 1) + timedelta(days=yday - 1)
    else:
        day = date_of(year, int(g["month"]), int(g["day"]))
    clock = _Clock(int(g["hour"] or 0), int(g["minute"] or 0), int(g["second"] or 0), g["frac"] or "")
    if clock.hour == 24 and (clock.minute, clock.second, clock.fraction.strip("0")) == (0, 0, ""):
        day, clock = day + timedelta(days=1), _Clock(0, 0, 0)  # ISO's "end of the day"
    zone = None
    if g["zone"]:
        zone = UTC if g["zone"] == "z" else _checked_offset(*OFFSET.fullmatch(g["zone"]).groups())  # type: ignore[union-attr]
    return _build(day, clock, zone)


# ------------------------------------------------------------------------------------------- word by word
_TOKEN = re.compile(
    r"""(?P<numdate>\d{1,4}(?P<sep>[/.-])\d{1,2}(?P=sep)\d{1,4})(?!\d)
    | (?P<clock>\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)(?![\d:])
    | (?P<hour>\d{1,2}(?:\.\d{2})?)(?=\s*(?:a\.?m|p\.?m)\.?(?![^\W\d_]))
    | (?P<dotclock>\d{1,2}\.\d{2})(?=\s*(?:[^\W\d_]|$))
    | (?P<gmt>(?:gmt|utc|ut)\s*[+-]\s*\d{1,2}(?::?\d{2})?)(?!\d)
    | (?:(?<=\s)|(?<=:\d\d))(?P<offset>[+-]\d{2}:?\d{2})(?!\d)
    | (?P<number>\d+)(?P<ordinal>st|nd|rd|th)?
    | (?P<word>[^\W\d_]+(?:\.[^\W\d_]+)*\.?)
    | (?P<separator>(?:[\s,;:|/\\()\[\]'"•·–—.*]|-(?!\d))+|-)""",
    re.X,
)
# "GMT+0000 (Coordinated Universal Time)", "-0400 (EDT)": a comment after an explicit offset.
_ZONE_COMMENT = re.compile(r"((?:gmt|utc|ut)?\s*[+-]\d{1,2}(?::?\d{2})?)\s*\([^()]*\)\s*$")


@dataclass(frozen=True)
class _Clock:
    hour: int
    minute: int
    second: int
    fraction: str = ""  # decimal digits of the second


@dataclass
class _Found:
    """What the words of a value are, with each one's position among the meaningful tokens."""

    numdates: list[str]
    numbers: list[tuple[str, bool, int]]  # (digits, has an ordinal suffix, position)
    months: list[tuple[Calendar, int, int]]  # (calendar, month, position)
    weekdays: list[int]
    clocks: list[tuple[str, int]]  # (text, position)
    meridiem: list[int]  # 0 for am, 12 for pm
    zones: list[tzinfo]
    offsets: list[tuple[str, int]]  # explicit offsets (text, position)
    calendars: set[Calendar]


def _tokens(folded: str) -> _Found:
    found = _Found([], [], [], [], [], [], [], [], set())
    position, at = 0, 0  # position counts the meaningful tokens (not separators or filler words)
    while at < len(folded):
        m = _TOKEN.match(folded, at)
        if not m:
            raise DateProblem(f"has {folded[at:at + 12]!r}, which is not part of a date")
        at = m.end()
        if m.group("numdate"):
            found.numdates.append(m.group("numdate"))
        elif m.group("clock") or m.group("hour") or m.group("dotclock"):
            found.clocks.append((m.group("clock") or m.group("hour") or m.group("dotclock"), position))
        elif m.group("gmt"):
            found.offsets.append((re.sub(r"^(gmt|utc|ut)|\s+", "", m.group("gmt")), -1))
        elif m.group("offset"):
            found.offsets.append((m.group("offset"), position))
        elif m.group("number"):
            found.numbers.append((m.group("number"), bool(m.group("ordinal")), position))
        elif not (m.group("word") and _word(m.group("word"), position, found)):
            continue
        position += 1
    return found


def _word(word: str, position: int, found: _Found) -> bool:
    """Record what ``word`` is; False for filler. Raises DateProblem for a word that is not part of a date."""
    key = word.rstrip(".")
    bare = key.replace(".", "")
    if key in GREGORIAN_MONTHS:
        found.months.append((Calendar.GREGORIAN, GREGORIAN_MONTHS[key], position))
    elif key in SOLAR_HIJRI_MONTHS:
        found.months.append((Calendar.SOLAR_HIJRI, SOLAR_HIJRI_MONTHS[key], position))
    elif key in WEEKDAYS:
        found.weekdays.append(WEEKDAYS[key])
    elif bare in AM_WORDS or bare in PM_WORDS:
        found.meridiem.append(0 if bare in AM_WORDS else 12)
    elif bare in CALENDAR_MARKERS:
        found.calendars.add(CALENDAR_MARKERS[bare])
    elif bare in AMBIGUOUS:
        raise DateProblem(f"gives the time zone {bare.upper()}, which names several zones hours apart")
    elif is_zone_word(bare):
        found.zones.append(zone_named(bare))  # type: ignore[arg-type]
    elif key in RELATIVE:
        raise DateProblem("is relative to when it was read (sitrep never takes a date from today)")
    elif key in FILLER:
        return False
    else:
        raise DateProblem(f"has the word {word!r}, which is not part of a date")
    return True


def _from_words(folded: str, order: str | None) -> datetime:
    folded = _ZONE_COMMENT.sub(r"\1", folded)
    found = _tokens(folded)
    if Calendar.LUNAR_HIJRI in found.calendars:
        raise DateProblem("is a lunar Hijri date, which sitrep does not convert")
    if len(found.numdates) + len(found.months) > 1:
        raise DateProblem("has more than one date in it")
    if found.numdates:
        if found.numbers:
            raise DateProblem(f"has the number {found.numbers[0][0]} besides the date")
        year, month, day, calendar = _numeric_date(found.numdates[0], order, found.calendars)
    elif found.months:
        calendar, month, month_at = found.months[0]
        year, day = _day_and_year(found.numbers, month_at, bool(found.clocks))
    elif found.numbers:
        raise DateProblem("is not a full date: it needs a day, a month and a year")
    else:
        raise DateProblem("has no date in it")
    if len(found.calendars - {calendar}) > 0:
        raise DateProblem("names one calendar but gives a date in another")
    if calendar is Calendar.SOLAR_HIJRI:
        if year not in _SOLAR_HIJRI_YEARS:
            raise DateProblem(f"gives a Solar Hijri month with the year {year}")
        try:
            day_of = solar_hijri.to_gregorian(year, month, day)
        except ValueError:
            raise DateProblem(f"names day {day} of Solar Hijri month {month} of {year}, which does not exist") from None
    else:
        day_of = date_of(year, month, day)
    if len(found.weekdays) > 1:
        raise DateProblem("names two weekdays")
    if found.weekdays and found.weekdays[0] != day_of.weekday():
        raise DateProblem(f"names the wrong weekday for {day_of.isoformat()} (a {day_of:%A})")
    clock = _clock(found)
    zone = _zone(found, day_of, clock)
    return _build(day_of, clock, zone)


def _numeric_date(text: str, order: str | None, calendars: set[Calendar]) -> tuple[int, int, int, Calendar]:
    a, b, c = re.split(r"[/.-]", text)
    if len(a) == 4 and len(c) <= 2:
        year, month, day = int(a), int(b), int(c)
    elif len(a) <= 2 and len(c) in (2, 4):
        first, second = int(a), int(b)
        if first > 12 and second > 12:
            raise DateProblem("has no part that can be the month")
        if first > 12 or (first == second) or (order == "dmy" and second <= 12):
            day, month = first, second
        elif second > 12 or order == "mdy":
            month, day = first, second
        else:
            raise DateProblem(
                f"could be {_day_name(first, second)} or {_day_name(second, first)} (declare how the source writes "
                "dates with --date-order dmy or mdy)"
            )
        if len(c) == 2 and order is None:
            raise DateProblem("has a two-digit year (declare how the source writes dates with --date-order dmy or mdy)")
        year = int(c) if len(c) == 4 else _two_digit_year(int(c))
    else:
        raise DateProblem("is not a numeric date sitrep reads (year first, or day and month first)")
    solar = Calendar.SOLAR_HIJRI in calendars or (year in _SOLAR_HIJRI_YEARS and Calendar.GREGORIAN not in calendars)
    return year, month, day, Calendar.SOLAR_HIJRI if solar else Calendar.GREGORIAN


def _day_name(day: int, month: int) -> str:
    names = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December")
    return f"{day} {names[month - 1]}"


def _two_digit_year(yy: int) -> int:
    """RFC 2822's rule (a fixed pivot, never today's century): 00–49 are 2000–2049, 50–99 are 1950–1999."""
    return 2000 + yy if yy < 50 else 1900 + yy


def _day_and_year(numbers: list[tuple[str, bool, int]], month_at: int, has_clock: bool) -> tuple[int, int]:
    odd = [n for n, _, _ in numbers if len(n) not in (1, 2, 4)]
    if odd:
        raise DateProblem(f"has the number {odd[0]}, which is neither a day nor a year")
    years = [int(n) for n, ordinal, _ in numbers if len(n) == 4 and not ordinal]
    days = [(int(n), at) for n, _, at in numbers if len(n) <= 2]
    if not years and len(days) == 2 and has_clock and days[0][1] < month_at < days[1][1] == month_at + 1:
        # RFC 822's "Wed, 14 Oct 20 09:30:00 GMT": day, month, two-digit year, time.
        return _two_digit_year(days[1][0]), days[0][0]
    if len(years) > 1 or len(days) > 1:
        raise DateProblem("has more numbers than a day and a year")
    if not years:
        raise DateProblem("has no year")
    if not days:
        raise DateProblem("names a month, not a day")
    return years[0], days[0][0]


def _clock(found: _Found) -> _Clock:
    if len(found.clocks) > 1:
        raise DateProblem("has two times in it")
    if len(found.meridiem) > 1 or (found.meridiem and not found.clocks):
        raise DateProblem("has am/pm without one time to apply it to")
    if not found.clocks:
        return _Clock(0, 0, 0)
    text = found.clocks[0][0]
    parts = re.split(r"[:.]", text, maxsplit=2)
    hour, minute = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    second, fraction = 0, ""
    if len(parts) > 2:
        whole, _, fraction = parts[2].replace(",", ".").partition(".")
        second = int(whole)
    if found.meridiem:
        if not 1 <= hour <= 12:
            raise DateProblem(f"has the hour {hour} with am/pm")
        hour = hour % 12 + found.meridiem[0]
    return _Clock(hour, minute, second, fraction)


def _zone(found: _Found, day: date, clock: _Clock) -> tzinfo | None:
    if len(found.offsets) > 1 or len(found.zones) > 1:
        raise DateProblem("gives more than one time zone")
    explicit = None
    if found.offsets:
        text, at = found.offsets[0]
        clock_at = found.clocks[0][1] if found.clocks else None
        if at != -1 and (clock_at is None or not 0 < at - clock_at <= 2):
            raise DateProblem(f"has {text!r} where a time zone offset should follow a time")
        m = OFFSET.fullmatch(text)
        explicit = _checked_offset(*m.groups()) if m else None
        if explicit is None:
            raise DateProblem(f"has the offset {text!r}, which is not a UTC offset")
    named = found.zones[0] if found.zones else None
    if explicit is not None and named is not None:
        moment = _build(day, clock, None)
        if moment.replace(tzinfo=explicit).utcoffset() != moment.replace(tzinfo=named).utcoffset():
            raise DateProblem("gives two time zones that disagree")
    return explicit or named


# ----------------------------------------------------------------------------------------------- shared
def date_of(year: int, month: int, day: int) -> date:
    """A Gregorian date, or DateProblem naming the impossible part."""
    if not 1 <= month <= 12:
        raise DateProblem(f"has the month {month}, which does not exist")
    if year < 1:
        raise DateProblem("has the year 0")
    try:
        return date(year, month, day)
    except ValueError:
        raise DateProblem(f"has the day {day}, which {year}-{month:02d} does not have") from None


def _checked_offset(sign: str, hours: str, minutes: str | None) -> tzinfo:
    zone = offset_zone(sign, hours, minutes)
    if zone is None:
        raise DateProblem(f"has the offset {sign}{hours}{minutes or ''}, which is not a UTC offset")
    return zone


def _build(day: date, clock: _Clock, zone: tzinfo | None) -> datetime:
    if clock.hour > 23 or clock.minute > 59 or clock.second > 59:
        raise DateProblem(f"has the time {clock.hour:02d}:{clock.minute:02d}:{clock.second:02d}, which does not exist")
    micro = int((clock.fraction + "000000")[:6])
    return datetime(day.year, day.month, day.day, clock.hour, clock.minute, clock.second, micro, tzinfo=zone)
