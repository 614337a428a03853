"""What a question names must be in the evidence its answer rests on, together.

"What did Rishi Sunak say about Itaewon?" is answered only from passages naming both Sunak and Itaewon;
"What is the inflation rate in the UK?" only from passages naming the UK (or Britain), and not by a
sentence about US prices. The names a question gives (people, organisations, places), and the years and
months it names, are its *constraints*:

- :func:`required` reads them from a question.
- :func:`covers` tells whether a passage (its text and its article's title, and for a time its date)
  mentions one, allowing the ways news text names the same thing differently: an acronym for a full name
  and the start of a longer acronym ("UN", "United Nations", "UNAMA"), a title left out or added
  ("President Yoon" / "Yoon Suk-yeol"), a surname alone for a full name (unless the passage names someone
  else of that surname), a possessive ("Sunak's"), case, a demonym ("Afghan" / "Afghanistan") and a few
  country aliases ("UK" / "Britain").
- :func:`check` splits retrieved passages into those that cover every constraint and, per constraint,
  those that cover it alone, so the engine can answer from the first or say that the sources don't cover
  the combination (:func:`gap_reply`).
- :func:`off_subject` finds sentences naming another place or person of the kind asked about and none of
  the constraints ("US core CPI ..." for a UK question): they are not used as evidence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot.answer.extractive import Composer, Sentence, VectorCache, candidates, entities, rank
from bot.answer.results import Citation
from bot.answer.subject import PLACES, kind, names_in, strip_title
from bot.answer.support import TITLES, Span, name_supported
from retrieval.documents import SearchHit

_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
_YEAR = re.compile(r"\b(?:in|during|since|of|from)\s+(?P<year>(?:19|20)\d{2})\b", re.IGNORECASE)
_MONTH = re.compile(r"\b(?:in|during|since|of|from|early|late|mid)[ -](?P<month>" + "|".join(_MONTHS)
                    + r")\b(?:\s+(?P<year>(?:19|20)\d{2}))?", re.IGNORECASE)
# Names news text uses for the same country or body; each line is one group (lower case).
_ALIASES = [
    {"uk", "u.k.", "britain", "british", "united kingdom", "great britain"},
    {"us", "u.s.", "usa", "united states", "america", "american"},
    {"un", "u.n.", "united nations"},
    {"eu", "european union"},
    {"uae", "united arab emirates", "emirati"},
    {"south korea", "south korean", "republic of korea"},
    {"north korea", "north korean", "dprk", "pyongyang"},
    {"russia", "russian", "kremlin", "moscow"},
    {"ukraine", "ukrainian", "kyiv", "kiev"},
    {"china", "chinese", "beijing"},
    {"iran", "iranian", "tehran"},
]
_ARTICLES = frozenset({"the", "a", "an", "mr", "mrs", "ms", "dr"})
# Words that are capitalised in questions without naming anything a passage must repeat.
_NOT_NAMES = frozenset({"i", "covid", "covid-19", "coronavirus", "breaking", "news", "update", "latest"})


@dataclass(frozen=True)
class Constraint:
    """A name, year or month a question gives; ``text`` as the question writes it."""

    text: str
    what: str  # "name" | "year" | "month"
    year: int | None = None
    month: int | None = None

    def __str__(self) -> str:
        return self.text


@dataclass
class Check:
    """Retrieved passages against a question's constraints: those covering all of them (``together``,
    in rank order) and, per constraint, those covering it."""

    constraints: list[Constraint]
    together: list[SearchHit] = field(default_factory=list)
    each: dict[str, list[SearchHit]] = field(default_factory=dict)

    @property
    def combination_missing(self) -> bool:
        """Several constraints, no passage covers them all, and some passage covers one of them."""
        return len(self.constraints) >= 2 and not self.together and any(self.each.values())


def required(question: str) -> list[Constraint]:
    """The names, years and months ``question`` names (titles are part of a name: "President Yoon")."""
    found: list[Constraint] = []
    for name in entities(question):
        name = re.sub(r"['’]s$", "", name).strip()
        if not name or name.lower() in _NOT_NAMES or name.lower() in _MONTHS:
            continue
        if all(w.lower().strip(".") in TITLES for w in name.split()):
            continue  # "the President" alone: a role, not a name
        found.append(Constraint(name, "name"))
    for match in _MONTH.finditer(question):
        year = int(match.group("year")) if match.group("year") else None
        found.append(Constraint(match.group(0).split()[-1] if not year else f"{match.group('month')} {year}",
                                "month", year=year, month=_MONTHS.index(match.group("month").lower()) + 1))
    for match in _YEAR.finditer(question):
        if not any(c.year == int(match.group("year")) for c in found):
            found.append(Constraint(match.group("year"), "year", year=int(match.group("year"))))
    return list({c.text.lower(): c for c in found}.values())


def _aliases(name: str) -> set[str]:
    lowered = name.lower()
    for group in _ALIASES:
        if lowered in group:
            return group
    return set()


def _surname_only(name: str, text: str) -> bool:
    """Whether ``text`` names the person ``name`` by surname (or title and surname) alone, and no one
    else of that surname ("Hunter Biden" is not "Joe Biden")."""
    parts = strip_title(name).split()
    if len(parts) < 2 or kind(name) != "person":
        return False
    surname = parts[-1]
    mentions = list(re.finditer(rf"(?<![\w-]){re.escape(surname)}(?![\w-])", text))
    if not mentions:
        return False
    given = {p.lower() for p in parts[:-1]}
    for match in mentions:
        # "Hunter Biden" for "Joe Biden": another capitalised given name right before the surname.
        before = re.search(r"([A-Z][a-z][\w'’.-]*)[ \t]+$", text[: match.start()])
        word = before.group(1).lower().strip(".") if before else ""
        if word and word not in given | TITLES | _ARTICLES:
            return False
    return True


def covers(constraint: Constraint, hit: SearchHit, text: str | None = None, *, with_title: bool = True) -> bool:
    """Whether the passage (``text`` when given, else the hit's text, with its article's title unless
    ``with_title`` is false) mentions ``constraint``."""
    body = hit.text if text is None else text
    if constraint.what != "name":
        return _covers_time(constraint, hit, body)
    title = (hit.title or "") if with_title else ""
    span = Span(body, (title,))
    name = constraint.text
    if name_supported(name, span):
        return True
    whole = f"{body}\n{title}"
    lowered = whole.lower()
    if any(re.search(rf"(?<![\w.]){re.escape(alias)}(?![\w])", lowered) for alias in _aliases(name)):
        return True
    return _surname_only(name, whole)


def _covers_time(constraint: Constraint, hit: SearchHit, body: str) -> bool:
    published = hit.published or ""
    text = f"{body}\n{hit.title or ''}".lower()
    if constraint.what == "year":
        return str(constraint.year) in text or published.startswith(str(constraint.year))
    month = _MONTHS[(constraint.month or 1) - 1]
    in_text = month in text and (constraint.year is None or str(constraint.year) in text)
    dated = len(published) >= 7 and int(published[5:7]) == constraint.month and (
        constraint.year is None or published.startswith(str(constraint.year)))
    return in_text or dated


def country(constraint: Constraint) -> bool:
    """Whether the constraint is a country or region ("UK", "the US", "Kenya"): news about a country often
    names it once, so the whole article is read for it, not one passage."""
    return constraint.what == "name" and constraint.text.lower().removeprefix("the ") in PLACES


def check(question: str, hits: Sequence[SearchHit], article: Callable[[str], str] | None = None) -> Check:
    """``hits`` against the constraints of ``question`` (no constraints: every hit is ``together``). A
    country, or the one name a question gives, may be named anywhere in the passage's article (``article``:
    doc id -> its text): a passage of an article about the IRS that says "the agency" is about the IRS.
    Several names must be in the passage itself, together."""
    constraints = required(question)
    result = Check(constraints)
    if not constraints:
        result.together = list(hits)
        return result
    texts: dict[str, str] = {}

    def covered(constraint: Constraint, hit: SearchHit) -> bool:
        if covers(constraint, hit):
            return True
        if article is None or not (country(constraint) or len(constraints) == 1):
            return False
        if hit.doc_id not in texts:
            texts[hit.doc_id] = article(hit.doc_id)
        return covers(constraint, hit, texts[hit.doc_id])

    for constraint in constraints:
        result.each[constraint.text] = [h for h in hits if covered(constraint, h)]
    result.together = [h for h in hits if all(h in result.each[c.text] for c in constraints)]
    return result


def off_subject(question: str, sentences: Sequence[Sentence]) -> set[int]:
    """Indices of ``sentences`` that name another person or another country than the question names, and
    none of its names: a sentence about US prices for a question about the UK, Biden's words for a
    question about Yoon. Only names read with confidence count (a title or "said" for a person; a
    country for a place), so a sentence about New Jersey is not taken for another country than the US."""
    constraints = [c for c in required(question) if c.what == "name"]
    asked = {k for c in constraints if (k := _confident(c.text, question, question=True))}
    if not asked:
        return set()
    asked_words = {w.lower() for c in constraints for w in re.findall(r"\w+", strip_title(c.text))}
    out: set[int] = set()
    for i, sentence in enumerate(sentences):
        text = sentence.text
        if any(covers(c, sentence.hit, text, with_title=False) for c in constraints):
            continue
        others = [n for n in names_in(text) if not {w.lower() for w in re.findall(r"\w+", n)} & asked_words]
        if any(_confident(n, text) in asked for n in others):
            out.add(i)
    return out


def _confident(name: str, text: str, *, question: bool = False) -> str | None:
    """"place" for a country or region, "person" for a name with a title before it or "said" after it (or,
    in a ``question``, a full name), else None."""
    bare = re.sub(r"['’]s$", "", name).strip()
    if bare.lower().removeprefix("the ") in PLACES:
        return "place"
    found = kind(bare, text)
    if found != "person":
        return None
    if len(strip_title(bare).split()) >= 2 and bare.split()[0].lower() in TITLES:
        return "person"
    escaped = re.escape(strip_title(bare))
    titled = re.search(rf"\b[A-Z][a-z]+\.?\s+{escaped}\b", text) and any(
        m.lower().strip(".") in TITLES for m in re.findall(rf"\b([A-Z][a-z]+)\.?\s+{escaped}\b", text))
    said = re.search(rf"{escaped}(?:,[^,]{{0,60}},)?\s+(?:said|says|told|added)\b", text)
    # A question names people as "What did Rishi Sunak say": a full name there is enough.
    return "person" if titled or said or (question and len(bare.split()) >= 2) else None


def describe(constraints: Sequence[Constraint]) -> str:
    """"Rishi Sunak and Itaewon", "A, B and C"."""
    texts = [c.text for c in constraints]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + f" and {texts[-1]}"


def gap_answer(question: str, result: Check, vectors: VectorCache) -> tuple[str, list[Citation]]:
    """The reply when no passage covers the question's constraints together: it says so plainly, then,
    per constraint, the most relevant sentence naming it (cited), or that nothing does."""
    composer = Composer()
    lines = [f"The ingested articles don't cover {describe(result.constraints)} together. "
             "What they say about each:"]
    for constraint in result.constraints:
        hits = result.each.get(constraint.text) or []
        pool = candidates(hits)
        named = [s for s in pool if covers(constraint, s.hit, s.text, with_title=False)] or pool
        if not named:
            lines.append(f"• {constraint.text}: no ingested article mentions it.")
            continue
        # The question without the other constraints ranks what is said about this one.
        alone = question
        for other in result.constraints:
            if other is not constraint:
                alone = re.sub(re.escape(other.text), " ", alone, flags=re.IGNORECASE)
        ranked = rank(" ".join(alone.split()), named, vectors)
        best = named[0]
        if ranked.sentences:
            best = ranked.sentences[max(range(len(ranked.sentences)), key=lambda i: ranked.relevance[i])]
        lines.append(f"• {constraint.text}: {composer.cite(best)}")
    return "\n".join(lines), composer.citations
