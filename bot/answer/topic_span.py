"""A topic and a time span from free text: ``Helmand this week``, ``last 3 days Kandahar``,
``Kandahar since 2020-10-14``, ``24h Lashkargah``.

The span may stand anywhere in the text; what is left, without the little words that joined it to the
span ("in the last 3 days"), is the topic. Calendar words (today, this week, since Monday) are read in
the team's time zone. Used by ``/summarize`` and ``sitrep summarize``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from retrieval.errors import QueryError
from retrieval.timeparse import parse_when

_CLOCK_SKEW = timedelta(minutes=5)  # a span "since" a moment this far ahead is still taken as now
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1),
          "mo": timedelta(days=30)}
_UNIT_WORD = r"(?:min(?:ute)?s?|hours?|hrs?|days?|weeks?|months?)"
_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "ten": 10, "few": 3, "couple of": 2}
_AMOUNT = r"(?:\d+(?:\.\d+)?|a|an|one|two|three|four|five|six|seven|ten|few|couple of)"
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ISO = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?)?"
_COMPACT = r"\d+(?:\.\d+)?(?:m|min|h|hr|d|w)"
_LEAD_IN = r"(?:(?:in|over|during|for|from|of|within)\s+)?(?:the\s+)?"
_B, _E = r"(?<![\w-])", r"(?![\w-])"

# One alternative per form; the named group says which.
_SPAN = re.compile(
    "|".join([
        rf"{_B}--since\s+(?P<flag>\S+)",
        rf"{_B}(?:since|from|after)\s+(?P<since>{_ISO}|{_COMPACT}|today|yesterday|{'|'.join(_WEEKDAYS)}|"
        rf"(?P<since_n>{_AMOUNT})\s+(?P<since_unit>{_UNIT_WORD})\s+ago){_E}",
        rf"{_B}{_LEAD_IN}(?:last|past|previous)\s+(?:(?:(?P<last_n>{_AMOUNT})\s+)?(?P<last_unit>{_UNIT_WORD})"
        rf"|(?P<last_compact>{_COMPACT})){_E}",
        rf"{_B}(?P<ago_n>{_AMOUNT})\s+(?P<ago_unit>{_UNIT_WORD})\s+ago{_E}",
        rf"{_B}{_LEAD_IN}this\s+(?P<this>morning|week|month|year){_E}",
        rf"{_B}(?:for\s+|from\s+|of\s+)?(?P<day>today|yesterday){_E}",
        rf"{_B}(?:on\s+|from\s+)?(?P<iso>{_ISO}){_E}",
        rf"{_B}(?:in\s+|over\s+|for\s+)?(?:the\s+)?(?P<compact>{_COMPACT}){_E}",
        rf"{_B}(?P<tail_n>\d+)\s+(?P<tail_unit>{_UNIT_WORD})\s*$",
    ]),
    re.IGNORECASE,
)
# Words left dangling where the span was cut out: "news from Helmand in" -> "news from Helmand".
_DANGLING = re.compile(r"(?:^|\s)(?:in|over|during|for|from|since|of|on|the|within|and)\s*$|^\s*(?:in|for|on)\s+",
                       re.IGNORECASE)


@dataclass(frozen=True)
class TopicSpan:
    """What free text asks to summarise: ``topic`` (None: everything) since ``since`` (None: no limit)."""

    topic: str | None
    since: datetime | None
    span: str | None = None  # the words read as the span, for messages


def parse_topic_span(text: str, now: datetime | None = None, tz: tzinfo = UTC) -> TopicSpan:
    """Split ``text`` into a topic and the start of a time span.

    Spans: ``24h``, ``7d``, ``2w``; ``last 3 days``, ``past 24 hours``, ``last week``; ``this week`` (since
    Monday), ``this month``, ``today``, ``yesterday``; ``3 days ago``; ``since Monday``, ``since 2020-10-14``,
    an ISO date or datetime; ``--since WHEN``. Raises QueryError for two spans or a date in the future.
    """
    now = now or datetime.now(UTC)
    matches = list(_SPAN.finditer(text))
    if len(matches) > 1:
        spans = " and ".join(f"'{m.group(0).strip()}'" for m in matches)
        raise QueryError(f"{spans} are both time spans; give one, e.g. `Helmand last 3 days`.")
    if not matches:
        return TopicSpan(_topic(text), None)
    match = matches[0]
    since = _since(match, now, tz)
    if since > now + _CLOCK_SKEW:
        raise QueryError(f"'{match.group(0).strip()}' is in the future; nothing has been published since then.")
    rest = f"{_tidy(text[: match.start()])} {_tidy(text[match.end():], leading=True)}"
    return TopicSpan(_topic(rest), since, match.group(0).strip())


def _since(match: re.Match[str], now: datetime, tz: tzinfo) -> datetime:
    groups = {name: value for name, value in match.groupdict().items() if value}
    if "flag" in groups:
        return parse_when(groups["flag"], now=now, name="--since")
    if "since" in groups:
        if "since_n" in groups:
            return now - _amount(groups["since_n"]) * _unit(groups["since_unit"])
        return _point(groups["since"], now, tz)
    for prefix in ("last", "ago", "tail"):
        if f"{prefix}_unit" in groups:
            return now - _amount(groups.get(f"{prefix}_n", "1")) * _unit(groups[f"{prefix}_unit"])
    if "this" in groups:
        return _start_of(groups["this"].lower(), now, tz)
    return _point(groups.get("day") or groups.get("iso") or groups.get("last_compact") or groups["compact"], now, tz)


def _point(word: str, now: datetime, tz: tzinfo) -> datetime:
    """The moment a single word or value names: a weekday, today/yesterday, an ISO date, or a compact span."""
    lowered = word.lower()
    if lowered in _WEEKDAYS:
        midnight = _start_of("day", now, tz)
        back = (midnight.astimezone(tz).weekday() - _WEEKDAYS.index(lowered)) % 7 or 7
        return _start_of("day", midnight - timedelta(days=back), tz)
    if lowered in ("today", "yesterday"):
        midnight = _start_of("day", now, tz)
        return midnight if lowered == "today" else _start_of("day", midnight - timedelta(hours=12), tz)
    when = parse_when(word, now=now, name="since")  # also rejects 2020-13-45 with a message
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", word):  # a day: from its midnight in the team's zone
        return datetime(when.year, when.month, when.day, tzinfo=tz).astimezone(UTC)
    return when


def _start_of(period: str, now: datetime, tz: tzinfo) -> datetime:
    local = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        local -= timedelta(days=local.weekday())
    elif period == "month":
        local = local.replace(day=1)
    elif period == "year":
        local = local.replace(month=1, day=1)
    # Rebuild from the wall-clock fields so a daylight-saving change in between is accounted for.
    return datetime(local.year, local.month, local.day, tzinfo=tz).astimezone(UTC)


def _amount(word: str) -> float:
    lowered = re.sub(r"\s+", " ", word.lower())
    return float(_NUMBER_WORDS.get(lowered, lowered))


def _unit(word: str) -> timedelta:
    lowered = word.lower()
    return _UNITS["mo" if lowered.startswith("mo") else lowered[0]]


def _tidy(part: str, leading: bool = False) -> str:
    """Drop the joining words left at the cut: trailing ones before the span, leading ones after it."""
    part = part.strip(" ,;:-–—")
    if leading:
        return re.sub(r"^(?:in|for|on|of|about|regarding)\s+", "", part, flags=re.IGNORECASE)
    previous = None
    while previous != part:
        previous, part = part, _DANGLING.sub("", part).strip(" ,;:-–—")
    return part


def _topic(text: str) -> str | None:
    topic = re.sub(r"\s+", " ", text).strip(" ,;:-–—?.!")
    return topic or None
