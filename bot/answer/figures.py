"""Figures for "how many / latest / death toll" questions: the exact ones, newest first, each dated.

A toll grows over days and outlets round it ("more than 150"), so the sentence that reads best for a
question is often not the latest figure. For a question that asks for a count (:func:`target_of`), every
retrieved passage that names what the question names is searched for figures of the kind asked: the count
of the event asked about (killed, injured, displaced, …), of the thing asked about ("how many hot dogs"),
a percentage or a sum of money. Exact figures are listed newest first, each with its outlet and date;
earlier or conflicting ones follow ("156 (CNN, 1 Nov 2022) [1]; 154 earlier (CNN, 31 Oct 2022) [2]"), and
vague ones ("more than 150") only when there is no exact one. The line quotes the sentences it comes from
verbatim, so it is verified by construction in both answer modes. It follows the answer, so a streamed
answer keeps streaming.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from bot.answer.context import looks_like_injection
from bot.answer.extractive import missing_entities
from bot.answer.results import Answer, Citation, article_key, citation_key
from bot.answer.words import NUMBER_WORDS, concepts, stem
from bot.render.slack import format_date
from retrieval.documents import SearchHit
from retrieval.text import sentence_spans

MAX_FIGURES = 4

# What an event question asks about: the words that name it in a question and in a report.
_EVENTS: dict[str, tuple[str, ...]] = {
    "killed": ("killed", "kill", "killing", "kills", "dead", "died", "die", "dies", "death", "deaths", "toll",
               "lives", "fatalities", "victims"),
    "injured": ("injured", "injuries", "injuring", "wounded", "wounding", "hurt", "hospitalised", "hospitalized"),
    "displaced": ("displaced", "fled", "flee", "fleeing", "evacuated", "homeless", "displacement", "evacuees"),
    "missing": ("missing", "unaccounted"),
    "arrested": ("arrested", "detained", "arrests", "detentions", "arrest", "detain"),
    "casualties": ("casualties",),
}
_QUESTION_EVENT = re.compile(
    r"\b(?P<killed>death toll|toll|died|dead|deaths?|killed|fatalities|lives)\b|\b(?P<injured>injured|"
    r"injuries|wounded|hurt)\b|\b(?P<displaced>displaced|fled|evacuated|homeless)\b|\b(?P<missing>missing)\b|"
    r"\b(?P<arrested>arrested|detained|arrests)\b|\b(?P<casualties>casualties)\b", re.IGNORECASE)
_FIGURE_QUESTION = re.compile(
    r"\bhow (?:many|much)\b|\bnumber of\b|\btoll\b|\bcasualties\b|\bwhat (?:percentage|percent|share)\b|"
    r"\b(?:latest|current|new|final|official) (?:figure|count|number|total|toll)\b|\bmagnitude\b",
    re.IGNORECASE)
_HOW_MANY = re.compile(r"\bhow many\s+(?P<noun>(?:[\w’'-]+\s+){0,2}?[\w’'-]+?)(?=\s+(?:did|do|does|have|has|had|"
                       r"were|was|are|is|will|would|could|can|in|of|at|on|for|from|by|to|after|during)\b|[?,.]|$)",
                       re.IGNORECASE)
_PEOPLE = frozenset("people persons person individuals residents civilians victims dead bodies lives".split())
_COUNTED = frozenset("people children women men soldiers troops police officers civilians fans workers migrants "
                     "students families households residents passengers others".split())
_VAGUE = re.compile(r"(?:more than|over|nearly|almost|about|around|roughly|approximately|some|up to|close to|"
                    r"fewer than|less than|under|an estimated|estimated|as many as|upwards of|in excess of)\s+$",
                    re.IGNORECASE)
_FLOOR = re.compile(r"at least\s+$", re.IGNORECASE)
_WORDS = "|".join(sorted(NUMBER_WORDS, key=len, reverse=True))
_NUM = (rf"(?:\$|£|€)?(?:\d{{1,3}}(?:,\d{{3}})+|\d+(?:\.\d+)?|{_WORDS}|thirty|forty|fifty|sixty|seventy|eighty|"
        rf"ninety|a hundred|dozens|hundreds|thousands)(?:\s+(?:million|billion|trillion|thousand|hundred))?"
        rf"(?:\s*(?:%|percent|per cent))?")
_NUMBER = re.compile(rf"(?<![\w$£€.,-]){_NUM}(?![\w])", re.IGNORECASE)
_RANGE = re.compile(rf"(?<![\w$£€.,-])(?:between\s+{_NUM}\s+and\s+{_NUM}|{_NUM}\s*(?:to|-|–)\s*{_NUM})(?![\w])",
                    re.IGNORECASE)
_TENS = {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12, "hundred": 1e2}
# "the death toll climbed to 154", "the number of dead had risen to 44": the figure follows the event noun.
_TOLL = re.compile(r"\b(?:toll|number of (?:dead|deaths|victims|people killed|fatalities|injured|wounded|"
                   r"displaced|missing)|(?:dead|deaths|fatalities|injured|wounded|displaced|casualties) "
                   r"(?:count|total|figure|number))\b[^.;:]{0,60}?\b(?:to|at|of|reached|is|was|hit|stands at|"
                   r"stood at)\s+$", re.IGNORECASE)
_VERB_BEFORE = re.compile(r"\b(?:killing|killed|kills|left|leaving|injuring|injured|wounding|wounded|displacing|"
                          r"displaced|claimed the lives of|claiming the lives of|arrested|detained)\s+"
                          r"(?:(?:at least|more than|nearly|about|some|around|over|up to)\s+)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Target:
    """What a figure question asks for: an event's count, a thing's count, a percentage, money or a magnitude."""

    kind: str  # "event" | "count" | "percent" | "money" | "magnitude"
    event: str = ""  # for "event": a key of _EVENTS
    nouns: frozenset[str] = frozenset()  # stems of what is counted ("hot dog" → {"hot", "dog"}); people: empty


@dataclass(frozen=True)
class Figure:
    """A figure as written ("at least 154"), its value, whether it is exact, and the sentence it is in."""

    text: str
    value: float
    exact: bool
    hit: SearchHit
    sentence: str

    @property
    def published(self) -> str:
        return self.hit.published or ""


def target_of(question: str) -> Target | None:
    """The figure a question asks for, or None when it asks for none."""
    if not _FIGURE_QUESTION.search(question) and not re.search(r"\blatest\b.*\b(?:toll|dead|killed|injured|"
                                                               r"displaced|casualties)\b", question, re.I):
        return None
    lowered = question.lower()
    if re.search(r"\bwhat (?:percentage|percent|share)\b|\bper ?cent\b", lowered):
        return Target("percent")
    if "magnitude" in lowered:
        return Target("magnitude")
    if re.search(r"\bhow much\b", lowered) and not _QUESTION_EVENT.search(question):
        return Target("money")
    event = _QUESTION_EVENT.search(question)
    noun_match = _HOW_MANY.search(question)
    noun_words = [w for w in re.findall(r"[\w’'-]+", noun_match.group("noun").lower())] if noun_match else []
    if event:
        kind = next(name for name, value in event.groupdict().items() if value)
        named = {w for words in _EVENTS.values() for w in words}  # "how many casualties": people
        people = not noun_words or any(w in _PEOPLE or w in named for w in noun_words)
        return Target("event", kind, frozenset() if people else frozenset(stem(w) for w in noun_words))
    if noun_words:
        return Target("count", nouns=frozenset(stem(w) for w in noun_words))
    return None


def _value(text: str) -> float | None:
    words = text.lower().replace(",", "").replace("$", "").replace("£", "").replace("€", "")
    words = re.sub(r"\s*(?:%|percent|per cent)$", "", words).split()
    if not words:
        return None
    head = words[0]
    if head in ("dozens", "hundreds", "thousands", "a"):
        return None  # no number at all: "hundreds of people" is never a figure to compare
    number = float(NUMBER_WORDS.get(head, _TENS.get(head, -1)))
    if number < 0:
        try:
            number = float(head)
        except ValueError:
            return None
    for word in words[1:]:
        number *= _SCALE.get(word, 1)
    return number


def _matches(target: Target, sentence: str, start: int, end: int, text: str) -> bool:
    """Whether the number at ``sentence[start:end]`` is the kind of figure ``target`` asks for."""
    before, after = sentence[:start], sentence[end:]
    after_words = [w.lower() for w in re.findall(r"[A-Za-z’'-]+", after)[:3]]
    if target.kind == "percent":
        return bool(re.search(r"(?:%|percent|per cent)$", text, re.I))
    if target.kind == "money":
        return text[:1] in "$£€" or bool(re.match(r"\s*(?:dollars|pounds|euros)\b", after, re.I))
    if target.kind == "magnitude":
        return bool(re.search(r"magnitude(?: of)?\s+$", before, re.I) or re.match(r"[- ]magnitude\b", after, re.I))
    if re.search(r"(?:%|percent|per cent)$", text, re.I) or text[:1] in "$£€":
        return False
    if after_words[:1] == ["more"]:
        return False  # "three more bodies": an increment, not a total
    if target.kind == "count":
        return any(stem(w) in target.nouns for w in after_words[:3])
    # an event's count: "154 people were killed", "killing 38 people", "the death toll climbed to 41",
    # "the 44 victims", "60 people were injured"
    words = _EVENTS[target.event] + (_EVENTS["killed"] + _EVENTS["injured"] if target.event == "casualties" else ())
    if target.nouns and not any(stem(w) in target.nouns for w in after_words[:3]):
        return False
    if any(w in words for w in after_words[:3]):
        return True
    if toll := _TOLL.search(before):  # "the death toll climbed to 41"
        return any(w in toll.group(0).lower() for w in words)
    if verb := _VERB_BEFORE.search(before):  # "killing 38 people"
        said = verb.group(0).lower()
        return any(w in said.split() for w in words) or (target.event == "killed" and "lives" in said)
    # "60 people were injured": a count of people, the event within a few words after it
    counted = bool(after_words) and (after_words[0] in _PEOPLE or after_words[0] in _COUNTED)
    tail = " ".join(re.findall(r"[A-Za-z’'-]+", after)[:8]).lower()
    return counted and bool(re.match(rf"(?:\w+\s+){{0,4}}?(?:were|was|have been|had been|are|been|being)?\s*"
                                     rf"(?:{'|'.join(words)})\b", tail))


def find_figures(question: str, target: Target, hits: Sequence[SearchHit]) -> list[Figure]:
    """Figures of the asked kind in passages that name what the question names, newest first."""
    found: list[Figure] = []
    seen: set[tuple[str, str]] = set()
    topic = _topic(question)
    for hit in hits:
        if missing_entities(question, [hit]):
            continue  # a passage about another place or person: its figures answer another question
        if topic and len(topic & concepts(f"{hit.title}\n{hit.text}", broader=True)) * 2 < len(topic):
            continue  # a passage about another event ("helicopters crashed" asked; a bazaar fire given)
        if looks_like_injection(hit.text):
            continue  # a passage addressed to the assistant gives no figures
        for start, end in sentence_spans(hit.text):
            sentence = hit.text[start:end]
            ranges = [m.span() for m in _RANGE.finditer(sentence)]
            for match in _NUMBER.finditer(sentence):
                text = match.group(0)
                inside = next(((a, b) for a, b in ranges if a <= match.start() < b), None)
                if inside is not None:  # "between eight and fifteen": one vague figure, read at its end
                    if match.end() != inside[1]:
                        continue
                    text = sentence[inside[0]:inside[1]]
                value = _value(text.split()[-1]) if inside else _value(text)
                if value is None or (target.kind in ("event", "count") and _year_like(text, sentence, match.end())):
                    continue
                if not _matches(target, sentence, match.start(), match.end(), text):
                    continue
                before = sentence[: inside[0] if inside else match.start()]
                vague = bool(_VAGUE.search(before[-30:])) or inside is not None
                floor = bool(_FLOOR.search(before[-12:]))
                shown = ("at least " if floor else "") + text
                qualifier = _VAGUE.search(before[-30:])
                if qualifier:
                    shown = qualifier.group(0).strip() + " " + text
                key = (article_key(hit), shown.lower())
                if key in seen:
                    continue
                seen.add(key)
                found.append(Figure(shown, value, not vague, hit, sentence))
    return sorted(found, key=lambda f: _when(f.published), reverse=True)


def _topic(question: str) -> set[str]:
    """What the question is about, without the words that ask for a figure: "How many people died when the
    helicopters crashed?" → {helicopter, crash}."""
    asking = concepts("how many much number figure figures latest current new final official total count toll "
                      "people persons died dead death deaths killed injured wounded displaced missing arrested "
                      "casualties victims percentage percent share magnitude there where when what")
    return concepts(question) - asking


