"""Eval files and retrieval evaluation at document level: hits@1/5/10 and MRR@10.

A line is ``{"question", "gold_urls" | "gold_doc_ids"}``, optionally with ``"asked_at"`` (ISO date or
datetime: the question is ranked, and answered, over what was published by then) and ``"answers"`` (gold
answer strings; an empty list: the question should be abstained on). A bare date means the end of that day.
When any line carries ``answers``, every line must carry both. A line that is not right gets its own error
(:class:`LineError`); the others are still read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from retrieval.errors import QueryError, SourceError
from retrieval.timeparse import parse_when

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class EvalCase:
    question: str
    gold: frozenset[str]  # gold URLs or doc ids
    by: str  # "url" | "doc_id"
    answers: tuple[str, ...] | None = None  # gold answer strings, when the answers are to be scored
    asked_at: datetime | None = None
    line: int = 0


@dataclass(frozen=True)
class LineError:
    """A line of an eval file that could not be used, and why."""

    line: int
    message: str

    def to_json(self) -> dict[str, object]:
        return {"line": self.line, "error": self.message}


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; an unreadable file or a bad line is an error naming it."""
    for number, obj in _objects(path):
        if isinstance(obj, ValueError):
            raise SourceError(str(path), f"{path} line {number}: {obj}")
        if not isinstance(obj, dict):
            raise SourceError(str(path), f"{path} line {number}: expected a JSON object")
        yield number, obj


def load_cases(path: Path) -> tuple[list[EvalCase], list[LineError]]:
    """The usable lines of an eval file and an error for each other one (an unreadable file is an error)."""
    lines = list(_objects(path))
    with_answers = any(isinstance(obj, dict) and "answers" in obj for _, obj in lines)
    cases: list[EvalCase] = []
    errors: list[LineError] = []
    for number, obj in lines:
        try:
            cases.append(_case(number, obj, with_answers))
        except ValueError as exc:
            errors.append(LineError(number, str(exc)))
    return cases, errors


def _objects(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed JSON or the parse error's message as a ValueError) for each non-blank line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(str(path), f"Cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except ValueError as exc:
            yield number, ValueError(f"not JSON ({exc})")


def _case(number: int, obj: object, with_answers: bool) -> EvalCase:
    """One line as a case, or ValueError saying what is wrong with it."""
    if isinstance(obj, ValueError):
        raise obj
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError('no "question" (a non-empty string)')
    key, by = ("gold_urls", "url") if "gold_urls" in obj else ("gold_doc_ids", "doc_id")
    gold = obj.get(key)
    if not isinstance(gold, list) or not all(isinstance(g, str) for g in gold):
        raise ValueError('no "gold_urls" or "gold_doc_ids" (a list of strings)')
    answers: tuple[str, ...] | None = None
    if with_answers:
        raw = obj.get("answers")
        if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
            raise ValueError('no "answers" (a list of gold answer strings; [] when it should be abstained on)')
        if not isinstance(obj.get("asked_at"), str):
            raise ValueError('no "asked_at" (an ISO date or datetime: when the question was asked)')
        answers = tuple(raw)
    asked_at: datetime | None = None
    if "asked_at" in obj:
        if not isinstance(obj["asked_at"], str):
            raise ValueError('"asked_at" is not a string (an ISO date or datetime: when the question was asked)')
        try:
            asked_at = parse_when(obj["asked_at"], name="asked_at")
        except QueryError as exc:
            raise ValueError(str(exc)) from None
        if _DAY.fullmatch(obj["asked_at"].strip()):  # asked that day: what was published that day counts too
            asked_at += timedelta(days=1, microseconds=-1)
    return EvalCase(question, frozenset(gold), by, answers, asked_at, number)


def score(rankings: Iterable[tuple[EvalCase, Sequence[set[str]]]]) -> dict[str, float | int]:
    """Metrics from each case's ranked documents (each document as the set of its keys: id and URLs)."""
    n = 0
    hits = {1: 0, 5: 0, 10: 0}
    rr = 0.0
    for case, docs in rankings:
        if not case.gold:  # nothing to find (a question that should be abstained on)
            continue
        n += 1
        first = next((i for i, keys in enumerate(docs[:10], start=1) if keys & case.gold), None)
        if first is not None:
            rr += 1.0 / first
            for k in hits:
                if first <= k:
                    hits[k] += 1
    if n == 0:
        return {"n": 0, "hits@1": 0.0, "hits@5": 0.0, "hits@10": 0.0, "mrr@10": 0.0}
    return {
        "n": n,
        "hits@1": round(hits[1] / n, 4),
        "hits@5": round(hits[5] / n, 4),
        "hits@10": round(hits[10] / n, 4),
        "mrr@10": round(rr / n, 4),
    }


def evaluate(cases: Sequence[EvalCase], ranked_docs: Callable[[EvalCase], list[set[str]]]) -> dict[str, float | int]:
    """Run every case through ``ranked_docs`` (case → best-first document key sets) and score."""
    return score((case, ranked_docs(case)) for case in cases)
