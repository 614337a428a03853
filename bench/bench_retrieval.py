"""Retrieval benchmark: quality, ingestion throughput, query latency and memory, printed as one table.

    .venv/bin/python bench/bench_retrieval.py [--data DIR ...] [--synthetic 100000] [--out docs/benchmarks.md]

1. Quality on RealTime QA (see ``../shared/benchmarks/README.md``): hits@1/5/10 and MRR@10 of dense-only,
   lexical-only and hybrid search, in one run over the same chunks.
2. Ingestion throughput of the whole pipeline against raw embedding of the exact texts it embedded, and
   re-ingesting the unchanged corpus (which must compute no embeddings).
3. Query latency (``Corpus.search``: embed the query, both searches, fusion) on that corpus and on a
   synthetic store of ``--synthetic`` chunks, written through the real ingest path with a stand-in embedder
   that returns real chunk vectors plus noise (queries are embedded by the real model).
4. Peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make `bench` and `retrieval` importable from the checkout
    sys.path.insert(0, str(REPO))

from bench.realtimeqa import Benchmark, load_benchmark  # noqa: E402
from retrieval.corpus import Corpus, CorpusConfig  # noqa: E402
from retrieval.documents import Article  # noqa: E402
from retrieval.errors import SitrepError  # noqa: E402
from retrieval.evaluate import EvalCase, score  # noqa: E402
from retrieval.search import SearchOptions, query_terms  # noqa: E402
from retrieval.terms import terms  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "benchmarks" / "realtimeqa-2022-dev"
MODES = ("dense", "lexical", "hybrid")
MARK_START, MARK_END = "<!-- bench_retrieval:start -->", "<!-- bench_retrieval:end -->"


# -- instrumentation -------------------------------------------------------------------------------------
@dataclass
class EmbedRecorder:
    """Wraps an embedder's ``embed``: counts calls, texts and seconds, and keeps what it embedded."""

    inner: Callable[[Sequence[str]], np.ndarray]
    keep: bool = False
    calls: int = 0
    texts: list[str] = field(default_factory=list)
    n_texts: int = 0
    seconds: float = 0.0
    vectors: list[np.ndarray] = field(default_factory=list)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        start = time.perf_counter()
        out = self.inner(texts)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        self.n_texts += len(texts)
        if self.keep:
            self.texts.extend(texts)
            self.vectors.append(out)
        return out


def install(corpus: Corpus, embed: Callable[[Sequence[str]], np.ndarray]) -> Callable[[Sequence[str]], np.ndarray]:
    """Route the corpus's embedding calls through ``embed``; return the original bound method.

    The embedder object stays the same (the ingest path checks its type to size chunks by word pieces).
    """
    original: Callable[[Sequence[str]], np.ndarray] = corpus.embedder.embed  # type: ignore[attr-defined]
    corpus.embedder.embed = embed  # type: ignore[attr-defined]
    return original


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    arr = np.asarray(samples) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


# -- 1. quality ------------------------------------------------------------------------------------------
def quality(corpus: Corpus, bench: Benchmark) -> dict[str, dict[str, float | int]]:
    """hits@k and MRR@10 per search mode, over the same chunks."""
    cases = [EvalCase(q.question, q.gold_urls, "url") for q in bench.questions]
    return {mode: score((c, corpus.ranked_documents(c.question, k=10, mode=mode)) for c in cases) for mode in MODES}


# -- 2. throughput ---------------------------------------------------------------------------------------
@dataclass
class Throughput:
    chunks: int
    pipeline_s: float
    embed_in_pipeline_s: float
    raw_s: float
    replay_s: float | None  # raw embedding in the pipeline's own batches (--diagnose)
    reingest_s: float
    reingest_unchanged: int
    reingest_embed_calls: int

    @property
    def ratio(self) -> float:
        return self.raw_s / self.pipeline_s


