"""Ingest pipeline against raw embedding, interleaved: what the pipeline costs next to the model.

    .venv/bin/python bench/bench_pipeline.py [--data DIR] [--articles 120] [--rounds 3] [--workdir DIR] [--out FILE]

Each round takes the next ``--articles`` real RealTime QA articles and, in an order that rotates between
rounds (so machine load hits all three alike), measures:

- **raw embedding**: ``MiniLMEmbedding.embed`` over the texts the pipeline would embed (cleaned, chunked,
  title-prefixed outside the clock), in one call;
- **pipeline with the model**: ``Corpus.ingest_articles`` of the same articles into a fresh store (cleaning,
  chunking, word-piece checks, embedding, Chroma, the lexical index, the SQLite commit);
- **pipeline without the model**: the same into another fresh store, with a stand-in embedder that costs
  nothing, so the rate is everything around the model. Its vectors are real MiniLM vectors of 100 chunks of
  these articles, each handed out with noise (``bench_scale.NoisyEmbedder``), so they cluster as the model's
  do: Chroma's HNSW insert takes about twice the CPU for isotropic random unit vectors (0.65–0.72 against
  0.32–0.34 ms a vector, 20k vectors), an index no real store has.

The ratio is pipeline-with-model chunks/s over raw-embedding chunks/s of the same chunks in the same round.
The load average is printed with each round: the machine is shared.

Rounds are short (the model is slow here), too short for the pipeline to start its cleaning worker process, so
the pipeline without the model is also measured once over ``--bare-articles`` articles (all by default), with its
CPU seconds per 1,000 chunks: this process's and its worker processes' apart, steadier than wall time on a
shared machine. A second ingest of the same articles shows what re-ingesting unchanged input costs.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.bench_scale import NoisyEmbedder, base_vectors  # noqa: E402
from bench.markdown import publish  # noqa: E402
from bench.realtimeqa import load_benchmark  # noqa: E402
from retrieval.chunking import chunk_text, embedding_text  # noqa: E402
from retrieval.corpus import Corpus, CorpusConfig  # noqa: E402
from retrieval.documents import Article  # noqa: E402
from retrieval.embeddings import WordPieceCounter  # noqa: E402
from retrieval.prepare import prepare  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "benchmarks" / "realtimeqa-2022-dev"


Embed = Callable[[Sequence[str]], np.ndarray]


def stand_in_embedder(articles: Sequence[Article], workdir: Path) -> Embed:
    """An embedder that costs nothing, its vectors shaped like the model's (see the module docstring)."""
    corpus = Corpus.open(CorpusConfig(data_dir=workdir / "stand-in-base"))
    try:
        return NoisyEmbedder(base_vectors(corpus, articles), noise=0.6, seed=7)
    finally:
        corpus.close()


@dataclass
class Round:
    chunks: int
    raw_s: float
    pipeline_s: float
    bare_s: float
    load: float


def embed_texts(articles: Sequence[Article], counter: WordPieceCounter) -> list[str]:
    """What the pipeline embeds for ``articles``: cleaned, chunked, title-prefixed (duplicates once)."""
    texts: list[str] = []
    seen: set[str] = set()
    for art in articles:
        ready = prepare(art).article
        if not ready.text or ready.text in seen:
            continue
        seen.add(ready.text)
        spans = chunk_text(ready.text, ready.title, None, counter.pieces)
        texts += [embedding_text(ready.title, ready.text[s.start : s.end]) for s in spans]
    return texts


def run_round(number: int, articles: Sequence[Article], workdir: Path, counter: WordPieceCounter,
              stand_in: Embed) -> Round:
    texts = embed_texts(articles, counter)
    times: dict[str, float] = {}
    chunks: dict[str, int] = {}

    def raw() -> None:
        corpus = Corpus.open(CorpusConfig(data_dir=workdir / f"raw-{number}"))
        try:
            start = time.perf_counter()
            corpus.embed(texts)
            times["raw"] = time.perf_counter() - start
        finally:
            corpus.close()

    def pipeline(name: str, model: bool) -> None:
        corpus = Corpus.open(CorpusConfig(data_dir=workdir / f"{name}-{number}"))
        try:
            if not model:
                corpus.embedder.embed = stand_in  # type: ignore[attr-defined]
            start = time.perf_counter()
            corpus.ingest_articles(articles)
            times[name] = time.perf_counter() - start
            chunks[name] = corpus.stats().chunks
        finally:
            if not model:
                del corpus.embedder.embed  # type: ignore[attr-defined]  # the model instance is shared
            corpus.close()

    steps = [raw, lambda: pipeline("pipeline", True), lambda: pipeline("bare", False)]
    for step in steps[number % 3:] + steps[: number % 3]:
        step()
    if not chunks["pipeline"] == chunks["bare"] == len(texts):
        raise SystemExit(f"round {number}: the pipeline stored {chunks} chunks, raw embedding had {len(texts)}")
    return Round(len(texts), times["raw"], times["pipeline"], times["bare"], os.getloadavg()[0])


