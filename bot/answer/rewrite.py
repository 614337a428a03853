"""Reading a message as a search: its time window, whether it asks for a summary, and follow-ups.

- A time phrase ("in the last 24 hours", "past 3 days", "since yesterday", "today", "this week") becomes a
  date window relative to the engine's clock and is taken out of the query, as are requests about the
  form of the answer ("with sources"): no article contains them.
- "Summarize ...", "What happened in ...", "What's the situation in ...", "Give me an update on ..." ask
  for a summary; :func:`summary_topic` says of what.
- Only follow-ups are rewritten: short messages, messages that start like a continuation ("and ...",
  "what about ...") or that lean on pronouns ("they", "there"). With a language model the rewrite prompt
  resolves the references; without one (or if it fails) a heuristic carries the previous question's names
  and places over, or, for "what about X?", asks the previous question again about X. A follow-up that
  names a subject of its own ("and what did NATO say?") is searched on its own first, so the previous
  question's words don't drown the new subject.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from bot.answer.citations import strip_markers
from bot.answer.extractive import entities
from bot.answer.prompts import render
from bot.answer.subject import Context, bare_say, context_of, refers_back, resolve
from bot.answer.words import NUMBER_WORDS, terms
from bot.errors import LLMError

if TYPE_CHECKING:
    from bot.answer.results import Turn

log = logging.getLogger(__name__)

_CONTINUATION = re.compile(
    r"^\s*(?:and|also|but|so|then|plus|what about|how about|what else|anything else|same for|and what about)\b",
    re.IGNORECASE,
)
_SWAP = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+(?P<subject>.+?)\s*[?.!]*\s*$", re.IGNORECASE)
_PRONOUNS = frozenset(
    {"it", "its", "they", "them", "their", "theirs", "he", "him", "his", "she", "her", "there", "that", "those",
     "these", "this"}
)
_SHORT = 4  # words: "and NATO?", "why?", "how many?"
_AMOUNTS = {"a": 1, "an": 1, "couple of": 2, "few": 3, **NUMBER_WORDS}
_UNITS = {"m": "minute", "h": "hour", "d": "day", "w": "week"}
_UNIT_LENGTH = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1),
                "week": timedelta(weeks=1), "month": timedelta(days=30)}
# "(in) the last 24 hours", "past 3 days", "last week", "(since) yesterday", "so far today", "this week".
_WINDOW = re.compile(
    r"(?:\b(?:in|over|during|within|for|from)\s+)?(?:\bthe\s+)?\b(?P<last>last|past|previous)\s+"
    rf"(?:(?P<amount>\d+|{'|'.join(sorted(_AMOUNTS, key=len, reverse=True))})\s*)?"
    r"(?P<unit>mo(?:nth)?s?|m(?:in(?:ute)?s?)?|h(?:(?:ou)?rs?)?|d(?:ays?)?|w(?:(?:ee)?ks?)?)\b"
    r"|(?:\b(?P<since>since)\s+)?\b(?:so\s+far\s+)?"
    r"(?P<day>today|tonight|yesterday|this\s+(?:morning|afternoon|evening))(?:['’]s)?\b"
    r"|\bthis\s+(?P<this>week|month)\b",
    re.IGNORECASE,
)
# Requests about the form of the answer, not its subject.
_FORM = re.compile(r",?\s*\b(?:(?:with|and|including)\s+(?:the\s+)?(?:sources?|citations?|links?|references?)"
                   r"|please)\b", re.IGNORECASE)
_SUMMARY = re.compile(
    r"^\s*(?:(?:can|could|would)\s+you\s+)?(?:please\s+)?(?:"
    r"summari[sz]e|sum\s+up|recap|brief\s+me|catch\s+me\s+up"
    r"|(?:(?:give|send|show|get)\s+(?:me|us)\s+)?(?:an?\s+|the\s+)?(?:quick\s+|short\s+|brief\s+)?"
    r"(?:overview|update|briefing|summary|recap|rundown|round-?up|sitrep)"
    r"|(?P<what>what(?:'s|’s|\s+is)\s+(?:the\s+)?(?:latest|situation|state\s+of\s+play)"
    r"|what(?:'s|’s|\s+is|\s+has)?\s+(?:been\s+)?(?:happened|happening|going\s+on))"
    r")(?P<rest>\s.*|[?.!\s]*)$",
    re.IGNORECASE | re.DOTALL,
)
# "What happened in X", "what's the latest on X" ask about X; "what happened at the hospital / to the pilots",
# "what is the latest death toll" are questions.
_WHAT_ABOUT = re.compile(r"\s*(?:in|inside|around|across|near|on|over|with|from|about|regarding|for)\b",
                         re.IGNORECASE)
_TOPIC_FILLER = re.compile(
    r"^(?:\s*\b(?:of|on|about|in|inside|around|across|near|over|with|for|from|regarding|me|us"
    r"|(?:the\s+)?(?:situation|latest|news|state\s+of\s+play))\b)+",
    re.IGNORECASE,
)
_HISTORY_TURNS = 6
_MAX_REWRITE_CHARS = 500


@dataclass(frozen=True)
class Window:
    """A date window named in a question; ``label`` is how messages describe it ("in the last 24 hours")."""

    since: datetime
    until: datetime | None
    label: str


class Completer(Protocol):
    def complete(self, messages: Sequence[dict[str, str]], *, max_tokens: int = ...) -> str: ...


def parse_question(question: str, now: datetime) -> tuple[str, Window | None]:
    """``question`` as a search query, without its time phrase or requests about the answer's form, and the
    window its time phrase names (relative to ``now``; days start at midnight UTC)."""
    window = None
    for match in _WINDOW.finditer(question):
        window = _window(match, now)
        if window:
            question = question[: match.start()] + " " + question[match.end() :]
            break
    question = _FORM.sub(" ", question)
    return re.sub(r"\s+([?.!,;:])", r"\1", " ".join(question.split())).strip(" ,;:"), window


def _window(match: re.Match[str], now: datetime) -> Window | None:
    """The window a phrase names; None for "the last days of the talks" (a plural with no number) and for
    a span longer than the calendar (no window at all)."""
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if match.group("day"):
        day = " ".join(match.group("day").lower().split())
        label = f"since {day}" if match.group("since") else day
        if day != "yesterday":
            return Window(midnight, None, label)
        return Window(midnight - timedelta(days=1), None if match.group("since") else midnight, label)
    if match.group("this"):
        this = match.group("this").lower()
        start = midnight - timedelta(days=midnight.weekday()) if this == "week" else midnight.replace(day=1)
        return Window(start, None, f"this {this}")
    unit_text = match.group("unit").lower()
    amount_text = " ".join((match.group("amount") or "").lower().split())
    if not amount_text and len(unit_text) > 1 and unit_text.endswith("s"):
        return None
    unit = "month" if unit_text.startswith("mo") else _UNITS[unit_text[0]]
    amount = int(amount_text) if amount_text.isdigit() else _AMOUNTS.get(amount_text, 1)
    shown = f"{amount_text} {unit}s" if amount != 1 else unit
    try:
        since = now - amount * _UNIT_LENGTH[unit]
    except OverflowError:
        return None
    return Window(since, None, f"in the {match.group('last').lower()} {shown}")


def summary_topic(question: str) -> str | None:
    """What a request for a summary is about ("Summarize the situation in Helmand" -> "Helmand"; "" for
    everything), or None when ``question`` is not one."""
    match = _SUMMARY.match(question)
    if not match:
        return None
    rest = match.group("rest")
    if match.group("what") and rest.strip(" ?.!") and not _WHAT_ABOUT.match(rest):
        return None
    return _TOPIC_FILLER.sub("", rest).strip(" ?.!,;:")


def is_followup(question: str) -> bool:
    """Whether ``question`` probably depends on the conversation before it."""
    words = re.findall(r"[\w'’]+", question.lower())
    return len(words) <= _SHORT or bool(_CONTINUATION.match(question)) or any(w in _PRONOUNS for w in words)


def heuristic_rewrite(question: str, previous: str) -> str:
    """Standalone form of ``question`` given the previous (standalone) question, without a model."""
    swap = _SWAP.match(question)
    if swap:
        subject = swap.group("subject")
        names = entities(previous)
        if names:
            return previous.replace(names[-1], subject)
        return f"{previous.rstrip(' ?.!')} — {subject}?"
    present = terms(question)
    carried = [e for e in entities(previous) if not terms(e) <= present]
    if not carried:
        carried = [w for w in re.findall(r"[\w'’-]+", previous) if terms(w) and not terms(w) <= present][:6]
    core = _CONTINUATION.sub("", question, count=1).strip(" ,") or question
    if not carried:
        return core
    return f"{core.rstrip(' ?.!')} ({' '.join(carried)})?"


def search_queries(question: str, history: Sequence[Turn], llm: Completer | None = None) -> list[str]:
    """The queries to try in turn until one can be answered (see :func:`read_followup`); a follow-up that
    can't be resolved is searched as it stands."""
    return read_followup(question, history, llm)[0] or [question]