def ingest_and_measure(corpus: Corpus, articles: list[Article], slices: int = 8,
                       replay: bool = False) -> tuple[Throughput, np.ndarray]:
    """Ingest ``articles``, embed the same texts raw, re-ingest unchanged. Returns the stats and the vectors.

    The corpus goes in ``slices`` parts, each followed by raw embedding of the texts it embedded, so both
    sides see the same machine load (a shared 2-core machine drifts by tens of percent over minutes).
    """
    original: Callable[[Sequence[str]], np.ndarray] = corpus.embedder.embed  # type: ignore[attr-defined]
    recorder = EmbedRecorder(original, keep=True)
    install(corpus, recorder)
    original(["warm-up so neither side pays for the first inference"])
    pipeline_s = raw_s = replay_s = 0.0
    step = -(-len(articles) // slices)
    for start_at in range(0, len(articles), step):
        first_call, first_text = len(recorder.vectors), len(recorder.texts)
        start = time.perf_counter()
        report = corpus.ingest_articles(articles[start_at : start_at + step])
        pipeline_s += time.perf_counter() - start
        if report.failed:
            logging.getLogger(__name__).warning("bench.ingest_failures n=%d first=%s", len(report.failed),
                                                report.failed[0].error)
        start = time.perf_counter()
        original(recorder.texts[first_text:])
        raw_s += time.perf_counter() - start
        if replay:
            at = first_text
            start = time.perf_counter()
            for vectors in recorder.vectors[first_call:]:
                original(recorder.texts[at : at + len(vectors)])
                at += len(vectors)
            replay_s += time.perf_counter() - start
        print(f"  {min(start_at + step, len(articles))}/{len(articles)} articles, {len(recorder.texts)} chunks: "
              f"pipeline {len(recorder.texts) / pipeline_s:.1f} chunks/s, raw {len(recorder.texts) / raw_s:.1f} "
              f"chunks/s", file=sys.stderr)
    chunks = corpus.stats().chunks
    if recorder.n_texts != chunks:
        raise SystemExit(f"embedded {recorder.n_texts} texts but the store holds {chunks} chunks")

    again = EmbedRecorder(original)
    install(corpus, again)
    start = time.perf_counter()
    second = corpus.ingest_articles(articles)
    reingest_s = time.perf_counter() - start
    install(corpus, original)
    if second.added or second.updated or second.duplicates or again.calls:
        raise SystemExit(f"re-ingesting the unchanged corpus changed it: {second.to_json()}, "
                         f"{again.calls} embedding calls")
    vectors = np.concatenate(recorder.vectors) if recorder.vectors else np.zeros((0, 384), np.float32)
    return Throughput(chunks, pipeline_s, recorder.seconds, raw_s, replay_s if replay else None, reingest_s,
                      second.unchanged, again.calls), vectors


# -- 3. latency ------------------------------------------------------------------------------------------
@dataclass
class Latency:
    n: int
    p50: float
    p95: float
    parts: dict[str, float]  # p50 ms of each step measured alone


def latency(corpus: Corpus, queries: Sequence[str], rounds: int = 3, warmup: int = 5) -> Latency:
    """p50/p95 of ``Corpus.search(q, k=10)`` after warm-up, and the median cost of each step alone."""
    for q in queries[:warmup]:
        corpus.search(q, k=10)
    totals: list[float] = []
    for _ in range(rounds):
        for q in queries:
            start = time.perf_counter()
            corpus.search(q, k=10)
            totals.append(time.perf_counter() - start)
    candidates = SearchOptions().candidates
    state = corpus.state
    steps: dict[str, Callable[[str, np.ndarray], object]] = {
        "embed": lambda q, v: corpus.embed([q]),
        "dense": lambda q, v: corpus.store.query(v, candidates, None),
        "lexical": lambda q, v: state.lexical(query_terms(q), candidates, None, None),
    }
    parts: dict[str, list[float]] = {name: [] for name in steps}
    for q in queries:
        vec = corpus.embed([q])[0]
        for name, step in steps.items():
            start = time.perf_counter()
            step(q, vec)
            parts[name].append(time.perf_counter() - start)
    p50, p95 = percentiles(totals)
    return Latency(len(totals), p50, p95, {name: percentiles(s)[0] for name, s in parts.items()})


# -- synthetic store -------------------------------------------------------------------------------------
class NoisyEmbedder:
    """Stands in for the model while building the synthetic store: a random real chunk vector plus noise,
    so the vectors cluster like real ones (uniform random vectors would be an unrealistically hard index)."""

    def __init__(self, base: np.ndarray, noise: float, seed: int) -> None:
        self.base = base
        self.noise = noise
        self.rng = np.random.default_rng(seed)
        self.n_texts = 0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.n_texts += len(texts)
        picks = self.base[self.rng.integers(0, len(self.base), len(texts))]
        noise = self.rng.standard_normal(picks.shape).astype(np.float32) * (self.noise / np.sqrt(picks.shape[1]))
        out = picks + noise
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class SyntheticNews:
    """Deterministic fake articles: words drawn from the real corpus's word frequencies, news-shaped."""

    OUTLETS = ("wire.test", "daily.test", "ledger.test", "relief.test", "gazette.test", "monitor.test")

    def __init__(self, articles: Sequence[Article], seed: int, words_per_article: int = 1400) -> None:
        counts: dict[str, int] = {}
        for art in articles:
            for word in art.text.split():
                word = word.strip(".,;:!?\"'()[]“”‘’")
                if word.isalpha() and len(word) < 20:
                    counts[word] = counts.get(word, 0) + 1
        self.vocab = np.array(list(counts))
        freq = np.array(list(counts.values()), dtype=np.float64)
        self.p = freq / freq.sum()
        self.seed = seed
        self.words = words_per_article

    def articles(self, stop: Callable[[], bool], limit: int | None = None) -> Iterator[Article]:
        """Articles until ``stop()`` is true, or exactly ``limit`` of them (the same ones for the same seed)."""
        rng = np.random.default_rng(self.seed)
        start = datetime(2022, 5, 1, tzinfo=UTC)
        n = 0
        while (limit is None and not stop()) or (limit is not None and n < limit):
            words = self.vocab[rng.choice(len(self.vocab), self.words + 8, p=self.p)]
            lengths = rng.integers(12, 32, self.words // 12)
            sentences, at = [], 8
            for length in lengths:
                part = words[at : at + length]
                if len(part) == 0:
                    break
                at += length
                sentence = " ".join(part)
                sentences.append(sentence[0].upper() + sentence[1:] + ".")
            paragraphs = [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]
            outlet = self.OUTLETS[n % len(self.OUTLETS)]
            url = f"https://{outlet}/story/{self.seed}/{n}"
            yield Article(text="\n".join(paragraphs), source_key=url, title=" ".join(words[:8]).title(),
                          url=url, source=outlet, published=start + timedelta(minutes=int(rng.integers(0, 90 * 1440))),
                          kind="url")
            n += 1


@dataclass
class Synthetic:
    chunks: int
    documents: int
    build_s: float
    reingest_s: float
    latency: Latency


def synthetic_store(data_dir: Path, n_chunks: int, real: Sequence[Article], base: np.ndarray,
                    queries: Sequence[str], seed: int = 7) -> Synthetic:
    """Build a store of about ``n_chunks`` chunks through ``Corpus.ingest_articles`` and time real queries."""
    corpus = Corpus.open(CorpusConfig(data_dir=data_dir))
    try:
        fake = NoisyEmbedder(base, noise=0.6, seed=seed)
        real_embed = install(corpus, fake)
        news = SyntheticNews(real, seed)
        start = time.perf_counter()
        corpus.ingest_articles(news.articles(stop=lambda: fake.n_texts >= n_chunks))
        build_s = time.perf_counter() - start
        stats = corpus.stats()
        before = fake.n_texts
        start = time.perf_counter()
        again = corpus.ingest_articles(news.articles(stop=lambda: True, limit=stats.documents))
        reingest_s = time.perf_counter() - start
        if fake.n_texts != before or again.unchanged != stats.documents:
            raise SystemExit(f"re-ingesting the synthetic store changed it: {again.to_json()}")
        install(corpus, real_embed)
        return Synthetic(stats.chunks, stats.documents, build_s, reingest_s, latency(corpus, queries))
    finally:
        corpus.close()


# -- diagnosis (--diagnose): what would change the ranking; a prototype for retrieval/search.py -------------
QUIZ_STOPWORDS = frozenset(
    "which recently week weeks month year this last first new announced according reported people one two also"
    " just made could would should may might".split()
)


@dataclass(frozen=True)
class Variant:
    """One way to rank documents from the same dense and lexical candidate lists."""

    name: str
    lexical: str = "current"  # which lexical run (see ``lexical_runs``)
    dense: str = "current"
    rrf_k: int = 60
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    candidates: int = 60  # per side
    doc_level: bool = False  # fuse document ranks instead of chunk ranks


def _without_quiz_words(query: str) -> list[str]:
    dropped = {t for w in QUIZ_STOPWORDS for t in terms(w)}
    return [t for t in query_terms(query) if t not in dropped] or query_terms(query)


LEXICAL_CHOICES: dict[str, Callable[[str], list[str]]] = {
    "current": query_terms,
    "+quiz stopwords": _without_quiz_words,
}


def lexical_runs(corpus: Corpus, queries: Sequence[str], depth: int) -> dict[str, list[list[str]]]:
    """BM25 chunk rankings under several query-term choices (``current`` is what search does)."""
    state = corpus.state
    return {name: [[c for c, _ in state.lexical(choose(q), depth, None, None)] for q in queries]
            for name, choose in LEXICAL_CHOICES.items()}


def dense_runs(corpus: Corpus, queries: Sequence[str], depth: int, untitled: bool) -> dict[str, list[list[str]]]:
    """Dense chunk rankings: Chroma's HNSW (``current``), exact search over the same vectors, and optionally
    exact search over chunks embedded without their title (one more embedding pass over the corpus)."""
    qvecs = corpus.embed(list(queries))
    runs = {"current": [[i for i, _ in corpus.store.query(v, depth, None)] for v in qvecs]}
    got = corpus.store.collection.get(include=["embeddings"])
    ids, matrix = list(got["ids"]), np.asarray(got["embeddings"], dtype=np.float32)
    runs["exact"] = [[ids[j] for j in np.argsort(-(matrix @ v))[:depth]] for v in qvecs]
    if untitled:
        rows = corpus.state.conn.execute("SELECT chunk_id, text FROM chunks").fetchall()
        plain = corpus.embed([r[1] for r in rows])
        runs["no title in embedding"] = [[rows[j][0] for j in np.argsort(-(plain @ v))[:depth]] for v in qvecs]
    return runs


def fuse(dense: Sequence[str], lexical: Sequence[str], v: Variant, doc_of: dict[str, str], k: int = 10) -> list[str]:
    """The top ``k`` documents, one chunk each, as ``hybrid_search`` ranks them (RRF, ties by id)."""
    sides = [(dense[: v.candidates], v.dense_weight), (lexical[: v.candidates], v.lexical_weight)]
    scores: dict[str, float] = {}
    for ranking, weight in sides:
        if not weight:
            continue
        if v.doc_level:
            ranking = list(dict.fromkeys(doc_of[c] for c in ranking))
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (v.rrf_k + rank)
    docs: list[str] = []
    for item in sorted(scores, key=lambda i: (-scores[i], i)):
        doc = item if v.doc_level else doc_of[item]
        if doc not in docs:
            docs.append(doc)
        if len(docs) == k:
            break
    return docs


VARIANTS = [
    Variant("dense only (current)", lexical_weight=0.0),
    Variant("dense only, exact search", dense="exact", lexical_weight=0.0),
    Variant("lexical only (current)", dense_weight=0.0),
    *(Variant(f"lexical only, {name}", lexical=name, dense_weight=0.0)
      for name in list(LEXICAL_CHOICES)[1:]),
    Variant("hybrid (current: RRF k=60, 60 per side)"),
    *(Variant(f"hybrid, RRF k={k}", rrf_k=k) for k in (1, 10, 30, 100)),
    *(Variant(f"hybrid, {n} candidates per side", candidates=n) for n in (20, 30, 100, 200)),
    *(Variant(f"hybrid, lexical weight {w}", lexical_weight=w) for w in (0.5, 1.5, 2.0, 3.0)),
    *(Variant(f"hybrid, lexical {name}", lexical=name) for name in list(LEXICAL_CHOICES)[1:]),
    Variant("hybrid, fuse document ranks", doc_level=True),
    *(Variant(f"hybrid, fuse document ranks, lexical weight {w}", doc_level=True, lexical_weight=w)
      for w in (1.5, 2.0)),
    Variant("hybrid, fuse document ranks, RRF k=10", doc_level=True, rrf_k=10),
]


def diagnose(corpus: Corpus, bench: Benchmark, untitled: bool) -> list[tuple[str, dict[str, float | int]]]:
    """Score every variant on the benchmark questions, from one set of candidate lists."""
    queries = [q.question for q in bench.questions]
    depth = max(v.candidates for v in VARIANTS)
    dense, lexical = dense_runs(corpus, queries, depth, untitled), lexical_runs(corpus, queries, depth)
    variants = list(VARIANTS)
    if untitled:
        variants += [Variant("dense only, no title in embedding", dense="no title in embedding", lexical_weight=0.0),
                     Variant("hybrid, no title in embedding", dense="no title in embedding")]
    doc_of = {r[0]: r[1] for r in corpus.state.conn.execute("SELECT chunk_id, doc_id FROM chunks")}
    keys = {r[0]: {r[0], r[1]} for r in corpus.state.conn.execute("SELECT doc_id, url FROM documents")}
    for doc, links in corpus.state.sources_of(list(keys)).items():
        keys[doc].update(str(link["url"]) for link in links)
    results = []
    for v in variants:
        ranked = [
            fuse(dense[v.dense][n], lexical[v.lexical][n], v, doc_of)
            for n in range(len(queries))
        ]
        cases = [EvalCase(q.question, q.gold_urls, "url") for q in bench.questions]
        results.append((v.name, score((c, [keys[d] for d in docs]) for c, docs in zip(cases, ranked, strict=True))))
    return results


def render_diagnosis(results: list[tuple[str, dict[str, float | int]]], q: dict[str, dict[str, float | int]]) -> str:
    n = results[0][1]["n"]
    lines = [f"Ranking variants on the same candidate lists (n={n} questions; `ranked_documents` gave dense "
             f"{q['dense']['mrr@10']:.3f}, lexical {q['lexical']['mrr@10']:.3f}, hybrid {q['hybrid']['mrr@10']:.3f}):",
             "", "| variant | hits@1 | hits@5 | hits@10 | MRR@10 |", "|---|---|---|---|---|"]
    for name, s in results:
        lines.append(f"| {name} | {s['hits@1']:.3f} | {s['hits@5']:.3f} | {s['hits@10']:.3f} | {s['mrr@10']:.3f} |")
    return "\n".join(lines)


# -- report ----------------------------------------------------------------------------------------------
def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines()
                      if x.startswith("MemTotal"))
        ram = f"{mem_kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        ram = "RAM unknown"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} cores (`nproc` {len(os.sched_getaffinity(0))}), {cpu}, {ram}, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}; "
            f"load average at the end {load:.2f}")


