"""A model's answer never says less than the extractive one: the extractive answer's sentences that the
model's verified answer leaves out are shown after it, under one plain line, with their citations merged.

A small model often gives a true, cited sentence that misses the asked fact the extractive answer has
("The event was at Coeur d'Alene City Park [1]." where the extractive sentence says "… in Coeur d'Alene,
Idaho"), or answers right where the extractive lead sentence is off the question. Which of the two answers
the question better is what a small model can't be trusted to judge and a word rule can't tell; showing
the model's answer and then what it left out of the extractive answer loses neither. Every added sentence
is an extractive sentence: verbatim from a retrieved passage and cited to it, so nothing unverified is added.
"""

from __future__ import annotations

import re

from bot.answer.citations import MARKER, answer_spans, marker_ids, newest_published, repeat_key, strip_markers
from bot.answer.extractive import DIFFERENT_FIGURE
from bot.answer.results import Answer, citation_key
from bot.answer.support import answer_facts, number_values
from bot.answer.words import terms

ALSO = "The most relevant passages also say:"
# Share of an extractive sentence's own content words (those not in the question) that the model's answer
# must use for the sentence to count as said: a restatement keeps most of them, another statement does not.
SAID_SHARE = 0.6
# What kind of fact a question asks for: a figure ("how many", "when", "what percentage") or a name ("who",
# "where"). A question of neither kind ("what", "which", "why") may be answered by any words.
_ASKS_FIGURE = re.compile(
    r"\bhow\s+(?:many|much|old|long|far|often|large|big|high|tall|deep)\b|\bwhen\b|"
    r"\bwhat\s+(?:percentage|percent|share|number|amount|age|year|date|day|month|time|magnitude|rate|price)\b",
    re.IGNORECASE,
)
_CALENDAR = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday january february march april may june july "
    "august september october november december".split()
)
_ASKS_NAME = re.compile(r"\b(?:who|whom|whose|where)\b", re.IGNORECASE)


def with_supplement(model: Answer, extractive: Answer | None, question: str) -> Answer:
    """``model`` (a verified model answer) followed by the sentences of ``extractive`` it does not say (see
    :func:`left_out`), their markers renumbered into ``model``'s citations; ``model`` itself when it says
    them all or there is no extractive answer."""
    if extractive is None or extractive.abstained or not extractive.citations:
        return model
    lines = left_out(model.answer, extractive.answer, question)
    if not lines:
        return model
    by_n = {c.n: c for c in extractive.citations}
    citations = list(model.citations)
    number_of = {citation_key(c): c.n for c in citations}

    def renumbered(match: re.Match[str]) -> str:
        # Articles the model cited keep their number (and gain the extractive quote); others are numbered
        # on, in order of first use.
        out: dict[str, None] = {}
        for n in marker_ids(match.group(1)):
            cited = by_n[n]
            key = citation_key(cited)
            if key not in number_of:
                number_of[key] = len(citations) + 1
                citations.append(cited.renumbered(number_of[key]))
            else:
                i = number_of[key] - 1
                citations[i] = citations[i].merged(cited.renumbered(i + 1))
            out[f"[{number_of[key]}]"] = None
        return "".join(out)

    text = "\n".join(MARKER.sub(renumbered, line) for line in lines)
    return Answer(question=model.question, answer=f"{model.answer}\n{ALSO}\n{text}", citations=citations,
                  mode=model.mode, as_of=newest_published(citations), topic=model.topic, notes=list(model.notes))


def left_out(model_text: str, extractive_text: str, question: str) -> list[str]:
    """The lines of ``extractive_text`` (one per article) with only the sentences ``model_text`` does not
    say (:func:`says`); lines left empty are dropped."""
    model_keys = {repeat_key(model_text[s:e]) for s, e in answer_spans(model_text)}
    lines = []
    for line in extractive_text.splitlines():
        kept = [line[s:e].strip() for s, e in answer_spans(line)
                if not says(model_text, model_keys, line[s:e], question)]
        if kept:
            lines.append(" ".join(kept))
    return lines


def says(model_text: str, model_keys: set[str], sentence: str, question: str) -> bool:
    """Whether ``model_text`` says what the extractive ``sentence`` gives the question: the sentence itself;
    for a question asking for a figure or a name, every figure or name of that kind the sentence adds to
    the question (when it adds any); otherwise every name and figure it adds and most of its other content
    words."""
    claim = strip_markers(sentence).split(DIFFERENT_FIGURE, 1)[-1]  # the outlet's name is framing, not a fact
    if repeat_key(claim) in model_keys:
        return True
    facts = answer_facts(claim, question)
    figure, name = bool(_ASKS_FIGURE.search(question)), bool(_ASKS_NAME.search(question))
    if figure or name:
        facts = {f for f in facts if (figure and _is_figure(f)) or (name and not _is_figure(f))}
    if not all(mentions(model_text, fact) for fact in facts):
        return False
    if (figure or name) and facts:
        return True
    own = terms(claim) - terms(question)
    return not own or len(own & terms(strip_markers(model_text))) >= SAID_SHARE * len(own)


def _is_figure(fact: str) -> bool:
    """A number, or a day or month name: what "when" and "how many" ask for, not "who" or "where"."""
    try:
        float(fact)
    except ValueError:
        return fact.lower() in _CALENDAR
    return True


def mentions(text: str, fact: str) -> bool:
    """Whether ``text`` gives ``fact`` (a figure, or a name whose words it all uses)."""
    if _is_figure(fact) and fact.lower() not in _CALENDAR:
        return float(fact) in number_values(text)
    words = set(re.findall(r"\w+", text.lower()))
    return all(w in words for w in re.findall(r"\w+", fact.lower()))
