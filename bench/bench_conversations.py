"""Follow-ups and constraints on a multi-topic store with look-alike people and places.

    .venv/bin/python bench/bench_conversations.py [--data FILE] [--out docs/benchmarks.md] [--show]

The store is the fixture articles of ``--data`` (default ``tests/fixtures/conversations/lookalikes.json``:
written for this, with two presidents, a prime minister, two Pelosis, three police forces, UK and US
inflation). Two sets run through the extractive engine, as ``sitrep chat`` runs them:

- **Conversations.** Each follow-up is read against the conversation so far (its questions, the answers
  and their sources); it is *resolved right* when the standalone question names every expected subject
  and none of the look-alikes, or when it asks back which one is meant where that is expected. The answer
  is then checked for the look-alikes too.
- **Questions.** Multi-topic questions naming people, places and times: an *answer* must not name a
  person or place on its ``forbid`` list (another story's look-alike); a *gap* is the reply that the sources
  don't cover the combination. False abstentions (a gap or abstention where an answer was expected) are
  counted apart.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from any folder

from bench.markdown import write_out  # noqa: E402
from bot.answer.engine import Engine  # noqa: E402
from bot.answer.results import Answer, Turn  # noqa: E402
from bot.answer.rewrite import read_followup  # noqa: E402
from bot.settings import Settings  # noqa: E402
from retrieval.corpus import Corpus, CorpusConfig  # noqa: E402
from retrieval.documents import Article  # noqa: E402

DEFAULT_DATA = ROOT / "tests" / "fixtures" / "conversations" / "lookalikes.json"
GAP = "don't cover"


def load(path: Path) -> dict[str, Any]:
    """The fixture file: ``articles``, ``conversations`` and ``questions``."""
    return json.loads(path.read_text(encoding="utf-8"))


def articles(data: dict[str, Any]) -> list[Article]:
    """The fixture articles as loader output."""
    return [
        Article(text=a["text"], source_key=a["key"], title=a["title"], url=a["key"], source=a["source"],
                published=datetime.fromisoformat(a["published"]).astimezone(UTC), kind="url")
        for a in data["articles"]
    ]


def _names(text: str, names: list[str]) -> list[str]:
    """Which of ``names`` occur in ``text`` (whole words; "US" is not "USA", "Yoon" not in "Yoon Hee-keun" when
    that is listed on its own)."""
    return [n for n in names if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text)]


@dataclass
class TurnResult:
    conversation: str
    ask: str
    resolved: str | None
    clarify: str | None
    right: bool
    answer: str
    answer_clean: bool
    why: str = ""


@dataclass
class QuestionResult:
    ask: str
    expect: str
    got: str  # "answer" | "gap" | "abstain"
    answer: str
    wrong_names: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def kind_of(answer: Answer) -> str:
    if answer.abstained:
        return "abstain"
    return "gap" if answer.answer.startswith("The ingested articles") and GAP in answer.answer else "answer"


def run_conversations(engine: Engine, data: dict[str, Any]) -> list[TurnResult]:
    """Every scripted conversation, turn by turn, as ``sitrep chat`` holds it."""
    results = []
    for conversation in data["conversations"]:
        history: list[Turn] = []
        for turn in conversation["turns"]:
            question = turn["ask"]
            lookup = partial(engine.passages_text, since=None, until=None)  # as Engine.ask_stream reads it
            queries, clarify = read_followup(question, history, lookup=lookup)
            answer = engine.ask(question, history=history)
            if "expect" in turn or "clarify" in turn:
                results.append(_judge(conversation["name"], turn, queries, clarify, answer))
            cited = tuple(" ".join([c.title, *(q.text for q in c.quotes)]) for c in answer.citations)
            history += [Turn("user", question), Turn("assistant", answer.answer, sources=cited)]
    return results


def _judge(name: str, turn: dict[str, Any], queries: list[str], clarify: str | None, answer: Answer) -> TurnResult:
    resolved = queries[0] if queries else None
    body = answer.answer.split("What they say about each:")[0]
    forbid = turn.get("forbid", [])
    clean = not _names(body, forbid)
    if "clarify" in turn:
        right = clarify is not None and all(n in clarify for n in turn["clarify"])
        why = "" if right else f"expected a question back naming {turn['clarify']}"
    else:
        missing = [n for n in turn["expect"] if n.lower() not in (resolved or "").lower()]
        wrong = _names(resolved or "", forbid)
        right = resolved is not None and not missing and not wrong
        why = "" if right else f"missing {missing}, look-alikes {wrong}, clarify={clarify!r}"
    return TurnResult(name, turn["ask"], resolved, clarify, right, answer.answer, clean, why)


def run_questions(engine: Engine, data: dict[str, Any]) -> list[QuestionResult]:
    """Every multi-topic question, standalone."""
    results = []
    for item in data["questions"]:
        answer = engine.ask(item["ask"])
        got = kind_of(answer)
        wrong = _names(answer.answer, item.get("forbid", [])) if got == "answer" else []
        missing = [c for c in item.get("contains", []) if c not in answer.answer] if got == "answer" else []
        results.append(QuestionResult(item["ask"], item["expect"], got, answer.answer, wrong, missing))
    return results


def build(data_dir: Path, data: dict[str, Any]) -> Corpus:
    corpus = Corpus.open(CorpusConfig(data_dir=data_dir))
    corpus.ingest_articles(articles(data))
    return corpus


def table(turns: list[TurnResult], questions: list[QuestionResult]) -> str:
    right = sum(t.right for t in turns)
    clean = sum(t.answer_clean for t in turns)
    answered = [q for q in questions if q.got == "answer"]
    wrong = [q for q in answered if q.wrong_names]
    false_abstain = [q for q in questions if q.expect == "answer" and q.got != "answer"]
    gaps_right = sum(q.got == "gap" for q in questions if q.expect == "gap")
    lines = [
        "| set | n | measure | result |",
        "|---|---:|---|---:|",
        f"| conversations: follow-ups | {len(turns)} | resolved right (subject named, no look-alike; asks back "
        f"where expected) | {right}/{len(turns)} ({right / max(len(turns), 1):.0%}) |",
        f"| conversations: follow-ups | {len(turns)} | answers naming no look-alike | {clean}/{len(turns)} |",
        f"| multi-topic questions | {len(questions)} | answers naming a person/place not asked about | "
        f"{len(wrong)}/{len(answered)} |",
        f"| multi-topic questions | {len(questions)} | false abstentions (gap or abstain where the store answers) "
        f"| {len(false_abstain)}/{sum(q.expect == 'answer' for q in questions)} |",
        f"| multi-topic questions | {len(questions)} | combinations the store lacks, said so | "
        f"{gaps_right}/{sum(q.expect == 'gap' for q in questions)} |",
        f"| multi-topic questions | {len(questions)} | answers containing the expected words | "
        f"{sum(not q.missing for q in answered)}/{len(answered)} |",
    ]
    misses = [f"- follow-up “{t.ask}” ({t.conversation}): {t.why}" for t in turns if not t.right]
    misses += [f"- question “{q.ask}”: expected {q.expect}, got {q.got}" + (f", names {q.wrong_names}" if q.wrong_names
               else "") for q in questions if q.got != q.expect or q.wrong_names]
    misses += [f"- question “{q.ask}”: the answer lacks {q.missing}" for q in answered if q.missing]
    return "\n".join(lines + (["", *misses] if misses else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the fixture file (articles, "
                        "conversations, questions); default: the look-alike fixtures in tests/")
    parser.add_argument("--out", type=Path, help="write the table into this markdown file (between markers)")
    parser.add_argument("--show", action="store_true", help="print every resolved question and answer")
    args = parser.parse_args(argv)
    data = load(args.data)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = build(Path(tmp) / "data", data)
        try:
            engine = Engine(Settings(data_dir=Path(tmp), answer_mode="extractive").llm, corpus)
            turns = run_conversations(engine, data)
            questions = run_questions(engine, data)
        finally:
            corpus.close()
    if args.show:
        for t in turns:
            print(f"[{'ok' if t.right else 'MISS'}] {t.ask!r} -> {t.resolved or t.clarify!r}\n    {t.answer[:300]!r}")
        for q in questions:
            print(f"[{q.got}/{q.expect}] {q.ask!r}\n    {q.answer[:300]!r}")
    result = table(turns, questions)
    print(result)
    if args.out:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        command = (f"bench/bench_conversations.py --data {args.data.name} run {when}, "
                   f"{time.monotonic() - started:.0f} s; {len(data['articles'])} fixture articles")
        write_out(args.out, result, command, f"bench_conversations:{args.data.stem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
