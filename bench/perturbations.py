"""A labelled set for the support checker, made by perturbing real sentences.

From each passage a few sentences are taken and turned into answer sentences that the passage supports
(the sentence itself; shortened; put in reported speech; figures written as words or digits) and ones it
does not (a figure changed; a name swapped for one from another article, or for another name of the same
passage; a "not" added; the right sentence cited to an article about something else; a claim invented
around the passage's own names). Names and figures are found with plain patterns here, not with the
checker's own code, so the set does not share its blind spots by construction.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.text import sentence_spans

SUPPORTED_KINDS = ("verbatim", "shortened", "reported", "figures respelled", "two sentences joined")
UNSUPPORTED_KINDS = ("figure changed", "name from another article", "name from the same passage", "negated",
                     "wrong article", "invented claim")
_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
_CAPITAL = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]{3,}(?: [A-Z][a-z]+)?")
_AUX = re.compile(r"\b(was|were|is|are|has|have|had|will|would|could|can|did)\b")
_INVENTED = (
    "{a} announced new sanctions against {b} on Friday.",
    "{a} said the agreement with {b} had collapsed after a dispute over funding.",
    "{a} was arrested by police in connection with a fraud investigation.",
    "Officials confirmed that {a} would resign before the end of the month.",
)


@dataclass(frozen=True)
class Passage:
    """A cited passage: its text, its article's title and date, and which story it belongs to."""

    text: str
    title: str
    published: str | None
    story: str


@dataclass(frozen=True)
class Labelled:
    """An answer sentence, the passage it cites, whether that passage supports it, and how it was made."""

    claim: str
    passage: Passage
    supported: bool
    kind: str


def _sentences(text: str) -> list[str]:
    out = []
    for s, e in sentence_spans(text):
        sentence = text[s:e].strip()
        if 8 <= len(sentence.split()) <= 45 and sentence[-1:] in ".!?\"”" and "\n" not in sentence:
            out.append(sentence)
    return out


def _shortened(sentence: str) -> str | None:
    """The sentence without its trailing attribution or last clause, if enough is left."""
    cut = re.sub(r",\s+(?:[^,]{0,60}\b(?:said|says|told|according to)\b[^,]*)[.”\"]*$", ".", sentence)
    if cut == sentence and ", " in sentence:
        cut = sentence.rsplit(", ", 1)[0] + "."
    return cut if cut != sentence and len(cut.split()) >= 6 else None


def _respelled(sentence: str) -> str | None:
    """Small figures written the other way: "9" -> "nine", "nine" -> "9"."""
    for i, word in enumerate(_WORDS[2:], start=2):
        alone = rf"(?<![\d.,$]){i}(?![\d.,%]\d?)"
        if re.search(alone, sentence):
            return re.sub(alone, word, sentence, count=1)
        if re.search(rf"\b{word}\b", sentence, re.IGNORECASE):
            return re.sub(rf"\b{word}\b", str(i), sentence, count=1, flags=re.IGNORECASE)
    return None


def _figure_changed(sentence: str, rng: random.Random) -> str | None:
    match = re.search(r"\b\d{1,3}(?:,\d{3})*(?:\.\d+)?\b", sentence)
    if match:
        value = float(match.group(0).replace(",", ""))
        if 1900 <= value <= 2100:  # a year: move it by a decade, not into a neighbouring one
            new = str(int(value) + rng.choice((-11, 13)))
        else:
            new = f"{value * rng.choice((2, 3, 0.5)) + rng.choice((1, 7)):,.0f}"
        return sentence[: match.start()] + new + sentence[match.end() :]
    for i, word in enumerate(_WORDS[2:], start=2):
        if re.search(rf"\b{word}\b", sentence, re.IGNORECASE):
            return re.sub(rf"\b{word}\b", _WORDS[(i + 5) % len(_WORDS)] if i + 5 < len(_WORDS) else "forty",
                          sentence, count=1, flags=re.IGNORECASE)
    return None


def _negated(sentence: str) -> str | None:
    match = _AUX.search(sentence)
    if not match or re.search(r"\b(not|never|no)\b", sentence):
        return None
    return sentence[: match.end()] + " not" + sentence[match.end() :]


def _following(text: str, sentence: str) -> str | None:
    """The sentence after ``sentence`` in ``text``, when it is a plain one."""
    spans = sentence_spans(text)
    at = text.find(sentence)
    after = [text[s:e] for s, e in spans if s >= at + len(sentence)]
    if not after or not re.match(r"[A-Z][a-z]", after[0]) or len(after[0].split()) < 6:
        return None
    return after[0]


_CALENDAR = frozenset(
    "january february march april may june july august september october november december monday tuesday "
    "wednesday thursday friday saturday sunday".split()
)


def _names(text: str) -> list[str]:
    """Capitalised words after the first of a sentence: names of people, places and organisations (dates'
    month and day names are left out: swapping those is not swapping a name)."""
    return [n for n in dict.fromkeys(_CAPITAL.findall(text)) if n.split()[0].lower() not in _CALENDAR]


def build(passages: Sequence[Passage], per_passage: int = 2, seed: int = 13) -> list[Labelled]:
    """The labelled set: for up to ``per_passage`` sentences of each passage, every variant that applies."""
    rng = random.Random(seed)
    all_names = [(p.story, n) for p in passages for n in _names(p.text)]
    out: list[Labelled] = []
    for passage in passages:
        text_lower = passage.text.lower()
        sentences = _sentences(passage.text)
        rng.shuffle(sentences)
        for sentence in sentences[:per_passage]:
            supported = {
                "verbatim": sentence,
                "shortened": _shortened(sentence),
                "reported": f"According to the report, {sentence[0].lower()}{sentence[1:]}"
                if not re.match(r"[A-Z]{2}|[A-Z][a-z]+ [A-Z]", sentence) else None,
                "figures respelled": _respelled(sentence),
            }
            following = _following(passage.text, sentence)
            if following:
                supported["two sentences joined"] = f"{sentence.rstrip('.')}; {following[0].lower()}{following[1:]}"
            for kind, claim in supported.items():
                if claim:
                    out.append(Labelled(claim, passage, True, kind))
            names_here = _names(sentence)
            foreign = [n for story, n in all_names if story != passage.story and n.lower() not in text_lower]
            same = [n for n in _names(passage.text) if n not in sentence and n not in " ".join(names_here)]
            unsupported: dict[str, str | None] = {
                "figure changed": _figure_changed(sentence, rng),
                "name from another article": sentence.replace(names_here[0], rng.choice(foreign), 1)
                if names_here and foreign else None,
                "name from the same passage": sentence.replace(names_here[0], rng.choice(same), 1)
                if names_here and same else None,
                "negated": _negated(sentence),
                "invented claim": rng.choice(_INVENTED).format(a=names_here[0], b=rng.choice(foreign))
                if names_here and foreign else None,
            }
            for kind, claim in unsupported.items():
                if claim and claim != sentence:
                    out.append(Labelled(claim, passage, False, kind))
            others = [p for p in passages if p.story != passage.story]
            if others:
                out.append(Labelled(sentence, rng.choice(others), False, "wrong article"))
    return out
