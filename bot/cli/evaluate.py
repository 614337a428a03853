"""``sitrep eval``: retrieval quality of a question file, and answer quality when its lines carry answers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bot.runtime import open_corpus
from bot.settings import Settings
from retrieval.evaluate import EvalCase, evaluate, load_cases


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    """Score retrieval (and answers); a bad line is reported on its own and the rest are scored. Exit 1
    when some line could not be used."""
    from bot.answer import evaluation as answer_eval  # the engine loads the LLM client: only for `eval`
    from bot.answer.engine import Engine

    cases, errors = load_cases(Path(args.file))
    corpus = open_corpus(settings)

    def ranked(case: EvalCase) -> list[set[str]]:  # --mode: hybrid, or a baseline ranking
        return corpus.ranked_documents(case.question, k=args.k, mode=args.mode, until=case.asked_at)

    try:
        result: dict[str, object] = dict(evaluate(cases, ranked))
        answered = [
            answer_eval.AnswerCase(c.question, c.answers, c.asked_at, c.gold)
            for c in cases if c.answers is not None and c.asked_at is not None
        ]
        if answered:
            outcomes = answer_eval.run(Engine(settings.llm, corpus), answered)
            result["answer"] = answer_eval.summarize(outcomes)
    finally:
        corpus.close()
    if errors:
        result["errors"] = [e.to_json() for e in errors]
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print("  ".join(f"{k}={v}" for k, v in result.items() if k not in ("answer", "errors")))
        if "answer" in result:
            print("answers: " + "  ".join(f"{k}={v}" for k, v in result["answer"].items()))  # type: ignore[attr-defined]
        for error in errors:
            print(f"{args.file} line {error.line}: {error.message}")
    return 1 if errors else 0
