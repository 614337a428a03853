"""Figure questions: does the answer give the gold figure, with and without the figures line (bot/answer/figures.py)?

    .venv/bin/python bench/bench_figures.py [--data DIR] [--store bench-data/dev-weeks] [--show]

Two question sets, extractive answers (the figures line is the same in LLM mode: it is built from passages):

* the RealTime QA dev weeks' number questions (the gold choice is a number: "$19 million", "63", "60%"),
  asked as of their question date over the weeks' recent articles (the store of bench/bench_cleaning.py);
  weeks 20220617 + 20220624 are the ones the rules were written against, 20220701 + 20220708 are reported
  separately as held-out;
* a conflicting-tolls set written for sitrep (tests/fixtures_news.py: a toll that rises over three days with
  a vague figure beside the exact ones), where the right figure is the newest exact one.

For each question: whether the answer contains the gold figure without the line and with it, whether the
line's first (newest) figure is the gold one, and whether the line gives a figure at all.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_answers import asked_at  # noqa: E402
from bench.bench_cleaning import dev_store  # noqa: E402
from bench.realtimeqa import Question  # noqa: E402
from bot.answer import evaluation as answer_eval  # noqa: E402
from bot.answer.engine import Engine  # noqa: E402
from bot.settings import Settings  # noqa: E402
from retrieval.corpus import Corpus, CorpusConfig  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "benchmarks" / "realtimeqa-2022-dev"
SPLITS = {"tuning": ("20220617", "20220624"), "held-out": ("20220701", "20220708")}
NUMBER = re.compile(r"^[$£€]?\d[\d,.]*\s*(?:%|percent|million|billion)?$")
# The conflicting-tolls set: (question, asked at, the newest exact figure)
OWN = (
    ("What is the latest death toll in the Velmora bridge collapse?", "2024-03-06T12:00:00+00:00", "44"),
    ("How many people died in the Velmora bridge collapse?", "2024-03-05T12:00:00+00:00", "41"),
    ("How many people were killed when the Old Mill bridge collapsed?", "2024-03-04T20:00:00+00:00", "38"),
    ("How many residents have been displaced by the Arrow valley floods?", "2024-03-06T12:00:00+00:00", "1,500"),
    ("How many people were injured in the Velmora bridge collapse?", "2024-03-06T12:00:00+00:00", "60"),
)


@dataclass
class Row:
    question: str
    gold: str
    without: bool
    with_line: bool
    line: str
    first_is_gold: bool


def ask(engine: Engine, question: str, when: datetime, gold: str) -> Row:
    """The answer with the figures line, and the same answer without it (the line is its last line)."""
    answer = engine.at(when).ask(question)
    line = ""
    if answer.answer.rsplit("\n", 1)[-1].startswith(("Latest figure: ", "Latest figures, newest first: ")):
        line = answer.answer.rsplit("\n", 1)[-1]
    body = answer.answer[: len(answer.answer) - len(line)]
    first = re.sub(r"^Latest figures?(?:, newest first)?: ", "", line).split(" (")[0] if line else ""
    return Row(question, gold, answer_eval.contains_gold(body, [gold]),
               answer_eval.contains_gold(answer.answer, [gold]), line,
               bool(first) and answer_eval.contains_gold(first, [gold]))


def realtimeqa_rows(engine: Engine, questions: Sequence[Question]) -> list[Row]:
    rows = []
    for q in questions:
        if not q.answers or not NUMBER.match(q.answers[0].strip()):
            continue
        rows.append(ask(engine, q.question, asked_at(q), q.answers[0]))
    return rows


def table(results: dict[str, list[Row]]) -> list[str]:
    lines = ["| set | number questions | gold in answer without the line | with the line | line given | "
             "line's newest figure is gold |", "|---|---:|---:|---:|---:|---:|"]
    for name, rows in results.items():
        n = len(rows)
        lines.append(f"| {name} | {n} | {sum(r.without for r in rows)} | {sum(r.with_line for r in rows)} | "
                     f"{sum(bool(r.line) for r in rows)} | {sum(r.first_is_gold for r in rows)} |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of RealTime QA week files")
    parser.add_argument("--store", type=Path, default=ROOT / "bench-data" / "dev-weeks",
                        help="where the benchmark store is built once and reused")
    parser.add_argument("--show", action="store_true", help="print each question, gold and figures line")
    args = parser.parse_args(argv)
    settings = Settings(data_dir=args.store, answer_mode="extractive")
    results: dict[str, list[Row]] = {}
    from tests.fixtures_news import week_articles  # the conflicting-tolls set (no benchmark data needed)

    with tempfile.TemporaryDirectory() as tmp:
        own = Corpus.open(CorpusConfig(data_dir=Path(tmp)))
        own.ingest_articles(week_articles())
        engine = Engine(Settings(data_dir=Path(tmp), answer_mode="extractive").llm, own)
        results["conflicting tolls (own)"] = [ask(engine, q, datetime.fromisoformat(at), gold) for q, at, gold in OWN]
        own.close()
    if args.data.is_dir():
        for name, weeks in SPLITS.items():
            corpus, questions = dev_store(name, weeks, args.data, args.store)  # shared with bench_cleaning
            engine = Engine(settings.llm, corpus)
            results[f"RealTime QA {name} ({', '.join(weeks)})"] = realtimeqa_rows(engine, questions)
            corpus.close()
    else:
        print(f"bench_figures: no benchmark data in {args.data}; the own set only", file=sys.stderr)
    print("\n".join(table(results)))
    if args.show:
        for name, rows in results.items():
            print(f"\n## {name}")
            for r in rows:
                print(f"- {r.question}\n  gold {r.gold!r}; without {r.without}, with {r.with_line}; "
                      f"line: {r.line or '(none)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