def _year_like(text: str, sentence: str, end: int) -> bool:
    """2022 in "in 2022" is a year, not a count."""
    return bool(re.fullmatch(r"(?:19|20)\d\d", text)) and not re.match(r"\s+(?:people|[a-z]+s)\b", sentence[end:])


def _when(published: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(published.replace("Z", "+00:00")) if published else None
    except ValueError:
        parsed = None
    return (parsed or datetime.min).replace(tzinfo=None)


def chosen(figures: Sequence[Figure]) -> list[Figure]:
    """The figures to show: exact ones when there are any (else the vague ones), one per value (its newest
    report), newest first, at most ``MAX_FIGURES``."""
    pool = [f for f in figures if f.exact] or list(figures)
    out: list[Figure] = []
    values: set[float] = set()
    for figure in pool:  # newest first
        if figure.value in values:
            continue
        values.add(figure.value)
        out.append(figure)
    return out[:MAX_FIGURES]


def figures_line(question: str, hits: Sequence[SearchHit]) -> tuple[str, list[Figure]]:
    """``Latest figure: 156 (CNN, 1 Nov 2022) [n]; 154 earlier (CNN, 31 Oct 2022) [n].`` with markers as
    ``{n}`` placeholders filled by :func:`with_figures`, and the figures shown; empty when the question asks
    for no figure or the passages give none."""
    target = target_of(question)
    if target is None:
        return "", []
    shown = chosen(find_figures(question, target, hits))
    if not shown:
        return "", []
    parts = []
    for i, figure in enumerate(shown):
        when = format_date(figure.hit.published)
        if figure.hit.date_source == "ingested":
            when = f"date unknown, ingested {when}"
        outlet = figure.hit.source or "unknown outlet"
        relation = ""
        if i > 0:
            same_day = figure.published[:10] == shown[0].published[:10]
            relation = " also reported" if same_day else " earlier"
        parts.append(f"{figure.text}{relation} ({outlet}, {when}) {{{i}}}")
    label = "Latest figure" if len(shown) == 1 else "Latest figures, newest first"
    return f"{label}: " + "; ".join(parts) + ".", shown


def with_figures(answer: Answer, question: str, hits: Sequence[SearchHit]) -> Answer:
    """``answer`` followed by its figures line (see :func:`figures_line`): an article the answer cites keeps
    its number, a new one is numbered after the answer's. An abstention, or a question that asks for no
    figure, is left as it is. The line goes last so that a streamed answer is never taken back."""
    if answer.abstained:
        return answer
    line, shown = figures_line(question, hits)
    if not line or all(figure.text.lower() in answer.answer.lower() for figure in shown):
        return answer  # the answer gives these figures already
    citations = list(answer.citations)
    for i, figure in enumerate(shown):
        cited = Citation.from_hit(0, figure.hit, figure.sentence)
        known = next((j for j, c in enumerate(citations) if citation_key(c) == citation_key(cited)), None)
        if known is None:
            citations.append(cited.renumbered(len(citations) + 1))
            n = len(citations)
        else:
            citations[known] = citations[known].merged(cited)
            n = citations[known].n
        line = line.replace(f"{{{i}}}", f"[{n}]")
    newest = max((c.published for c in citations if c.published), default=answer.as_of)
    return replace(answer, answer=f"{answer.answer}\n{line}", citations=citations, as_of=newest)