def render(bench: Benchmark, docs: int, q: dict[str, dict[str, float | int]], t: Throughput, lat: Latency,
           syn: Synthetic | None, peak_mb: float, total_s: float) -> str:
    """The results as markdown."""
    n = q["hybrid"]["n"]
    lines = [
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} on {machine()}.",
        "",
        f"Corpus: RealTime QA weeks {', '.join(bench.weeks)}: {len(bench.articles)} articles with text (one per "
        f"URL) → {docs} documents after exact-text de-duplication, {t.chunks} chunks; {n} questions with a gold "
        f"article ({bench.skipped_questions} without one skipped).",
        "",
        "| measure | value | target |",
        "|---|---|---|",
    ]
    for mode in MODES:
        s = q[mode]
        best = " **(best)**" if mode == max(MODES, key=lambda m: q[m]["mrr@10"]) else ""
        lines.append(
            f"| {mode}: hits@1 / @5 / @10, MRR@10 (n={s['n']}) | {s['hits@1']:.3f} / {s['hits@5']:.3f} / "
            f"{s['hits@10']:.3f}, **{s['mrr@10']:.3f}**{best} | hybrid > both |"
        )
    lines += [
        f"| ingest, whole pipeline ({t.chunks} chunks) | {t.chunks / t.pipeline_s:.1f} chunks/s ({t.pipeline_s:.1f} s; "
        f"{t.embed_in_pipeline_s / t.pipeline_s:.0%} of it inside embed) | |",
        f"| raw embedding of the same {t.chunks} texts (`MiniLMEmbedding.embed`) | {t.chunks / t.raw_s:.1f} chunks/s "
        f"({t.raw_s:.1f} s) | |",
        f"| pipeline / raw throughput | **{t.ratio:.2f}** | ≥ 0.80 |",
        *([f"| raw embedding in the pipeline's own batches (`--diagnose`) | {t.chunks / t.replay_s:.1f} chunks/s "
           f"({t.replay_s:.1f} s) | |"] if t.replay_s else []),
        f"| re-ingest unchanged ({t.reingest_unchanged} sources) | **{t.reingest_s:.2f} s**, "
        f"{t.reingest_embed_calls} embedding calls | ≤ 5 s / 1,000 docs, 0 calls |",
        f"| query latency, this corpus ({lat.n} queries) | p50 {lat.p50:.1f} ms, **p95 {lat.p95:.1f} ms** | |",
    ]
    if syn is not None:
        lines += [
            f"| synthetic store: build ({syn.chunks:,} chunks, {syn.documents:,} docs, stand-in embedder) | "
            f"{syn.build_s:.0f} s ({syn.chunks / syn.build_s:.0f} chunks/s without model cost) | |",
            f"| synthetic store: re-ingest unchanged ({syn.documents:,} docs) | {syn.reingest_s:.1f} s | |",
            f"| query latency, {syn.chunks:,} chunks ({syn.latency.n} queries) | p50 {syn.latency.p50:.1f} ms, "
            f"**p95 {syn.latency.p95:.1f} ms** | p95 ≤ 50 ms |",
        ]
    lines += [f"| peak memory (ru_maxrss, whole run) | {peak_mb:.0f} MB | |", "",
              "Median cost of each search step alone (ms): "
              + "; ".join(f"{label}: " + ", ".join(f"{k} {v:.1f}" for k, v in la.parts.items())
                          for label, la in [("this corpus", lat)] + ([("synthetic", syn.latency)] if syn else [])),
              "", f"Whole benchmark: {total_s / 60:.1f} min."]
    return "\n".join(lines)


