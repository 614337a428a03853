"""Ranking on seen and unseen weeks: tune on two RealTime QA weeks, validate on the other two, in one run.

    .venv/bin/python bench/bench_ranking.py [--data DIR] [--store DIR] [--dev W W] [--val W W] [--grid]
        [--database-url postgresql://…]

The corpus is every article of all the weeks (each week's questions then also face the other weeks'
articles as distractors); the questions are split by week. Every system ranks documents from the same
chunks: BM25 alone, MiniLM alone, a plain reciprocal-rank fusion of the two (k=60, 60 candidates per
side), that fusion with sitrep's recency prior, and ``Corpus.search`` in hybrid mode (what sitrep ships:
the fusion plus whole-document BM25 of the best documents as a third list, and the recency prior).
``--grid`` also scores the fusion settings searched on the dev weeks, to show what the shipped constants
were chosen from and how each carries over. The query time of hybrid and plain-RRF search is measured
alternately on the same questions.
The store is built once with the real model (``--store`` keeps it for the next run, e.g. under
bench-data, so a trial does not embed again).
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
from retrieval.lexical import document_scores  # noqa: E402
from retrieval.search import (  # noqa: E402
    FusionWeights,
    document_pool,
    fuse_documents,
    fused_scores,
    query_terms,
    rrf,
)

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
    systems: dict[str, list[list[str]]] = {"BM25": [], "MiniLM": [], "plain RRF": [], "plain RRF + recency prior": [],
                                           "sitrep hybrid": []}
    settings = [FusionWeights(rrf_k=k, title=t, names=n, documents=d, doc_pool=p) for k, t, n, d, p in
                itertools.product((30, 60), (0.0, 0.5), (0.0, 0.5), (0.0, 0.5, 1.0, 1.5), (10, 20, 40))
                if d or p == 20] if grid else []
    for w in settings:
        systems[_grid_name(w)] = []
    for q, vec in zip(questions, vectors, strict=True):
        dense = [c for c, _ in corpus.store.query(vec, DEPTH, None)]
        lexical = [c for c, _ in corpus.state.lexical(query_terms(q), DEPTH, None, None)]
        systems["BM25"].append(top_docs(lexical, doc_of))
        systems["MiniLM"].append(top_docs(dense, doc_of))
        fused = rrf([dense, lexical])
        systems["plain RRF"].append(top_docs(sorted(fused, key=lambda c: (-fused[c], c)), doc_of))
        systems["plain RRF + recency prior"].append(
            [h.doc_id for h in corpus.search(q, k=10, max_per_doc=1, mode="rrf", query_vector=vec)])
        systems["sitrep hybrid"].append([h.doc_id for h in corpus.search(q, k=10, max_per_doc=1, query_vector=vec)])
        rows = corpus.state.chunk_rows(list(dict.fromkeys(dense + lexical))) if settings else {}
        for weights in settings:
            pool = document_pool(fused_scores(q, dense, lexical, rows, weights), rows, weights.doc_pool)
            doc_scores = document_scores(corpus.state.conn, pool, q) if weights.documents else None
            ranked = fuse_documents(q, dense, lexical, rows, weights, doc_scores)
            systems[_grid_name(weights)].append(ranked[:10])
    return systems


def _grid_name(w: FusionWeights) -> str:
    return f"grid k={w.rrf_k} title={w.title} names={w.names} documents={w.documents} pool={w.doc_pool}"


def query_times(corpus: Corpus, questions: Sequence[str], rounds: int = 3) -> dict[str, float]:
    """Median ms of ``Corpus.search`` per mode (hybrid and plain RRF alternate question by question)."""
    times: dict[str, list[float]] = {"hybrid": [], "rrf": []}
    for _ in range(rounds):
        for q in questions:
            for mode, spent in times.items():
                start = time.perf_counter()
                corpus.search(q, k=10, max_per_doc=1, recency=None if mode == "hybrid" else False, mode=mode)
                spent.append((time.perf_counter() - start) * 1000)
    return {mode: float(np.median(spent)) for mode, spent in times.items()}


def evaluate(corpus: Corpus, args: argparse.Namespace) -> tuple[dict[str, dict[str, dict[str, float | int]]],
                                                             dict[str, float], list[str]]:
    """Every system's scores on the dev and validation weeks, query times, and all the questions."""
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
    all_questions = [q.question for q in load_benchmark([args.data], [*args.dev, *args.val]).questions]
    return results, query_times(corpus, all_questions), all_questions


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--store", type=Path, default=Path("bench-data/ranking"))
    ap.add_argument("--dev", nargs=2, default=["20220617", "20220624"])
    ap.add_argument("--val", nargs=2, default=["20220701", "20220708"])
    ap.add_argument("--grid", action="store_true", help="also score the fusion settings searched on the dev weeks")
    ap.add_argument("--database-url", metavar="URL",
                    help="also rank on PostgreSQL: the store's state is copied (`sitrep migrate`) into a scratch "
                         "schema of this database and every system is scored on both engines in the same run")
    args = ap.parse_args(argv)
    everything = load_benchmark([args.data], [*args.dev, *args.val])
    corpus = Corpus.open(CorpusConfig(data_dir=args.store))
    try:
        if corpus.stats().documents == 0:
            print(f"ingesting {len(everything.articles)} articles with the model ...", file=sys.stderr)
            corpus.ingest_articles(everything.articles)
        results, latency, all_questions = evaluate(corpus, args)
        stats = corpus.stats()
        if args.database_url:
            results, latency = _on_postgresql(args, results, latency)
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
    timed = ", ".join(f"{mode} {ms:.1f} ms" for mode, ms in latency.items())
    print(f"\nQuery time (Corpus.search, k=10, median of {3 * len(all_questions)}, alternating): {timed}.")
    return 0


def _on_postgresql(args: argparse.Namespace, results: dict[str, dict[str, dict[str, float | int]]],
                   latency: dict[str, float]) -> tuple[dict[str, dict[str, dict[str, float | int]]], dict[str, float]]:
    """The same scores with the state in PostgreSQL (same chunks, same vectors), added as "… on PostgreSQL"
    rows; prints the hybrid MRR@10 difference per split."""
    from bench.pgschema import scratch_schema
    from bot.cli.migrate import state_components
    from retrieval.state_copy import copy_state
    from retrieval.statedb import state_path

    with scratch_schema(args.database_url, "sitrep_bench_ranking") as url:
        copy_state(state_path(args.store), url, state_components())
        pg = Corpus.open(CorpusConfig(data_dir=args.store, database_url=url))
        try:
            pg_results, pg_latency, _ = evaluate(pg, args)
        finally:
            pg.close()
    both = dict(results)
    for name in ("BM25", "plain RRF", "sitrep hybrid"):
        both[f"{name} on PostgreSQL"] = pg_results[name]
    for split in ("dev", "validation"):
        diff = float(pg_results["sitrep hybrid"][split]["mrr@10"]) - float(results["sitrep hybrid"][split]["mrr@10"])
        print(f"hybrid MRR@10 {split}: PostgreSQL − SQLite = {diff:+.3f}", file=sys.stderr)
    timed = {f"{mode} SQLite": ms for mode, ms in latency.items()}
    timed.update({f"{mode} PostgreSQL": ms for mode, ms in pg_latency.items()})
    return both, timed


if __name__ == "__main__":
    raise SystemExit(main())
