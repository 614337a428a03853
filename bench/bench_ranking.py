"""Ranking on seen and unseen weeks: tune on two RealTime QA weeks, validate on the other two, in one run.

    .venv/bin/python bench/bench_ranking.py [--data DIR] [--store DIR] [--dev W W] [--val W W] [--grid]

The corpus is every article of all the weeks (each week's questions then also face the other weeks'
articles as distractors); the questions are split by week. Every system ranks documents from the same
chunks: BM25 alone, MiniLM alone, a plain reciprocal-rank fusion of the two (k=60, 60 candidates per
side), and ``Corpus.ranked_documents`` (what sitrep ships). ``--grid`` also scores the fusion settings
searched on the dev weeks, to show what the shipped constants were chosen from and how each carries over.
The store is built once with the real model (``--store`` keeps it for the next run).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.realtimeqa import load_benchmark  # noqa: E402
from retrieval.corpus import Corpus, CorpusConfig  # noqa: E402
from retrieval.evaluate import EvalCase, score  # noqa: E402
from retrieval.search import FusionWeights, fuse_documents, query_terms, rrf  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "benchmarks" / "realtimeqa-2022-dev"
DEPTH = 60


def doc_keys(corpus: Corpus) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Each chunk's document, and each document's keys (its id and every URL that carries it)."""
    conn = corpus.state.conn
    doc_of = {r[0]: r[1] for r in conn.execute("SELECT chunk_id, doc_id FROM chunks")}
    keys = {r[0]: {r[0], r[1]} - {""} for r in conn.execute("SELECT doc_id, url FROM documents")}
    for doc, links in corpus.state.sources_of(list(keys)).items():
        keys[doc].update(str(link["url"]) for link in links)
    return doc_of, keys


def top_docs(chunks: Sequence[str], doc_of: dict[str, str], k: int = 10) -> list[str]:
    return list(dict.fromkeys(doc_of[c] for c in chunks))[:k]


def run_systems(corpus: Corpus, questions: Sequence[str], grid: bool) -> dict[str, list[list[str]]]:
    """Each system's top-10 documents per question, all from the same candidate lists."""
    doc_of, _ = doc_keys(corpus)
    vectors = corpus.embed(list(questions))
    systems: dict[str, list[list[str]]] = {"BM25": [], "MiniLM": [], "plain RRF": [], "sitrep hybrid": []}
    settings = list(itertools.product((10, 30, 60), (1.0, 1.5), (0.0, 0.5, 1.0), (0.0, 0.5, 1.0))) if grid else []
    for s in settings:
        systems[f"grid k={s[0]} lex={s[1]} title={s[2]} names={s[3]}"] = []
    for q, vec in zip(questions, vectors, strict=True):
        dense = [c for c, _ in corpus.store.query(vec, DEPTH, None)]
        lexical = [c for c, _ in corpus.state.lexical(query_terms(q), DEPTH, None, None)]
        systems["BM25"].append(top_docs(lexical, doc_of))
        systems["MiniLM"].append(top_docs(dense, doc_of))
        fused = rrf([dense, lexical])
        systems["plain RRF"].append(top_docs(sorted(fused, key=lambda c: (-fused[c], c)), doc_of))
        systems["sitrep hybrid"].append([h.doc_id for h in corpus.search(q, k=10, max_per_doc=1, recency=False,
                                                                          query_vector=vec)])
        rows = corpus.state.chunk_rows(list(dict.fromkeys(dense + lexical))) if settings else {}
        for k, lex_w, title_w, names_w in settings:
            weights = FusionWeights(rrf_k=k, lexical=lex_w, title=title_w, names=names_w)
            ranked = fuse_documents(q, dense, lexical, rows, weights)
            systems[f"grid k={k} lex={lex_w} title={title_w} names={names_w}"].append(ranked[:10])
    return systems


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--store", type=Path, default=Path("/tmp/sitrep-bench-ranking"))
    ap.add_argument("--dev", nargs=2, default=["20220617", "20220624"])
    ap.add_argument("--val", nargs=2, default=["20220701", "20220708"])
    ap.add_argument("--grid", action="store_true", help="also score the fusion settings searched on the dev weeks")
    args = ap.parse_args(argv)
    everything = load_benchmark([args.data], [*args.dev, *args.val])
    corpus = Corpus.open(CorpusConfig(data_dir=args.store))
    try:
        if corpus.stats().documents == 0:
            print(f"ingesting {len(everything.articles)} articles with the model ...", file=sys.stderr)
            corpus.ingest_articles(everything.articles)
        _, keys = doc_keys(corpus)
        results: dict[str, dict[str, dict[str, float | int]]] = {}
        for split, weeks in (("dev", args.dev), ("validation", args.val)):
            questions = load_benchmark([args.data], weeks).questions
            cases = [EvalCase(q.question, q.gold_urls, "url") for q in questions]
            start = time.perf_counter()
            ranked = run_systems(corpus, [q.question for q in questions], args.grid)
            print(f"{split}: {len(questions)} questions in {time.perf_counter() - start:.0f} s", file=sys.stderr)
            for name, per_question in ranked.items():
                results.setdefault(name, {})[split] = score(
                    (c, [keys[d] for d in docs]) for c, docs in zip(cases, per_question, strict=True))
        stats = corpus.stats()
    finally:
        corpus.close()
    base = results["plain RRF"]
    load = os.getloadavg()
    print(f"Corpus: weeks {', '.join([*args.dev, *args.val])}, {stats.documents} documents, {stats.chunks} chunks; "
          f"dev weeks {' + '.join(args.dev)} (n={base['dev']['n']}), validation weeks {' + '.join(args.val)} "
          f"(n={base['validation']['n']}); load average {load[0]:.1f}.\n")
    print("| system | dev MRR@10 | dev hits@1 / @10 | validation MRR@10 | validation hits@1 / @10 | "
          "validation MRR ÷ plain RRF |")
    print("|---|---|---|---|---|---|")
    order = sorted(results, key=lambda n: (n.startswith("grid"), -float(results[n]["dev"]["mrr@10"])))
    for name in order:
        d, v = results[name]["dev"], results[name]["validation"]
        ratio = float(v["mrr@10"]) / float(base["validation"]["mrr@10"]) if base["validation"]["mrr@10"] else np.nan
        print(f"| {name} | {d['mrr@10']:.3f} | {d['hits@1']:.3f} / {d['hits@10']:.3f} | {v['mrr@10']:.3f} | "
              f"{v['hits@1']:.3f} / {v['hits@10']:.3f} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
