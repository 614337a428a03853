"""Page-clutter cleaning measured on real news pages: what is removed, what is left, what was removed wrongly.

    .venv/bin/python bench/bench_cleaning.py [--data DIR] [--sample 200] [--show-sample]

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
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make `bench` and `retrieval` importable from the checkout
    sys.path.insert(0, str(REPO))

from bench.realtimeqa import load_benchmark  # noqa: E402
from retrieval.chunking import ChunkingConfig, chunk_text  # noqa: E402
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
    r"All rights reserved|Advertisement|content partner|Courtesy\b",
    re.IGNORECASE,
)


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


def report(results: Sequence[SplitResult], show_sample: bool) -> None:
    print("| split | weeks | articles | no outlet before → after | sentences before → after | removed lines "
          "| audit hits before → after (all sentences) | audit hits in sample | suspect false removals |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r.name} | {', '.join(r.weeks)} | {r.articles} | {r.without_outlet_before} → "
              f"{r.without_outlet_after} | {r.sentences_before} → {r.sentences_after} | "
              f"{sum(r.removed.values())} | {r.audit_before} → {r.audit_after} | {len(r.flagged)} of "
              f"{len(r.sample)} | {len(r.suspects)} |")
    for r in results:
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of RealTime QA week files")
    parser.add_argument("--sample", type=int, default=200, help="chunk sentences sampled per split (default 200)")
    parser.add_argument("--seed", type=int, default=11, help="random seed of the sample")
    parser.add_argument("--show-sample", action="store_true", help="list every sampled sentence")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"bench_cleaning: no benchmark data in {args.data}; pass --data DIR", file=sys.stderr)
        return 2
    results = []
    for name, weeks in SPLITS.items():
        bench = load_benchmark([args.data], weeks)
        result = measure(name, bench.articles, args.sample, args.seed)
        result.weeks = weeks
        results.append(result)
    report(results, args.show_sample)
    return 0


if __name__ == "__main__":
    sys.exit(main())