def read_followup(question: str, history: Sequence[Turn], llm: Completer | None = None,
                  lookup: Callable[[str], str] | None = None) -> tuple[list[str], str | None]:
    """The queries to try in turn for ``question`` and, when it is a follow-up that can't be resolved
    (two people "he" may be, nobody at all), the question to ask back instead (and no queries).

    Follow-ups are resolved against the conversation's subject by rules (:mod:`bot.answer.subject`); with a
    model, its rewrite is tried first and the rules' reading after it. A follow-up naming a subject of
    its own ("and what did NATO say?") is searched alone first, then with the conversation's words.
    ``lookup`` (a query -> text of the most relevant passages) lets the rules find who holds a title in the
    story ("the president") or whether a name is a "he" or a "she" when the conversation doesn't say."""
    user_turns = [t.text for t in history if t.role == "user"]
    if not user_turns:
        first = resolve(question, None)
        return ([question], None) if first.query else ([], first.clarify)
    if not is_followup(question) and not refers_back(question) and not bare_say(question):
        return [question], None
    context = context_of(history, _standalone, lookup)
    assert context is not None  # there is a user turn
    resolution = resolve(question, context)
    if resolution.query is None:
        return [], resolution.clarify
    resolved = resolution.query != question
    if llm is not None:
        rewritten = _model_rewrite(question, history, llm)
        if rewritten:
            return list(dict.fromkeys([rewritten, resolution.query] if resolved else [rewritten])), None
    if resolved:
        return [resolution.query], None
    rewritten = heuristic_rewrite(question, context.previous)
    own = _own_subject(question, context.previous)
    return [own, rewritten] if own else [rewritten], None


