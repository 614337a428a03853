"""The words of printed dates: month and weekday names, calendar markers, and the filler around them.

Every name is stored as :func:`fold` makes it, and input words are folded the same way before lookup, so
spelling variants of Persian, Dari, Pashto and Arabic letters (ي/ی, ك/ک, أ/ا, ګ/گ …), diacritics and
capitalisation never matter.
"""

from __future__ import annotations

import re
import unicodedata
from enum import Enum

_LETTER_VARIANTS = str.maketrans({
    "ي": "ی", "ى": "ی", "ۍ": "ی", "ې": "ی", "ئ": "ی", "ك": "ک", "ګ": "گ", "ة": "ه", "ە": "ه", "ـ": None,
    "\u200c": None, "\u200d": None,  # zero-width (non-)joiners inside Persian words
})
_INVISIBLE = re.compile("[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069\ufeff]")
_PUNCT = str.maketrans({"−": "-", "،": ",", "؛": ";", "٫": ".", "٬": ",", "\u066d": "*"})


def fold(text: str) -> str:
    """``text`` for matching: compatibility forms, ASCII digits, no diacritics or bidi marks, one letter
    per Arabic-script letter family, lower case."""
    if text.isascii():
        return text.lower()
    text = _INVISIBLE.sub("", text)
    decomposed = unicodedata.normalize("NFKD", text)
    chars = []
    for ch in decomposed:
        if unicodedata.category(ch) == "Mn":
            continue
        if ch.isdecimal() and not ch.isascii():
            ch = str(unicodedata.decimal(ch))
        chars.append(ch)
    return "".join(chars).translate(_LETTER_VARIANTS).translate(_PUNCT).lower()


class Calendar(Enum):
    GREGORIAN = "gregorian"
    SOLAR_HIJRI = "solar_hijri"
    LUNAR_HIJRI = "lunar_hijri"  # recognised only to say it is not converted


def _table(groups: list[tuple[str, ...]]) -> dict[str, int]:
    """{folded name: 1-based position} for a list of synonym groups in calendar order."""
    return {fold(name): number for number, names in enumerate(groups, start=1) for name in names}


GREGORIAN_MONTHS = _table([
    ("january", "jan", "ژانویه", "جنوری", "يناير", "ینایر"),
    ("february", "feb", "febr", "فوریه", "فبروری", "فبراير"),
    ("march", "mar", "مارس", "مارچ"),
    ("april", "apr", "آوریل", "اپریل", "أبريل", "ابریل"),
    ("may", "مه", "می", "مایو", "مايو"),
    ("june", "jun", "ژوئن", "جون", "یونیو", "يونيو"),
    ("july", "jul", "ژوئیه", "جولای", "یولیو", "يوليو"),
    ("august", "aug", "اوت", "آگوست", "اگست", "أغسطس"),
    ("september", "sep", "sept", "سپتامبر", "سپتمبر", "سبتمبر"),
    ("october", "oct", "اکتبر", "اکتوبر", "أكتوبر"),
    ("november", "nov", "نوامبر", "نومبر", "نوفمبر"),
    ("december", "dec", "دسامبر", "دسمبر", "ديسمبر"),
])

# Afghanistan's month names (the zodiac signs, in Dari and Pashto), Iran's, and their usual romanisations.
SOLAR_HIJRI_MONTHS = _table([
    ("حمل", "وری", "hamal", "farvardin", "farwardin", "فروردین"),
    ("ثور", "غویی", "sawr", "saur", "sour", "sowr", "ordibehesht", "ardibehesht", "اردیبهشت"),
    ("جوزا", "جوزاء", "غبرگولی", "jawza", "jauza", "jowza", "khordad", "خرداد"),
    ("سرطان", "چنگاښ", "saratan", "tir", "تیر"),
    ("اسد", "زمری", "asad", "mordad", "amordad", "مرداد", "امرداد"),
    ("سنبله", "وږی", "sonbola", "sunbula", "sunbulah", "sombola", "sunbola", "shahrivar", "shahrewar", "شهریور"),
    ("میزان", "تله", "mizan", "mehr", "mihr", "مهر"),
    ("عقرب", "لړم", "aqrab", "akrab", "aban", "آبان"),
    ("قوس", "لیندی", "qaws", "qaus", "qows", "azar", "آذر"),
    ("جدی", "مرغومی", "jadi", "jaddi", "jady", "dey", "dei", "دی"),
    ("دلو", "سلواغه", "dalw", "dalv", "bahman", "بهمن"),
    ("حوت", "کب", "hut", "hoot", "hout", "esfand", "isfand", "اسفند"),
])

