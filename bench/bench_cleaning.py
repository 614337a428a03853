"""Page-clutter cleaning measured on real news pages: what is removed, what is left, what was removed wrongly.

    .venv/bin/python bench/bench_cleaning.py [--data DIR] [--sample 200] [--show-sample] [--outputs]
        [--store bench-data/dev-weeks]
    .venv/bin/python bench/bench_cleaning.py --timing [--data DIR]
    .venv/bin/python bench/bench_cleaning.py --snapshot FILE [--data DIR]

Runs the ingest pipeline's preparation (:func:`retrieval.prepare.prepare`: normalize, clean, outlet) and the
real chunker over the RealTime QA articles of the tuning weeks (20220617, 20220624, where the rules were
written) and, separately, the held-out weeks (20220701, 20220708). For each split it prints:

* removed lines by rule;
* an audit: a blunt list of clutter signatures, written apart from the cleaner's rules, counted over every
  chunk sentence before and after cleaning, and over a random sample of ``--sample`` chunk sentences (the
  flagged sample sentences are listed; ``--show-sample`` lists the whole sample for reading by eye);
* suspected false removals: removed lines that read like story prose (long, ending like a sentence, and
  free of audit signatures), listed for review;
* articles with no outlet before and after (records with a URL but no ``source``).

With ``--outputs`` it also samples what a reader sees: the weeks' recent articles (see
:func:`recent_articles`) go into a store (built once under ``--store``, re-cleaned when the cleaner changed),
and the sentences of the answers to the week's questions (asked as of their date) and of a summary without
a topic and a digest for each day (from a week before the first question to the last) are pooled;
``--sample`` of them are drawn and every one the audit flags is listed (``--show-sample`` lists all).

``--timing`` instead prints what cleaning costs: CPU per article, per chunk and per line of
:func:`retrieval.cleaning.clean_article` over every article of every week (the best of three passes, with the
load average). ``--snapshot FILE`` writes every article's cleaned title, text and removed lines to FILE (one JSON
record per article, in load order) and prints its SHA-256: two versions of the cleaner that must agree byte for
byte (a speed refactor) are compared by their snapshots.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make `bench` and `retrieval` importable from the checkout
    sys.path.insert(0, str(REPO))

from bench.realtimeqa import Question, load_benchmark  # noqa: E402
from retrieval.chunking import ChunkingConfig, chunk_text  # noqa: E402
from retrieval.cleaning import CLEANER_VERSION, clean_article  # noqa: E402
from retrieval.corpus import Corpus, CorpusConfig  # noqa: E402
from retrieval.documents import Article  # noqa: E402
from retrieval.prepare import prepare  # noqa: E402
from retrieval.text import normalize, sentences  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "benchmarks" / "realtimeqa-2022-dev"
SPLITS = {"tuning": ("20220617", "20220624"), "held-out": ("20220701", "20220708")}

# Signatures of clutter, deliberately independent of retrieval/cleaning.py's rules: if the cleaner missed a
# kind of clutter, these should still see it.
AUDIT = re.compile(
    r"\bCNN(?: Business)? —|\((?:CNN|AP|Reuters|AFP)(?: Business)?\)|Getty Images|/(?:Reuters|AP|AFP)\b|"
    r"AP Photo|Photo by|Photo:|Sign up|newsletter|Editor['’]s note|^Related|^More:|Read more|READ MORE|"
    r"Video Ad Feedback|Source: CNN|JUST WATCHED|MUST WATCH|contributed to this report|^Contributing:|"
    r"\bFollow\b.{0,60}\bon Twitter|\S+@\S+\.(?:com|org)|Subscribe|(?:\.\.\.|…)$|Click here|Copyright|©|"
    r"All rights reserved|Advertisement|content partner|Courtesy\b|"
    # link prompts, quiz answers and newsletter chatter ("Julius here, tagging in"), found reading samples
    r"\b(?:read|learn|find out|see) more\b.{0,80}\bhere\b|\bhere\.$|^[A-D]\. \S+$|\btagging in\b|"
    r"^\w+ here[,.!]|\bclick\b|\bsign up\b|\bpodcast\b.{0,40}\b(?:listen|subscribe)\b|\bGetty\b",
    re.IGNORECASE,
)
MARKERS = re.compile(r"\s*\[\d+(?:[,;–-]\s*\d+)*\]")
STORY_PREFIX = re.compile(r"^(?:- )?(?:\*\*.*?\*\* \([^)]*\): |\d{1,2} \w{3} \d{4} — |\d{4}-\d{2}-\d{2}: )")


@dataclass
class SplitResult:
    name: str
    weeks: Sequence[str]
    articles: int = 0
    without_outlet_before: int = 0
    without_outlet_after: int = 0
    removed: Counter[str] = field(default_factory=Counter)
    sentences_before: int = 0
    sentences_after: int = 0
    audit_before: int = 0
    audit_after: int = 0
    sample: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)
    suspects: list[tuple[str, str]] = field(default_factory=list)
    output_pool: int = 0  # answer, summary and digest sentences (with --outputs)
    output_sample: list[str] = field(default_factory=list)
    output_flagged: list[str] = field(default_factory=list)


def _chunk_sentences(text: str, title: str) -> list[str]:
    spans = chunk_text(text, title, ChunkingConfig(), None)
    seen: set[str] = set()
    out = []
    for span in spans:  # chunks overlap by a sentence: count each sentence once
        for sentence in sentences(text[span.start : span.end]):
            if sentence not in seen:
                seen.add(sentence)
                out.append(sentence)
    return out


def _reads_like_prose(line: str) -> bool:
    return len(line.split()) >= 25 and bool(re.search(r"[.!?][\"'”’)]*$", line)) and not AUDIT.search(line)


def measure(name: str, articles: Sequence[Article], sample_size: int, seed: int) -> SplitResult:
    """Clean every article the way ingest does and count what was removed and what clutter is left."""
    result = SplitResult(name, ())
    pool: list[str] = []
    for loaded in articles:
        article = replace(loaded, source="")  # as a JSON record without "source" arrives
        result.articles += 1
        result.without_outlet_before += not article.source
        prepared = prepare(article)
        result.without_outlet_after += not prepared.article.source
        before = sentences(normalize(article.text))
        after = _chunk_sentences(prepared.article.text, prepared.article.title)
        result.sentences_before += len(before)
        result.sentences_after += len(after)
        result.audit_before += sum(bool(AUDIT.search(s)) for s in before)
        result.audit_after += sum(bool(AUDIT.search(s)) for s in after)
        pool += after
        for removal in prepared.removed:
            result.removed[removal.rule] += 1
            if _reads_like_prose(removal.text):
                result.suspects.append((removal.rule, removal.text))
    result.sample = random.Random(seed).sample(pool, min(sample_size, len(pool)))
    result.flagged = [s for s in result.sample if AUDIT.search(s)]
    return result


def output_sentences(answers: Sequence[str]) -> list[str]:
    """The sentences a reader sees in answers, summaries and digests: markers, list dashes, story titles and
    dates taken off; headings and the lines sitrep writes itself (counts, "Also in this window") left out."""
    out: list[str] = []
    for text in answers:
        for line in text.split("\n"):
            line = line.strip()
            if not MARKERS.search(line) or line.startswith(("*What changed", "Latest figure")):
                continue  # sitrep's own lines: coverage, headings, figures (their sentences are cited elsewhere)
            body = MARKERS.sub("", STORY_PREFIX.sub("", line)).replace("**", "")
            out += [s for s in sentences(body) if len(s.split()) >= 3]
    return list(dict.fromkeys(out))


RECENT = timedelta(days=14)


def recent_articles(weeks: Sequence[str], data: Path) -> tuple[list[Article], list[Question]]:
    """The weeks' articles published in the ``RECENT`` days up to the last question (and every gold article),
    and the questions. Most of a week's search results are years old: leaving them out makes a store three
    times quicker to embed, and summaries and digests read recent articles only anyway."""
    bench = load_benchmark([data], weeks)
    days = [q.question_date.replace(tzinfo=q.question_date.tzinfo or UTC) for q in bench.questions if q.question_date]
    low, high = min(days) - RECENT, max(days) + timedelta(days=1)
    gold = set().union(*(q.gold_urls for q in bench.questions))

    def recent(article: Article) -> bool:
        when = article.published
        return bool(when) and low <= when.replace(tzinfo=when.tzinfo or UTC) <= high  # type: ignore[union-attr]

    return [a for a in bench.articles if recent(a) or a.url in gold], bench.questions


def dev_store(name: str, weeks: Sequence[str], data: Path, store: Path) -> tuple[Corpus, list[Question]]:
    """The store of :func:`recent_articles` under ``store/name``: built on first use, re-cleaned when the cleaner
    changed since (re-ingesting replaces the documents whose cleaned text changed)."""
    articles, questions = recent_articles(weeks, data)
    path = store / name
    stamp = path / "cleaner-version"
    corpus = Corpus.open(CorpusConfig(data_dir=path))
    if corpus.stats().documents == 0 or not stamp.exists() or stamp.read_text() != CLEANER_VERSION:
        corpus.ingest_articles(articles)
        stamp.write_text(CLEANER_VERSION)
    return corpus, questions


def sample_outputs(name: str, weeks: Sequence[str], data: Path, store: Path, sample_size: int, seed: int
                   ) -> tuple[int, list[str], list[str]]:
    """(sentences pooled, the sample, the flagged ones) of answers, summaries and digests over the weeks."""
    from bench.bench_answers import asked_at
    from bot.answer.engine import Engine
    from bot.digest.build import build_digest
    from bot.settings import Settings

    corpus, questions = dev_store(name, weeks, data, store)
    engine = Engine(Settings(data_dir=store / name, answer_mode="extractive").llm, corpus)
    texts: list[str] = []
    # every day of the week before the first question up to the last one: enough sentences to sample from
    asked = sorted({asked_at(q) for q in questions})
    days = [asked[-1] - timedelta(days=n) for n in range((asked[-1] - asked[0]).days + 7, -1, -1)]
    for question in questions:
        texts.append(engine.at(asked_at(question)).ask(question.question).answer)
    for day in days:
        replay = engine.at(day)
        texts.append(replay.summarize().answer)
        digest = build_digest(corpus, replay.summarize_passages, since=day - timedelta(days=1), until=day,
                              timezone="UTC", mode="extractive")
        texts.append(digest.markdown)
    corpus.close()
    pool = output_sentences(texts)
    sample = random.Random(seed).sample(pool, min(sample_size, len(pool)))
    return len(pool), sample, [s for s in sample if AUDIT.search(s)]


def report(results: Sequence[SplitResult], show_sample: bool) -> None:
    print("| split | weeks | articles | no outlet before → after | sentences before → after | removed lines "
          "| audit hits before → after (all sentences) | audit hits in sample | suspect false removals |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r.name} | {', '.join(r.weeks)} | {r.articles} | {r.without_outlet_before} → "
              f"{r.without_outlet_after} | {r.sentences_before} → {r.sentences_after} | "
              f"{sum(r.removed.values())} | {r.audit_before} → {r.audit_after} | {len(r.flagged)} of "
              f"{len(r.sample)} | {len(r.suspects)} |")
    if any(r.output_pool for r in results):
        print("\n| split | answer/summary/digest sentences | sampled | audit hits in sample |\n|---|---:|---:|---:|")
        for r in results:
            print(f"| {r.name} | {r.output_pool} | {len(r.output_sample)} | {len(r.output_flagged)} |")
    for r in results:
        if r.output_pool:
            print(f"\n## {r.name}: sampled answer/summary/digest sentences the audit flags ({len(r.output_flagged)})")
            for s in r.output_flagged:
                print(f"  - {s[:240]}")
            if show_sample:
                print(f"\n## {r.name}: the {len(r.output_sample)} sampled answer/summary/digest sentences")
                for n, s in enumerate(r.output_sample, start=1):
                    print(f"  {n:3}. {s[:240]}")
        print(f"\n## {r.name}: removed lines by rule")
        for rule, n in r.removed.most_common():
            print(f"  {rule:14} {n}")
        print(f"\n## {r.name}: sample sentences the audit flags ({len(r.flagged)})")
        for s in r.flagged:
            print(f"  - {s[:240]}")
        print(f"\n## {r.name}: removed lines that read like prose, for review ({len(r.suspects)})")
        for rule, text in r.suspects:
            print(f"  - [{rule}] {text[:240]}")
        if show_sample:
            print(f"\n## {r.name}: the {len(r.sample)} sampled chunk sentences")
            for n, s in enumerate(r.sample, start=1):
                print(f"  {n:3}. {s[:240]}")


def timing(articles: Sequence[Article], passes: int = 3) -> str:
    """A table of the CPU :func:`clean_article` takes over ``articles`` (normalized outside the clock): the best
    of ``passes`` passes, per article, per chunk the cleaned text makes and per input line."""
    texts = [(normalize(a.text), a.title) for a in articles]
    best = float("inf")
    for _ in range(passes):
        start = time.process_time()
        cleaned = [clean_article(text, title) for text, title in texts]
        best = min(best, time.process_time() - start)
    chunks = sum(len(chunk_text(c.text, c.title, ChunkingConfig(), None)) for c in cleaned)
    lines = sum(text.count("\n") + 1 for text, _ in texts)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return ("| cleaner | articles | chunks | lines | CPU s | ms per article | ms per chunk | µs per line | load |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---|\n"
            f"| {CLEANER_VERSION} | {len(texts)} | {chunks} | {lines} | {best:.2f} | {1000 * best / len(texts):.2f} "
            f"| {1000 * best / chunks:.3f} | {1e6 * best / lines:.1f} | {load} |")


def snapshot(articles: Sequence[Article], path: Path) -> str:
    """Write what :func:`prepare` makes of every article to ``path`` (JSON lines) and return its SHA-256."""
    with path.open("w", encoding="utf-8") as out:
        for article in articles:
            prepared = prepare(replace(article, source=""))
            record = {"url": article.url, "title": prepared.article.title, "text": prepared.article.text,
                      "removed": [r.to_json() for r in prepared.removed]}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of RealTime QA week files")
    parser.add_argument("--sample", type=int, default=200, help="chunk sentences sampled per split (default 200)")
    parser.add_argument("--seed", type=int, default=11, help="random seed of the sample")
    parser.add_argument("--show-sample", action="store_true", help="list every sampled sentence")
    parser.add_argument("--outputs", action="store_true",
                        help="also sample sentences of answers, summaries and digests (builds a store per split)")
    parser.add_argument("--store", type=Path, default=REPO / "bench-data" / "dev-weeks",
                        help="where --outputs keeps its stores (built once, re-cleaned when the cleaner changes)")
    parser.add_argument("--timing", action="store_true",
                        help="only print the CPU cleaning takes per article, chunk and line (every week)")
    parser.add_argument("--snapshot", type=Path, metavar="FILE",
                        help="only write every article's cleaned text to FILE and print its SHA-256")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"bench_cleaning: no benchmark data in {args.data}; pass --data DIR", file=sys.stderr)
        return 2
    if args.timing or args.snapshot:
        every_week = load_benchmark([args.data], None).articles
        if args.timing:
            print(timing(every_week))
        if args.snapshot:
            print(f"{snapshot(every_week, args.snapshot)}  {args.snapshot} ({len(every_week)} articles)")
        return 0
    results = []
    for name, weeks in SPLITS.items():
        bench = load_benchmark([args.data], weeks)
        result = measure(name, bench.articles, args.sample, args.seed)
        result.weeks = weeks
        if args.outputs:
            result.output_pool, result.output_sample, result.output_flagged = sample_outputs(
                name, weeks, args.data, args.store, args.sample, args.seed)
        results.append(result)
    report(results, args.show_sample)
    return 0


if __name__ == "__main__":
    sys.exit(main())