def write_out(path: Path, table: str, command: str) -> None:
    """Replace the generated block in ``path`` (kept between markers) so hand-written notes survive."""
    block = f"{MARK_START}\n`{command}`\n\n{table}\n{MARK_END}"
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    if MARK_START in old and MARK_END in old:
        head, rest = old.split(MARK_START, 1)
        new = head + block + rest.split(MARK_END, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, action="append",
                    help=f"folder of RealTime QA week files (repeatable; default {DEFAULT_DATA} when it exists)")
    ap.add_argument("--weeks", nargs="*", help="only these weeks (YYYYMMDD); default every week found")
    ap.add_argument("--synthetic", type=int, default=100_000, help="chunks in the synthetic store (0 to skip)")
    ap.add_argument("--out", type=Path, help="markdown file to write the table into (e.g. docs/benchmarks.md)")
    ap.add_argument("--diagnose", action="store_true",
                    help="also score ranking variants (RRF k, weights, candidates, title, stopwords), replay the "
                         "pipeline's embedding batches and embed the chunks without titles (one more pass)")
    ap.add_argument("--workdir", type=Path, help="where to build the stores (default: a temporary folder)")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    data = args.data or ([DEFAULT_DATA] if DEFAULT_DATA.is_dir() else [])
    if not data:
        print(f"No benchmark data: pass --data DIR, a folder with RealTime QA files (YYYYMMDD_qa.jsonl, _gold.jsonl, "
              f"_gcs.jsonl) such as realtimeqa_public/past/2022 (default {DEFAULT_DATA} does not exist).",
              file=sys.stderr)
        return 2
    began = time.perf_counter()
    try:
        bench = load_benchmark(data, args.weeks)
    except SitrepError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{len(bench.articles)} articles, {len(bench.questions)} questions from weeks {', '.join(bench.weeks)}",
          file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="sitrep-bench-", dir=args.workdir) as tmp:
        corpus = Corpus.open(CorpusConfig(data_dir=Path(tmp) / "realtimeqa"))
        try:
            print("ingesting (whole pipeline), then raw embedding of the same texts ...", file=sys.stderr)
            through, vectors = ingest_and_measure(corpus, bench.articles, replay=args.diagnose)
            print(f"peak memory so far {peak_rss_mb():.0f} MB; quality and latency ...", file=sys.stderr)
            docs = corpus.stats().documents
            q = quality(corpus, bench)
            queries = [x.question for x in bench.questions]
            lat = latency(corpus, queries)
            variants = diagnose(corpus, bench, untitled=True) if args.diagnose else None
        finally:
            corpus.close()
        syn = None
        if args.synthetic > 0:
            print(f"building a synthetic store of {args.synthetic:,} chunks ...", file=sys.stderr)
            syn = synthetic_store(Path(tmp) / "synthetic", args.synthetic, bench.articles, vectors, queries)
    table = render(bench, docs, q, through, lat, syn, peak_rss_mb(), time.perf_counter() - began)
    if variants:
        table += "\n\n" + render_diagnosis(variants, q)
    print(table)
    if args.out:
        shown = " ".join(["bench/bench_retrieval.py", *(argv if argv is not None else sys.argv[1:])])
        write_out(args.out, table, f".venv/bin/python {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
