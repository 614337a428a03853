"""Whether an answer sentence says only what the passages it cites say.

A model's sentence is shown only if it passes :func:`check`:

1. **Figures.** Every number in it (digits or words: "nine" = 9, "2.9 million" = 2,900,000, "60%" = 60,
   "15th" = 15) occurs in a cited passage, or is the day or year of a cited article's date.
2. **Names.** Every named person, place, organisation or other capitalised name occurs in a cited
   passage or title, allowing the spellings news uses for one thing: an acronym for its full name
   ("UN" / "United Nations", "UNAMA" / "United Nations Assistance Mission in Afghanistan"), the start of
   an acronym ("UN" / "UNAMA"), a demonym ("Afghan" / "Afghanistan"), a title left out ("President
   Ghani" / "Ghani"), one typo in a long name, a full name from elsewhere in the passage for the surname
   the sentence gives. A number inside a name ("Covid-19") belongs to the name, not to the figures. And
   no name of the claim stands where its sentence has another name with the same two words on one side
   (:func:`swapped_name`: the sentence with its actor or place replaced).
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
from datetime import datetime, timedelta
from functools import cached_property

from bot.answer.words import CONCEPT, NUMBER_WORDS, STOPWORDS, concepts, one_edit, stem, terms
from retrieval.text import sentence_spans

WINDOW = 3  # consecutive source sentences a claim's content words are looked for in
MIN_CONTENT = 0.6  # share of a claim's content words the best window must hold

_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
         "ninety": 90}
_SCALES = {"dozen": 12, "hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000,
           "trillion": 1_000_000_000_000}
_ORDINALS = {
    w: i for i, w in enumerate((
        "zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
        "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth",
        "nineteenth", "twentieth",
    ))
}
_WORD_VALUES = {**NUMBER_WORDS, **_TENS}
# "one" is a pronoun as often as a figure ("one of the largest"): it is not checked.
_UNCHECKED_WORDS = frozenset({"one", "first", "second", "zero", "zeroth"})
_TOKEN = re.compile(r"\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th)?|[a-z]+|[^\sa-z\d]", re.IGNORECASE)
# A number that is part of a name ("Covid-19", "MI-17", "F-16", "G7", "Y2K") says no figure: "19 months"
# is not supported by "Covid-19".
_NAMED_NUMBER = re.compile(r"\b[A-Z][A-Za-z]*-?\d+[A-Za-z]*\b(?!,\d)")
_NEGATION = frozenset({"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot"})
_NEGATED_VERB = re.compile(r"\b(?:not|never|n['’]t)\s+(?:\w+ly\s+)?(?:been\s+|be\s+|yet\s+)?(\w+)", re.IGNORECASE)
# Titles that come and go in front of a name ("President Ghani", "Ghani").
TITLES = frozenset(
    "president vice prime minister ministers secretary general governor spokesman spokeswoman spokesperson "
    "chief king queen prince princess senator sen rep representative mr mrs ms dr judge justice mayor "
    "commander director chairman chairwoman chair ceo pope sheikh mullah deputy foreign interior defence "
    "defense acting former state sir lord lady gen col lt capt sgt officer ambassador envoy leader head".split()
)
_NAME_WORD = r"(?<![\w'’-])[A-Z](?:[\w'’&-]|\.(?=\w))*"
_NAME_RUN = re.compile(rf"{_NAME_WORD}(?:[ \t]+{_NAME_WORD})*")
_ACRONYM = re.compile(r"^[A-Z][A-Z0-9&]{1,7}s?$")
_LINKS = re.compile(r"\]\([^)\s]*(?:\([^)\s]*\))?[^)\s]*\)|<[^<>|]*\|?|\b[a-z][a-z0-9+.-]*:(?://)?[^\s)>\]]+", re.I)
_MARKERS = re.compile(r"\[[^\]\n]{0,40}\]")
_CALENDAR_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")


@dataclass(frozen=True)
class Verdict:
    """Whether a claim is supported, and if not, why (for logs and the benchmark's error analysis)."""

    supported: bool
    reason: str = ""


_MONTH_NAMES = "|".join(sorted({*_MONTHS, *(m[:3] for m in _MONTHS), "sept"}, key=len, reverse=True))
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_DATE = re.compile(
    rf"\b(?:{_DAY}\s+(?:of\s+)?({_MONTH_NAMES})\.?(?:,?\s+(\d{{4}}))?"
    rf"|({_MONTH_NAMES})\.?\s+{_DAY}(?:,?\s+(\d{{4}}))?"
    r"|(\d{4})-(\d{2})-(\d{2}))\b",
    re.IGNORECASE,
)
EVENT_DAYS = 7  # a date in an answer may be up to this many days before a cited article's ("on Wednesday")


def dates_in(text: str) -> list[tuple[tuple[int, int, int | None], tuple[int, int]]]:
    """Calendar dates written in ``text`` ("14 October", "Oct. 14, 2020", "2020-10-14") as (month, day,
    year or None) with their character span."""
    found = []
    for m in _DATE.finditer(text):
        if m.group(7):
            month, day, year = int(m.group(8)), int(m.group(9)), int(m.group(7))
        else:
            name = (m.group(2) or m.group(4)).lower()[:3]
            month = next(i for i, full in enumerate(_MONTHS, start=1) if full.startswith(name))
            day, year_text = int(m.group(1) or m.group(5)), m.group(3) or m.group(6)
            year = int(year_text) if year_text else None
        if 1 <= month <= 12 and 1 <= day <= 31:
            found.append(((month, day, year), m.span()))
    return found


def number_values(text: str) -> set[float]:
    """The numbers in ``text`` as values: digits ("1,000", "5.9", "15th"), number words ("nine",
    "twenty-five", "two hundred"), scales ("2.9 million"). Lone "one"/"first" are left out."""
    values: set[float] = set()
    text = _NAMED_NUMBER.sub(" ", text)
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
    start, total, current, last = i, 0.0, 0.0, ""
    while i < len(tokens) and (tokens[i] in _WORD_VALUES or tokens[i] in _SCALES or tokens[i] == "and"):
        word = tokens[i]
        if word == "and":  # "two hundred and five", not "eight and fifteen"
            if i + 1 < len(tokens) and tokens[i + 1] in _WORD_VALUES and last == "scale":
                i += 1
                continue
            break
        kind = "scale" if word in _SCALES else "tens" if word in _TENS else "unit"
        # "twenty five", "two hundred", "hundred five" go together; "nine twenty" and "five six" do not.
        if last and not (kind == "scale" or last == "scale" or (last == "tens" and kind == "unit")):
            break
        if kind == "scale":
            current = (current or 1.0) * _SCALES[word]
            if _SCALES[word] >= 1000:
                total, current = total + current, 0.0
        else:
            current += _WORD_VALUES[word]
        last = kind
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
class Span:
    """What a claim may rest on: a run of consecutive sentences of a passage (or of several cited
    passages), with the titles and dates of their articles. Its words, figures and acronyms are read once."""

    text: str
    titles: tuple[str, ...] = ()
    dates: tuple[str | None, ...] = ()
    around: Span | None = None  # for a single sentence: its whole passage, where a name's full form may be

    @cached_property
    def words(self) -> set[str]:
        """Lower-cased words (and "U.S." as "us"), with the articles' month and day names."""
        text = " ".join([self.text, *self.titles]).lower().replace("’", "'")
        found = set(re.findall(r"\w+", text))
        found |= {w.removesuffix("'s") for w in re.findall(r"[\w'-]+", text)}
        found |= {w.replace(".", "") for w in re.findall(r"\b(?:[a-z]\.){2,}", text)}
        for date in self.dates:
            when = _parse_date(date)
            if when is not None:
                found |= {_MONTHS[when.month - 1], _CALENDAR_DAYS[when.weekday()]}
        return found

    @cached_property
    def numbers(self) -> set[float]:
        """Numbers in the text and titles, and the day, month and year of each article's date."""
        found = number_values(" ".join([self.text, *self.titles]))
        for date in self.dates:
            when = _parse_date(date)
            if when is not None:
                found |= {float(when.day), float(when.month), float(when.year)}
        return found

    def has_date(self, month: int, day: int, year: int | None) -> bool:
        """Whether the text names this date, or it falls within ``EVENT_DAYS`` before an article's date."""
        written = {(m, d) for (m, d, _), _ in dates_in(" ".join([self.text, *self.titles]))}
        if (month, day) in written:
            return True
        for published in filter(None, map(_parse_date, self.dates)):
            try:
                claimed = published.replace(year=year or published.year, month=month, day=day)
            except ValueError:
                continue
            if timedelta(0) <= published - claimed <= timedelta(days=EVENT_DAYS + 1):
                return True
        return False

    @cached_property
    def written_acronyms(self) -> set[str]:
        """Acronyms written in the text and titles ("UNAMA", "NATO")."""
        text = " ".join([self.text, *self.titles])
        return {w.lower().rstrip("s") for w in re.findall(r"\b[A-Z][A-Z0-9&]{1,7}s?\b", text)}

    @cached_property
    def acronyms(self) -> set[str]:
        """Acronyms written in the text and the initials of its capitalised names."""
        text = " ".join([self.text, *self.titles])
        found = set(self.written_acronyms)
        for run in _NAME_RUN.findall(text):
            words = run.split()
            if len(words) >= 2:
                found.add(_initials(words))
        return found

    @cached_property
    def own_names(self) -> list[str]:
        """The capitalised names of the span's sentences (not of its titles)."""
        return list(dict.fromkeys(n for s, e in sentence_spans(self.text) for n in names(self.text[s:e])))

    @cached_property
    def stems(self) -> set[str]:
        """Content words of the text and titles, inflections and synonyms merged."""
        return {_concept(t) for t in terms(" ".join([self.text, *self.titles]))}


class Evidence:
    """The passages a claim cites, as the spans it may rest on: each sentence (``singles``), each run of
    ``WINDOW`` consecutive sentences of a passage, and, when it cites several, their best runs together
    (``wider``)."""

    def __init__(self, passages: Sequence[str], titles: Sequence[str] = (), dates: Sequence[str | None] = ()) -> None:
        titles = [*titles, *[""] * (len(passages) - len(titles))]
        dates = [*dates, *[None] * (len(passages) - len(dates))]
        self.singles: list[Span] = []
        self.runs: list[list[Span]] = []
        for passage, title, date in zip(passages, titles, dates, strict=False):
            sentences = [passage[s:e] for s, e in sentence_spans(passage)] or [passage]
            whole = Span(passage, (title,), (date,))
            self.singles += [Span(sentence, (title,), (date,), whole) for sentence in sentences]
            self.runs.append([
                Span(" ".join(sentences[i : i + WINDOW]), (title,), (date,))
                for i in range(max(1, len(sentences) - WINDOW + 1))
            ])


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def known_word(word: str, vocabulary: set[str]) -> bool:
    """Whether a word of a name occurs in the passages, allowing a demonym or plural ("Afghan" /
    "Afghanistan", "Ukraine" / "Ukrainian": the shorter word of 5+ letters, but for its last letter, starts
    the longer; not "Ministry" / "Minister") and one typo in a word of 6+ letters."""
    if word in vocabulary:
        return True
    if len(word) < 4 or any(c.isdigit() for c in word):  # "Covid-45" is not a spelling of "Covid-19"
        return False
    for v in vocabulary:
        if v[:1] != word[:1]:
            continue
        shorter, longer = (word, v) if len(word) <= len(v) else (v, word)
        if len(shorter) >= 5 and longer.startswith(shorter[: max(5, len(shorter) - 1)]):
            return True
        if len(word) >= 6 and one_edit(word, v):
            return True
    return False


def name_supported(name: str, span: Span) -> bool:
    """Whether a name from a claim is in the span (see the module docstring for the variants)."""
    # "Covid-19" stays one word: its number is part of the name ("Covid-45" is not "Covid" and "45").
    words = [w.lower().replace("’", "'").removesuffix("'s").strip(".'") for w in re.split(r"\s+|-(?!\d)", name)]
    words = [w.replace(".", "") for w in words if w]
    if len(words) == 1 and _ACRONYM.match(name.replace(".", "").rstrip("’'s")):
        acronym = words[0].rstrip("s") if words[0].endswith("s") and len(words[0]) > 2 else words[0]
        return acronym in span.words or any(a.startswith(acronym) for a in span.acronyms)
    significant = [w for w in words if w not in STOPWORDS and w not in TITLES]
    if not significant:
        return True
    if all(known_word(w, span.words) for w in significant):
        return True
    # A full name for an acronym the source writes ("United Nations" / "UN"); not two names that merely share
    # initials ("Archana California" / "Archana Chatterjee").
    initials = _initials(significant)
    return len(initials) >= 2 and any(a.startswith(initials) or initials.startswith(a) for a in span.written_acronyms
                                      if len(a) >= 2)


@dataclass(frozen=True)
class _Claim:
    """An answer sentence read once: its figures, names and the content words to look for."""

    text: str
    numbers: set[float]
    names: list[str]
    content: set[str]  # concepts not given by the question or by the names
    dates: list[tuple[int, int, int | None]]

    @classmethod
    def read(cls, text: str, question: str) -> _Claim:
        text = _LINKS.sub(" ", text)  # a link's target is not a claim (its label is)
        dates = dates_in(text)
        undated = text
        for _, (start, end) in reversed(dates):
            undated = undated[:start] + " " + undated[end:]
        claim_names = names(text)
        free = concepts(question) | {_concept(t) for t in terms(" ".join(claim_names))}
        content = {
            _concept(t) for t in terms(text)
            if not t.replace(".", "").replace(",", "").isdigit() and t not in _WORD_VALUES and t not in _SCALES
        }
        claim_numbers = number_values(undated)
        months = {m.lower() for m in _MONTHS} | {m[:3] for m in _MONTHS}
        dated_names = [n for n in claim_names if n.lower().rstrip(".") not in months]
        return cls(text, claim_numbers, dated_names, content - free, [d for d, _ in dates])


def check(claim: str, evidence: Evidence, question: str = "") -> Verdict:
    """Whether ``claim`` (an answer sentence without its markers) is supported by ``evidence``.

    One sentence of a cited passage must hold its figures, names and most of its content words. Only a
    claim that no single sentence holds all the content of may rest on two consecutive sentences (or on
    several cited passages together): a name swapped into a sentence from elsewhere in the passage ("the
    Taliban" for "the ministry") is not supported by the sentence it was taken from.
    """
    if not re.search(r"[^\W\d_]", claim):
        return Verdict(False, "no words")
    read = _Claim.read(claim, question)
    if not read.content and not read.names and not read.numbers:
        return Verdict(False, "nothing to check")
    verdicts = [_against(read, span) for span in evidence.singles]
    if not verdicts or max(share for _, share in verdicts) < 1.0:
        wider = [span for runs in evidence.runs for span in runs]
        if len(evidence.runs) > 1:  # a claim citing several articles may combine them
            best = [max(runs, key=lambda s: _content_share(read, s)) for runs in evidence.runs if runs]
            wider.append(Span(" ".join(s.text for s in best), tuple(t for s in best for t in s.titles),
                              tuple(d for s in best for d in s.dates)))
        verdicts += [_against(read, span) for span in wider]
    verdicts.sort(key=lambda v: v[1], reverse=True)
    supported = next((v for v, _ in verdicts if v.supported), None)
    return supported or (verdicts[0][0] if verdicts else Verdict(False, "no source"))


def _content_share(claim: _Claim, span: Span) -> float:
    if not claim.content:
        return 1.0
    return len(claim.content & span.stems) / len(claim.content)


def _against(claim: _Claim, span: Span) -> tuple[Verdict, float]:
    """The verdict of one span, and how much of the claim's content it holds (to report the closest)."""
    share = _content_share(claim, span)
    missing = claim.numbers - span.numbers
    if missing:
        return Verdict(False, f"figure not in the cited source: {', '.join(f'{n:g}' for n in sorted(missing))}"), share
    for name in claim.names:
        if not name_supported(name, span) and not _fuller_name(name, span):
            return Verdict(False, f"name not in the cited source: {name}"), share
    swap = swapped_name(claim.text, claim.names, span)
    if swap:
        return Verdict(False, f"name differs from the cited sentence: {swap[0]} for {swap[1]}"), share
    for month, day, year in claim.dates:
        if not span.has_date(month, day, year):
            return Verdict(False, f"date not in or just before the cited source: {day} {_MONTHS[month - 1]}"), share
    if share < MIN_CONTENT:
        return Verdict(False, f"content words not in the cited source ({share:.2f})"), share
    if not _same_polarity(claim.text, span.text):
        return Verdict(False, "negation differs from the cited source"), share
    return Verdict(True), share


def _fuller_name(name: str, span: Span) -> bool:
    """Whether ``name`` is the fuller form, written elsewhere in the passage, of a name the sentence gives
    in part: "Dana Pike" for the sentence's "Pike", "President Joe Biden" for "Biden"."""
    if span.around is None or not name_supported(name, span.around):
        return False
    return any(name_supported(part, span) for part in span.own_names if _one_in_other(part, name))


def _one_in_other(one: str, other: str) -> bool:
    """Whether one name is the other's last words, titles aside: a surname for a full name ("Pike" /
    "Dana Pike", "President Biden" / "Joe Biden"), not a shared word ("Playboy" / "Playboy Mansion",
    "Archana Chatterjee" / "Archana California")."""
    a, b = ([w for w in re.findall(r"\w+", n.lower()) if w not in STOPWORDS and w not in TITLES] for n in (one, other))
    shorter, longer = sorted((a, b), key=len)
    return bool(shorter) and longer[len(longer) - len(shorter) :] == shorter


_CONTEXT_TOKEN = re.compile(r"[\w'’]+|[^\w\s]")


def _contexts(text: str, name: str) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """The two tokens before and the two after each place ``name`` is written in ``text``."""
    out = []
    for m in re.finditer(re.escape(name), text):
        before = tuple(_CONTEXT_TOKEN.findall(text[: m.start()].lower())[-2:])
        after = tuple(_CONTEXT_TOKEN.findall(text[m.end() :].lower())[:2])
        out.append((before, after))
    return out


def swapped_name(claim: str, claim_names: Sequence[str], span: Span) -> tuple[str, str] | None:
    """A name of the claim written where the span's sentence has another name, with the same two words
    on one side of both: the sentence with its actor, place or organisation replaced ("the jury awarded
    Cosby $500,000" from "the jury awarded Huth $500,000"), which the name check alone lets through when
    the new name occurs elsewhere in the article or its title. Returns (claim's name, source's name)."""
    own = Span(span.text)  # the sentences themselves: a title names the story, not who did what in it
    outside = [n for n in claim_names if not name_supported(n, own) and not _fuller_name(n, span)]
    if not outside:
        return None
    for mine in outside:
        for before, after in _contexts(claim, mine):
            for theirs in span.own_names:
                if _one_in_other(mine, theirs):  # one entity, named more or less fully ("Dana Pike", "Pike")
                    continue
                for their_before, their_after in _contexts(span.text, theirs):
                    if (len(before) == 2 and before == their_before) or (len(after) == 2 and after == their_after):
                        return mine, theirs
    return None


def _concept(term: str) -> str:
    return CONCEPT.get(term, term)


def _negated(text: str) -> bool:
    words = set(re.findall(r"[a-z]+", text.lower().replace("n't", " not").replace("n’t", " not")))
    return bool(words & _NEGATION)


def _same_polarity(claim: str, source: str) -> bool:
    """False when the claim adds a negation its best source sentences lack, or leaves out the "not" of a
    verb it repeats ("did not confirm" → "confirmed")."""
    best = max(sentence_spans(source) or [(0, len(source))],
               key=lambda span: len(terms(claim) & terms(source[span[0] : span[1]])))
    sentence = source[best[0] : best[1]]
    if _negated(claim) and not _negated(source):
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
