"""Retrieval benchmark: quality, ingestion throughput, query latency and memory, printed as one table.

    .venv/bin/python bench/bench_retrieval.py [--data DIR ...] [--weeks W ...] [--out docs/benchmarks.md]

1. Quality on RealTime QA (see ``../shared/benchmarks/README.md``): hits@1/5/10 and MRR@10 of dense-only,
   lexical-only, plain RRF and hybrid search, in one run over the same chunks (``bench_ranking.py`` splits
   the questions into tuning and validation weeks).
2. Ingestion throughput of the whole pipeline against raw embedding of the exact texts it embedded, and of
   the same articles through the pipeline with a stand-in embedder (no model cost), interleaved in slices;
   then re-ingesting the unchanged corpus (which must compute no embeddings).
3. Query latency (``Corpus.search``: embed the query, both searches, fusion) on that corpus
   (``bench_scale.py`` measures it on synthetic stores of 10k to 1M chunks).
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make `bench` and `retrieval` importable from the checkout
    sys.path.insert(0, str(REPO))

from bench.bench_scale import NoisyEmbedder  # noqa: E402
from bench.markdown import publish  # noqa: E402
from bench.realtimeqa import Benchmark, load_benchmark  # noqa: E402
from retrieval.corpus import Corpus, CorpusConfig  # noqa: E402
from retrieval.documents import Article  # noqa: E402
from retrieval.errors import SitrepError  # noqa: E402
from retrieval.evaluate import EvalCase, score  # noqa: E402
from retrieval.search import SearchOptions, query_terms  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "benchmarks" / "realtimeqa-2022-dev"
MODES = ("dense", "lexical", "rrf", "hybrid")


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
    standin_s: float  # the same articles through the pipeline with a stand-in embedder (no model cost)
    reingest_s: float
    reingest_unchanged: int
    reingest_embed_calls: int

    @property
    def ratio(self) -> float:
        return self.raw_s / self.pipeline_s


def ingest_and_measure(corpus: Corpus, standin: Corpus, articles: list[Article],
                       slices: int = 8) -> tuple[Throughput, np.ndarray]:
    """Ingest ``articles``, embed the same texts raw, ingest them again into ``standin`` with a stand-in
    embedder, and re-ingest unchanged. Returns the stats and the vectors.

    The corpus goes in ``slices`` parts; after each, the raw embedding of the texts it embedded and the
    stand-in run of the same part follow, so all three see the same machine load (a shared 2-core machine
    drifts by tens of percent over minutes).
    """
    original: Callable[[Sequence[str]], np.ndarray] = corpus.embedder.embed  # type: ignore[attr-defined]
    recorder = EmbedRecorder(original, keep=True)
    install(corpus, recorder)
    original(["warm-up so neither side pays for the first inference"])
    pipeline_s = raw_s = standin_s = 0.0
    step = -(-len(articles) // slices)
    for start_at in range(0, len(articles), step):
        part, first_text = articles[start_at : start_at + step], len(recorder.texts)
        start = time.perf_counter()
        report = corpus.ingest_articles(part)
        pipeline_s += time.perf_counter() - start
        if report.failed:
            logging.getLogger(__name__).warning("bench.ingest_failures n=%d first=%s", len(report.failed),
                                                report.failed[0].error)
        start = time.perf_counter()
        original(recorder.texts[first_text:])
        raw_s += time.perf_counter() - start
        # Both corpora share the process's one MiniLM object: the stand-in replaces its embed for this part only.
        install(standin, NoisyEmbedder(np.concatenate(recorder.vectors), noise=0.6, seed=start_at))
        start = time.perf_counter()
        standin.ingest_articles(part)
        standin_s += time.perf_counter() - start
        install(corpus, recorder)
        done = len(recorder.texts)
        print(f"  {min(start_at + step, len(articles))}/{len(articles)} articles, {done} chunks: pipeline "
              f"{done / pipeline_s:.1f} chunks/s, raw {done / raw_s:.1f}, stand-in {done / standin_s:.0f} chunks/s "
              f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr)
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
    return Throughput(chunks, pipeline_s, recorder.seconds, raw_s, standin_s, reingest_s, second.unchanged,
                      again.calls), vectors


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
           peak_mb: float, total_s: float) -> str:
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
            f"{s['hits@10']:.3f}, **{s['mrr@10']:.3f}**{best} | hybrid ≥ 1.10 × rrf |"
        )
    lines += [
        f"| ingest, whole pipeline ({t.chunks} chunks) | {t.chunks / t.pipeline_s:.1f} chunks/s ({t.pipeline_s:.1f} s; "
        f"{t.embed_in_pipeline_s / t.pipeline_s:.0%} of it inside embed) | |",
        f"| raw embedding of the same {t.chunks} texts (`MiniLMEmbedding.embed`) | {t.chunks / t.raw_s:.1f} chunks/s "
        f"({t.raw_s:.1f} s) | |",
        f"| pipeline / raw throughput (interleaved) | **{t.ratio:.2f}** | ≥ 0.90 |",
        f"| the same articles through the pipeline with a stand-in embedder (interleaved) | "
        f"**{t.chunks / t.standin_s:,.0f} chunks/s** ({t.standin_s:.1f} s) | ≥ 1,500 chunks/s |",
        f"| re-ingest unchanged ({t.reingest_unchanged} sources) | **{t.reingest_s:.2f} s**, "
        f"{t.reingest_embed_calls} embedding calls | ≤ 5 s / 1,000 docs, 0 calls |",
        f"| query latency, this corpus ({lat.n} queries) | p50 {lat.p50:.1f} ms, **p95 {lat.p95:.1f} ms** | |",
    ]
    lines += [f"| peak memory (ru_maxrss, whole run) | {peak_mb:.0f} MB | |", "",
              "Median cost of each search step alone (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in lat.parts.items()),
              "", f"Whole benchmark: {total_s / 60:.1f} min."]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, action="append",
                    help=f"folder of RealTime QA week files (repeatable; default {DEFAULT_DATA} when it exists)")
    ap.add_argument("--weeks", nargs="*", help="only these weeks (YYYYMMDD); default every week found")
    ap.add_argument("--articles", type=int, help="ingest only the first N articles (a quick throughput run; "
                                                   "quality then misses most gold articles)")
    ap.add_argument("--out", type=Path, help="markdown file to write the table into (e.g. docs/benchmarks.md)")
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
        if args.articles:
            bench = replace(bench, articles=bench.articles[: args.articles])
    except SitrepError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{len(bench.articles)} articles, {len(bench.questions)} questions from weeks {', '.join(bench.weeks)}",
          file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="sitrep-bench-", dir=args.workdir) as tmp:
        corpus = Corpus.open(CorpusConfig(data_dir=Path(tmp) / "realtimeqa"))
        standin = Corpus.open(CorpusConfig(data_dir=Path(tmp) / "stand-in"))
        try:
            print("ingesting (whole pipeline), raw embedding of the same texts, stand-in pipeline ...",
                  file=sys.stderr)
            through, _ = ingest_and_measure(corpus, standin, bench.articles)
            print(f"peak memory so far {peak_rss_mb():.0f} MB; quality and latency ...", file=sys.stderr)
            docs = corpus.stats().documents
            q = quality(corpus, bench)
            lat = latency(corpus, [x.question for x in bench.questions])
        finally:
            corpus.close()
            standin.close()
    table = render(bench, docs, q, through, lat, peak_rss_mb(), time.perf_counter() - began)
    publish(args.out, table, "bench_retrieval.py", argv, name="bench_retrieval")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
