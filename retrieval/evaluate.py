"""Retrieval evaluation at document level: hits@1/5/10 and MRR@10."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval.errors import SourceError


@dataclass(frozen=True)
class EvalCase:
    question: str
    gold: frozenset[str]  # gold URLs or doc ids
    by: str  # "url" | "doc_id"


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; an unreadable file or a bad line is an error naming it."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(str(path), f"Cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise SourceError(str(path), f"{path} line {number}: not JSON ({exc})") from exc
        if not isinstance(obj, dict):
            raise SourceError(str(path), f"{path} line {number}: expected a JSON object")
        yield number, obj


def load_cases(path: Path) -> list[EvalCase]:
    """Read ``{"question", "gold_urls"|"gold_doc_ids"}`` lines; a bad line is an error naming it."""
    cases: list[EvalCase] = []
    for number, obj in read_jsonl(path):
        try:
            question = str(obj["question"])
            if "gold_urls" in obj:
                cases.append(EvalCase(question, frozenset(map(str, obj["gold_urls"])), "url"))
            else:
                cases.append(EvalCase(question, frozenset(map(str, obj["gold_doc_ids"])), "doc_id"))
        except (KeyError, TypeError) as exc:
            raise SourceError(
                str(path), f"{path} line {number}: expected {{\"question\", \"gold_urls\" or \"gold_doc_ids\"}} ({exc})"
            ) from exc
    return cases


def score(rankings: Iterable[tuple[EvalCase, Sequence[set[str]]]]) -> dict[str, float | int]:
    """Metrics from each case's ranked documents (each document as the set of its keys: id and URLs)."""
    n = 0
    hits = {1: 0, 5: 0, 10: 0}
    rr = 0.0
    for case, docs in rankings:
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


def evaluate(cases: Sequence[EvalCase], ranked_docs: Callable[[str], list[set[str]]]) -> dict[str, float | int]:
    """Run every question through ``ranked_docs`` (question → best-first document key sets) and score."""
    return score((case, ranked_docs(case.question)) for case in cases)