def _standalone(question: str, context: Context | None) -> str:
    """An earlier question of the conversation as it was searched: resolved by the rules, else, for a
    follow-up, with the words of the question before it carried over."""
    if context is None:
        return question
    resolved = resolve(question, context).query or question
    if resolved == question and (is_followup(question) or bare_say(question)):
        return heuristic_rewrite(question, context.previous)
    return resolved


def _own_subject(question: str, previous: str) -> str | None:
    """The follow-up without its lead-in ("what did NATO say?") when it names something the previous
    question did not; None for "what about X?", which asks the previous question again."""
    if _SWAP.match(question):
        return None
    known = terms(previous)
    if all(terms(name) <= known for name in entities(question)):
        return None
    return _CONTINUATION.sub("", question, count=1).strip(" ,") or question


def _model_rewrite(question: str, history: Sequence[Turn], llm: Completer) -> str | None:
    lines = []
    for turn in history[-_HISTORY_TURNS:]:
        text = strip_markers(turn.text) if turn.role == "assistant" else turn.text
        lines.append(f"{turn.role}: {' '.join(text.split())[:400]}")
    prompt = render("rewrite", history="\n".join(lines), question=question)
    try:
        reply = llm.complete([{"role": "user", "content": prompt}], max_tokens=120)
    except LLMError as exc:
        log.warning("rewrite.llm_failed error=%s", exc)
        return None
    first = next((line.strip().strip("\"'“”") for line in reply.splitlines() if line.strip()), "")
    if not first or len(first) > _MAX_REWRITE_CHARS:
        return None
    return first