@dataclass
class Bare:
    articles: int
    chunks: int
    wall_s: float
    cpu_s: float  # this process
    worker_cpu_s: float  # the cleaning/chunking worker processes
    again_s: float  # the same articles ingested again, unchanged
    load: float


def _cpu() -> tuple[float, float]:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def run_bare(articles: Sequence[Article], workdir: Path, stand_in: Embed) -> Bare:
    """The pipeline without the model over ``articles`` in one fresh store, then again unchanged."""
    corpus = Corpus.open(CorpusConfig(data_dir=workdir / "bare-all"))
    corpus.embedder.embed = stand_in  # type: ignore[attr-defined]
    try:
        (cpu0, kids0), start = _cpu(), time.perf_counter()
        corpus.ingest_articles(articles)
        wall = time.perf_counter() - start
        cpu1, kids1 = _cpu()
        start = time.perf_counter()
        corpus.ingest_articles(articles)
        again = time.perf_counter() - start
        return Bare(len(articles), corpus.stats().chunks, wall, cpu1 - cpu0, kids1 - kids0, again,
                    os.getloadavg()[0])
    finally:
        del corpus.embedder.embed  # type: ignore[attr-defined]  # the model instance is shared
        corpus.close()


def render_bare(bare: Bare) -> str:
    per_k = 1000 / bare.chunks
    own, workers = bare.cpu_s * per_k, bare.worker_cpu_s * per_k
    return "\n".join([
        "| articles | chunks | pipeline without model chunks/s | CPU s per 1k chunks: this process + workers "
        "| re-ingest unchanged | load avg |",
        "|---|---|---|---|---|---|",
        f"| {bare.articles:,} | {bare.chunks:,} | {bare.chunks / bare.wall_s:,.0f} "
        f"| {own:.2f} + {workers:.2f} = **{own + workers:.2f}** "
        f"| {bare.again_s:.1f} s | {bare.load:.1f} |",
    ])


def render(rounds: Sequence[Round], n_articles: int) -> str:
    lines = [
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, {os.cpu_count()} cores shared with other jobs; "
        f"{n_articles} RealTime QA articles per round, the three measurements interleaved in rotating order.",
        "",
        "| round | chunks | raw embedding chunks/s | pipeline with model chunks/s | ratio "
        "| pipeline without model chunks/s | load avg |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, r in enumerate(rounds, start=1):
        lines.append(f"| {n} | {r.chunks:,} | {r.chunks / r.raw_s:.1f} | {r.chunks / r.pipeline_s:.1f} "
                     f"| {r.raw_s / r.pipeline_s:.2f} | {r.chunks / r.bare_s:,.0f} | {r.load:.1f} |")
    total = sum(r.chunks for r in rounds)
    raw, pipe, bare = (sum(getattr(r, f) for r in rounds) for f in ("raw_s", "pipeline_s", "bare_s"))
    lines.append(f"| all | {total:,} | {total / raw:.1f} | {total / pipe:.1f} | **{raw / pipe:.2f}** "
                 f"| {total / bare:,.0f} | |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--articles", type=int, default=120, help="articles per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bare-articles", type=int, default=0,
                    help="articles for the one long run without the model (0: all; negative: skip it)")
    ap.add_argument("--workdir", type=Path, help="where to build the stores (default: a temporary folder)")
    ap.add_argument("--out", type=Path, help="markdown file to write the table into (e.g. docs/benchmarks.md)")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"No benchmark data at {args.data}: pass --data DIR (RealTime QA week files).", file=sys.stderr)
        return 2
    articles = [a for a in load_benchmark([args.data], None).articles if a.text]
    counter = WordPieceCounter()
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="sitrep-pipeline-", dir=args.workdir) as tmp:
        stand_in = stand_in_embedder(articles, Path(tmp))
        for n in range(args.rounds):
            part = articles[n * args.articles : (n + 1) * args.articles]
            if not part:
                break
            rounds.append(run_round(n, part, Path(tmp), counter, stand_in))
            print(render(rounds, args.articles).splitlines()[-2], file=sys.stderr, flush=True)
            for store in Path(tmp).iterdir():
                shutil.rmtree(store, ignore_errors=True)
        table = render(rounds, args.articles) if rounds else ""
        if args.bare_articles >= 0:
            bare = run_bare(articles[: args.bare_articles or None], Path(tmp), stand_in)
            table += ("\n\n" if table else "") + ("The pipeline without the model, in one run over more articles "
                                                    "(the worker process starts):\n\n" + render_bare(bare))
    publish(args.out, table, "bench_pipeline.py", argv, name="bench_pipeline")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
