"""Scoring the answer engine on questions with gold answers, for `sitrep eval` and bench/bench_answers.py.

A case is answered by the engine as it would have answered at ``asked_at`` (:meth:`Engine.at`). Scores:
``contains_gold`` (a gold answer string is in the answer: its words normalised, or all of its content
words present), ``abstained``, ``false_abstain`` (abstained although gold answers exist),
``cited_gold_doc`` (a citation is a gold article), ``broken`` (see :func:`bot.answer.shape.problems`),
and the time taken.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.answer.engine import Engine
from bot.answer.results import Answer
from bot.answer.shape import problems
from bot.answer.words import STOPWORDS, digits


@dataclass(frozen=True)
class AnswerCase:
    """A question asked at a moment, with the answers it should contain (none: it should be abstained on)
    and the gold articles (URLs or document ids)."""

    question: str
    answers: tuple[str, ...]
    asked_at: datetime
    gold: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Outcome:
    """How the engine did on one case."""

    case: AnswerCase
    answer: Answer
    seconds: float

    @property
    def contains_gold(self) -> bool:
        return not self.answer.abstained and contains_gold(self.answer.answer, self.case.answers)

    @property
    def cited_gold_doc(self) -> bool:
        keys = {k for c in self.answer.citations for k in (c.url, c.doc_id) if k}
        return bool(keys & self.case.gold)

    @property
    def broken(self) -> list[str]:
        return problems(self.answer)


def _words(text: str) -> list[str]:
    text = text.lower().replace("’", "'").replace("‘", "'")
    return [digits(w) for w in re.findall(r"\d+(?:[.,]\d+)*|[^\W\d_]+", text)]


def contains_gold(text: str, answers: Sequence[str]) -> bool:
    """Whether ``text`` gives one of ``answers``: the answer's words in a row, or all its content words
    ("Ban on military-style assault weapons" in "... left out a ban on assault weapons (military-style)")."""
    said = _words(text)
    joined = f" {' '.join(said)} "
    vocabulary = set(said)
    for answer in answers:
        words = _words(answer)
        if not words:
            continue
        if f" {' '.join(words)} " in joined:
            return True
        content = [w for w in words if w not in STOPWORDS]
        if content and all(w in vocabulary for w in content):
            return True
    return False


def run(engine: Engine, cases: Iterable[AnswerCase]) -> list[Outcome]:
    """Answer every case as of its ``asked_at``."""
    outcomes = []
    for case in cases:
        started = time.perf_counter()
        answer = engine.at(case.asked_at).ask(case.question)
        outcomes.append(Outcome(case, answer, time.perf_counter() - started))
    return outcomes


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``; 0 when there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


def summarize(outcomes: Sequence[Outcome]) -> dict[str, float | int]:
    """``{"n", "contains_gold", "abstained", "false_abstain", "cited_gold_doc", "broken", "p50_s", "p95_s"}``:
    shares of the answerable cases (``abstained``: of all), ``broken`` a count."""
    answerable = [o for o in outcomes if o.case.answers]
    seconds = [o.seconds for o in outcomes]

    def share(hits: int, total: int) -> float:
        return round(hits / total, 4) if total else 0.0

    return {
        "n": len(outcomes),
        "contains_gold": share(sum(o.contains_gold for o in answerable), len(answerable)),
        "abstained": share(sum(o.answer.abstained for o in outcomes), len(outcomes)),
        "false_abstain": share(sum(o.answer.abstained for o in answerable), len(answerable)),
        "cited_gold_doc": share(sum(o.cited_gold_doc for o in answerable), len(answerable)),
        "broken": sum(bool(o.broken) for o in outcomes),
        "p50_s": round(statistics.median(seconds), 3) if seconds else 0.0,
        "p95_s": round(percentile(seconds, 95), 3),
    }