# Python's weekday numbers: Monday is 0.
WEEKDAYS = {fold(name): number for number, names in enumerate([
    ("monday", "mon", "دوشنبه", "الاثنين", "الإثنين"),
    ("tuesday", "tue", "tues", "سهشنبه", "سه‌شنبه", "درېشنبه", "الثلاثاء"),
    ("wednesday", "wed", "چهارشنبه", "چارشنبه", "الأربعاء"),
    ("thursday", "thu", "thur", "thurs", "پنجشنبه", "پنج‌شنبه", "الخميس"),
    ("friday", "fri", "جمعه", "الجمعة"),
    ("saturday", "sat", "شنبه", "السبت"),
    ("sunday", "sun", "یکشنبه", "یک‌شنبه", "الأحد"),
]) for name in names}

CALENDAR_MARKERS = {
    **dict.fromkeys(map(fold, ("هش", "ش", "شمسی", "هجریشمسی", "خورشیدی", "sh")), Calendar.SOLAR_HIJRI),
    **dict.fromkeys(map(fold, ("هق", "ق", "قمری", "هجریقمری", "ه", "هجری", "ah")), Calendar.LUNAR_HIJRI),
    **dict.fromkeys(map(fold, ("میلادی", "ad", "ce")), Calendar.GREGORIAN),
}

AM_WORDS = frozenset(map(fold, ("am", "a.m", "قظ")))
PM_WORDS = frozenset(map(fold, ("pm", "p.m", "بظ")))

# Words that label a date rather than change it ("Published on", "Last updated", "تاریخ نشر", "ساعت").
FILLER = frozenset(map(fold, (
    "published", "updated", "posted", "last", "modified", "first", "created", "issued", "released", "dated",
    "date", "time", "on", "at", "of", "the", "as",
    "تاریخ", "انتشار", "نشر", "منتشر", "منتشرشده", "شده", "ساعت", "در", "روز", "بهروزرسانی", "بروزرسانی",
    "آخرین", "فی", "الساعة",
)))

# Words that make a date relative to when it is read ("3 hours ago", "yesterday", "۲ روز پیش"): such a
# value never becomes a date, since nothing may be taken from today.
RELATIVE = frozenset(map(fold, (
    "today", "yesterday", "tomorrow", "ago", "now", "just", "hour", "hours", "hr", "hrs", "minute", "minutes",
    "min", "mins", "day", "days", "week", "weeks", "month", "months", "year", "years", "امروز", "دیروز", "فردا",
    "پیش", "قبل", "گذشته", "اکنون",
)))

# "سه شنبه" (Tuesday) written with a space would otherwise read as "three" and "Saturday"; "هـ ش" and
# "هجری شمسی" are one calendar marker each.
_JOINED = [
    (re.compile(r"(یک|دو|سه|چهار|چار|پنج|دری)\s+شنبه"), r"\1شنبه"),
    (re.compile(r"ه\s*\.?\s*(ش|ق)(?![^\W\d_])"), r"ه\1"),
    (re.compile(r"هجری\s+(شمسی|قمری)"), r"هجری\1"),
]


def join_phrases(folded: str) -> str:
    """Multi-word names of folded text as single words."""
    if folded.isascii():
        return folded
    for pattern, replacement in _JOINED:
        folded = pattern.sub(replacement, folded)
    return folded
