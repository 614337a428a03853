"""Whether an answer sentence says only what the passages it cites say.

A model's sentence is shown only if it passes :func:`check`:

1. **Figures.** Every number in it (digits or words: "nine" = 9, "2.9 million" = 2,900,000, "60%" = 60,
   "15th" = 15) occurs in a cited passage, or is the day or year of a cited article's date.
2. **Names.** Every named person, place, organisation or other capitalised name occurs in a cited
   passage or title, allowing the spellings news uses for one thing: an acronym for its full name
   ("UN" / "United Nations", "UNAMA" / "United Nations Assistance Mission in Afghanistan"), the start of
   an acronym ("UN" / "UNAMA"), a demonym ("Afghan" / "Afghanistan"), a title left out ("President
   Ghani" / "Ghani"), one typo in a long name.
3. **Content.** Most of its other content words (stems; inflections and everyday synonyms merged, words
   the question used not counted) occur within a few consecutive sentences of one cited passage: a
   paraphrase passes, an invented claim with borrowed names does not.
4. **Polarity.** It does not negate what the best-matching sentence says, nor drop that sentence's "not".

What it does not check: that names and figures stand in the same relation as in the source ("A killed
B" from "B killed A" passes), or that a paraphrase keeps hedges ("may", "reportedly"). docs/security.md
says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from bot.words import CONCEPT, NUMBER_WORDS, STOPWORDS, concepts, stem, terms
from retrieval.text import sentence_spans

WINDOW = 3  # consecutive source sentences a claim's content words are looked for in
MIN_CONTENT = 0.6  # share of a claim's content words the best window must hold

_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
         "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000,
           "trillion": 1_000_000_000_000}
_ORDINALS = {
    w: i for i, w in enumerate((
        "zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
        "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth",
        "nineteenth", "twentieth",
    ))
}
_WORD_VALUES = {**NUMBER_WORDS, **_TENS, "dozen": 12}
# "one" is a pronoun as often as a figure ("one of the largest"): it is not checked.
_UNCHECKED_WORDS = frozenset({"one", "first", "second", "zero", "zeroth"})
_TOKEN = re.compile(r"\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th)?|[a-z]+", re.IGNORECASE)
_NEGATION = frozenset({"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot"})
_NEGATED_VERB = re.compile(r"\b(?:not|never|n['’]t)\s+(?:\w+ly\s+)?(?:been\s+|be\s+|yet\s+)?(\w+)", re.IGNORECASE)
# Titles that come and go in front of a name ("President Ghani", "Ghani").
TITLES = frozenset(
    "president vice prime minister ministers secretary general governor spokesman spokeswoman spokesperson "
    "chief king queen prince princess senator sen rep representative mr mrs ms dr judge justice mayor "
    "commander director chairman chairwoman chair ceo pope sheikh mullah deputy foreign interior defence "
    "defense acting former state sir lord lady gen col lt capt sgt officer ambassador envoy leader head".split()
)
_NAME_WORD = r"[A-Z](?:[\w'’&-]|\.(?=\w))*"
_NAME_RUN = re.compile(rf"{_NAME_WORD}(?:[ \t]+{_NAME_WORD})*")
_ACRONYM = re.compile(r"^[A-Z][A-Z0-9&]{1,7}s?$")
_MARKERS = re.compile(r"\[[^\]\n]{0,40}\]")
_CALENDAR_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")


@dataclass(frozen=True)
class Verdict:
    """Whether a claim is supported, and if not, why (for logs and the benchmark's error analysis)."""

    supported: bool
    reason: str = ""


def number_values(text: str) -> set[float]:
    """The numbers in ``text`` as values: digits ("1,000", "5.9", "15th"), number words ("nine",
    "twenty-five", "two hundred"), scales ("2.9 million"). Lone "one"/"first" are left out."""
    values: set[float] = set()
    tokens = [t.lower() for t in _TOKEN.findall(text.replace("-", " "))]
    i = 0
    while i < len(tokens):
        value, i = _read_number(tokens, i)
        if value is not None:
            values.add(round(value, 6))
    return values


def _read_number(tokens: list[str], i: int) -> tuple[float | None, int]:
    """The number starting at ``tokens[i]`` (or None) and the index after it."""
    token = tokens[i]
    if token[0].isdigit():
        digits_only = re.sub(r"(st|nd|rd|th)$", "", token).replace(",", "")
        try:
            value = float(digits_only)
        except ValueError:
            return None, i + 1
        i += 1
        while i < len(tokens) and tokens[i] in _SCALES:
            value *= _SCALES[tokens[i]]
            i += 1
        return value, i
    if token in _ORDINALS:
        return (None if token in _UNCHECKED_WORDS else float(_ORDINALS[token])), i + 1
    if token not in _WORD_VALUES and token not in _SCALES:
        return None, i + 1
    start, total, current = i, 0.0, 0.0
    while i < len(tokens) and (tokens[i] in _WORD_VALUES or tokens[i] in _SCALES or tokens[i] == "and"):
        word = tokens[i]
        if word == "and":  # "two hundred and five", not "eight and fifteen"
            if i + 1 < len(tokens) and tokens[i + 1] in _WORD_VALUES and tokens[i - 1] in _SCALES:
                i += 1
                continue
            break
        if word in _SCALES:
            current = (current or 1.0) * _SCALES[word]
            if _SCALES[word] >= 1000:
                total, current = total + current, 0.0
        else:
            current += _WORD_VALUES[word]
        i += 1
    if i - start == 1 and tokens[start] in _UNCHECKED_WORDS:
        return None, i
    return total + current, i


def names(sentence: str) -> list[str]:
    """Capitalised names in a sentence: runs of capitalised words after its first word, and a first word
    that is an acronym or begins a run of two or more ("Boris Johnson said ..."); a leading "The" or
    "On" is not part of a name."""
    text = sentence.strip().lstrip("\"'“‘(-•* ")
    if text.isupper():  # SHOUTED TEXT has no telling capitals
        return []
    found = []
    for match in _NAME_RUN.finditer(text):
        words = match.group(0).rstrip(".’'").split()
        before = text[: match.start()].rstrip()
        first_word = not before or before[-1] in ".!?:;\"“‘(—–-"
        while words and words[0].lower() in STOPWORDS:
            words, first_word = words[1:], False
        if not words or (first_word and len(words) == 1 and not _ACRONYM.match(words[0])):
            continue  # a sentence's first word is capitalised anyway
        found.append(" ".join(words))
    return found


def _initials(words: Sequence[str]) -> str:
    return "".join(w[0] for w in words if w and w.lower() not in STOPWORDS).lower()


@dataclass
class Evidence:
    """The cited passages of a claim, read once: their words, numbers, names' initials and sentences."""

    passages: Sequence[str]
    titles: Sequence[str] = ()
    dates: Sequence[str | None] = ()

    @cached_property
    def sentences(self) -> list[list[str]]:
        """Each passage's sentences."""
        return [[p[s:e] for s, e in sentence_spans(p)] or [p] for p in self.passages]

    @cached_property
    def words(self) -> set[str]:
        """Lower-cased words of the passages, titles, and the articles' dates (month and day names)."""
        text = " ".join([*self.passages, *self.titles]).lower().replace("’", "'")
        found = set(re.findall(r"\w+", text))
        found |= {w.removesuffix("'s") for w in re.findall(r"[\w']+", text)}
        for date in self.dates:
            when = _parse_date(date)
            if when is not None:
                found |= {_MONTHS[when.month - 1], _CALENDAR_DAYS[when.weekday()]}
        return found

    @cached_property
    def numbers(self) -> set[float]:
        """Numbers in the passages and titles, and the day and year of each article's date."""
        found = number_values(" ".join([*self.passages, *self.titles]))
        for date in self.dates:
            when = _parse_date(date)
            if when is not None:
                found |= {float(when.day), float(when.year)}
        return found

    @cached_property
    def acronyms(self) -> set[str]:
        """Acronyms written in the passages and the initials of their capitalised names."""
        text = " ".join([*self.passages, *self.titles])
        found = {w.lower().rstrip("s") for w in re.findall(r"\b[A-Z][A-Z0-9&]{1,7}s?\b", text)}
        for run in _NAME_RUN.findall(text):
            words = run.split()
            if len(words) >= 2:
                found.add(_initials(words))
        return found

    @cached_property
    def stems(self) -> set[str]:
        return terms(" ".join([*self.passages, *self.titles]))

    @cached_property
    def windows(self) -> list[tuple[set[str], str]]:
        """Content words of every run of up to ``WINDOW`` consecutive sentences of one passage (each with
        its passage's title), with the run's text."""
        out = []
        for sentences, title in zip(self.sentences, [*self.titles, *[""] * len(self.sentences)], strict=False):
            title_terms = terms(title)
            for i in range(len(sentences)):
                chunk = " ".join(sentences[i : i + WINDOW])
                out.append((terms(chunk) | title_terms, chunk))
        return out


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def known_word(word: str, vocabulary: set[str]) -> bool:
    """Whether a word of a name occurs in the passages, allowing a demonym or plural ("Afghan" /
    "Afghanistan": a shared start of 5+ letters) and one typo in a word of 6+ letters."""
    if word in vocabulary:
        return True
    if len(word) < 4:
        return False
    for v in vocabulary:
        if v[:1] != word[:1]:
            continue
        shorter, longer = (word, v) if len(word) <= len(v) else (v, word)
        if len(shorter) >= 5 and longer.startswith(shorter[: max(5, len(shorter) - 2)]):
            return True
        if len(word) >= 6 and _one_edit(word, v):
            return True
    return False


def _one_edit(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > 1:
        return False
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    return a[i + 1 :] == b[i + 1 :] or a[i + 1 :] == b[i:] or a[i:] == b[i + 1 :]


def name_supported(name: str, evidence: Evidence) -> bool:
    """Whether a name from a claim is in the evidence (see the module docstring for the variants)."""
    words = [w.lower().replace("’", "'").removesuffix("'s").strip(".'") for w in name.split()]
    words = [w for w in words if w]
    if len(words) == 1 and _ACRONYM.match(name.rstrip("’'s")):
        acronym = words[0].rstrip("s") if words[0].endswith("s") and len(words[0]) > 2 else words[0]
        return acronym in evidence.words or any(a.startswith(acronym) for a in evidence.acronyms)
    significant = [w for w in words if w not in STOPWORDS and w not in TITLES]
    if not significant:
        return True
    if all(known_word(w, evidence.words) for w in significant):
        return True
    initials = _initials(significant)
    return len(initials) >= 2 and any(a.startswith(initials) or initials.startswith(a) for a in evidence.acronyms
                                      if len(a) >= 2)


def check(claim: str, evidence: Evidence, question: str = "") -> Verdict:
    """Whether ``claim`` (an answer sentence without its markers) is supported by ``evidence``."""
    if not re.search(r"[^\W\d_]", claim):
        return Verdict(False, "no words")
    missing_numbers = number_values(claim) - evidence.numbers
    if missing_numbers:
        shown = ", ".join(f"{n:g}" for n in sorted(missing_numbers))
        return Verdict(False, f"figure not in the cited source: {shown}")
    claim_names = names(claim)
    for name in claim_names:
        if not name_supported(name, evidence):
            return Verdict(False, f"name not in the cited source: {name}")
    return _content(claim, claim_names, evidence, question)


def _content(claim: str, claim_names: list[str], evidence: Evidence, question: str) -> Verdict:
    name_terms = terms(" ".join(claim_names))
    free = concepts(question) | name_terms
    wanted = {t for t in terms(claim) if not t.replace(".", "").replace(",", "").isdigit()}
    wanted = {t for t in wanted if t not in NUMBER_WORDS and t not in _TENS and t not in _SCALES}
    checked = {t for t in wanted if _concept(t) not in free and t not in free}
    if not wanted:
        return Verdict(bool(claim_names) or bool(number_values(claim)), "" if claim_names else "nothing to check")
    best_score, best_text = -1.0, ""
    for window_terms, text in evidence.windows:
        found = {t for t in checked if t in window_terms or _concept(t) in _concepts(window_terms)}
        score = len(found) / len(checked) if checked else 1.0
        if score > best_score:
            best_score, best_text = score, text
    if checked and best_score < MIN_CONTENT:
        return Verdict(False, f"content words not in the cited source ({best_score:.2f})")
    if not _same_polarity(claim, best_text):
        return Verdict(False, "negation differs from the cited source")
    return Verdict(True)


def _concept(term: str) -> str:
    return CONCEPT.get(term, term)


def _concepts(window_terms: set[str]) -> set[str]:
    return {CONCEPT.get(t, t) for t in window_terms}


def _negated(text: str) -> bool:
    words = set(re.findall(r"[a-z]+", text.lower().replace("n't", " not").replace("n’t", " not")))
    return bool(words & _NEGATION)


def _same_polarity(claim: str, source: str) -> bool:
    """False when the claim adds a negation its best source sentences lack, or leaves out the "not" of a
    verb it repeats ("did not confirm" → "confirmed")."""
    best = max(sentence_spans(source) or [(0, len(source))],
               key=lambda span: len(terms(claim) & terms(source[span[0] : span[1]])))
    sentence = source[best[0] : best[1]]
    if _negated(claim) and not _negated(sentence):
        return False
    if _negated(claim):
        return True
    claim_stems = terms(claim)
    return not any(stem(m.group(1).lower()) in claim_stems for m in _NEGATED_VERB.finditer(sentence))


def answer_facts(text: str, question: str) -> set[str]:
    """The names and figures an answer gives that its question does not mention: what makes it an
    answer rather than the question restated ("Ford [1]" to "Which automaker recalled 2.9 million
    vehicles?")."""
    asked_words = set(re.findall(r"\w+", question.lower()))
    asked_numbers = number_values(question)
    facts = {f"{n:g}" for n in number_values(_MARKERS.sub(" ", text)) - asked_numbers}
    for start, end in sentence_spans(_MARKERS.sub(" ", text)):
        for name in names(text and _MARKERS.sub(" ", text)[start:end]):
            words = set(re.findall(r"\w+", name.lower())) - TITLES
            if words and not words <= asked_words:
                facts.add(name)
    return facts
