"""Scale benchmark: one synthetic store grown through several sizes, measured at each.

    .venv/bin/python bench/bench_scale.py [--sizes 10000 100000 1000000] [--data DIR] [--workdir DIR] [--out FILE]
        [--database-url postgresql://…] [--store DIR [--search-only]] [--chroma-server PORT]

The store is written through the real pipeline (``Corpus.ingest_articles``: cleaning, chunking with both
tokenizers, the lexical index, Chroma, the SQLite commit) with a stand-in embedder, so the build rate is
the pipeline's cost without the model. The articles are deterministic news-shaped word salad drawn from the
RealTime QA word frequencies; the stand-in returns a real chunk vector plus noise, so vectors cluster like
real ones. Queries are the benchmark's question sentences, embedded by the real model. At each size it
reports build rate (wall and CPU), disk, memory, re-ingesting every article unchanged, and the latency of
``Corpus.search`` and of its lexical and dense steps alone, with the load average: the machine is shared.
With ``--database-url`` the state lives in a scratch schema of that PostgreSQL database (dropped after the run;
its tables' size is counted in the disk column) and the table is published under its own marker.
With ``--store`` the store is kept in that folder, and a store already there is grown further (article ``i`` is
always the same, so the articles it holds are not added again); ``--search-only`` measures that store as it is
(disk, memory, query latency) without building or re-ingesting: a 1M-chunk store is built once, and the query
side measured again after a change to it. ``kill -USR1`` ends the current size's build early (after the batch in
progress): the stage is then measured at the size reached, and the run stops after it.
With ``--chroma-server PORT`` the vectors go to a Chroma server started for the run (``chroma run`` from this
venv, storing under the store's ``chroma-server`` folder), as ``CHROMA_HOST`` would send them: the HNSW index
then lives in that process, whose current and peak RSS get a column of their own (and whose CPU is counted in
the build's CPU seconds).
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.markdown import publish  # noqa: E402
from bench.processes import cpu_seconds, memory_mb, start_chroma  # noqa: E402
from bench.realtimeqa import load_benchmark  # noqa: E402
from retrieval.chunking import chunk_text, embedding_text  # noqa: E402
from retrieval.corpus import Corpus, CorpusConfig  # noqa: E402
from retrieval.documents import Article  # noqa: E402
from retrieval.search import SearchOptions, query_terms  # noqa: E402
from retrieval.text import normalize  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "benchmarks" / "realtimeqa-2022-dev"


class NoisyEmbedder:
    """Stands in for the model: a random real chunk vector plus noise, so the vectors cluster like real ones
    (uniform random vectors would be an unrealistically hard index)."""

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
    """Deterministic fake articles: article ``i`` is always the same, words drawn from real word frequencies."""

    OUTLETS = ("wire.test", "daily.test", "ledger.test", "relief.test", "gazette.test", "monitor.test")

    def __init__(self, articles: Sequence[Article], seed: int, words_per_article: int = 1400) -> None:
        counts: dict[str, int] = {}
        for art in articles:
            for word in art.text.split():
                word = word.strip(".,;:!?\"'()[]“”‘’")
                if word.isalpha() and len(word) < 20:
                    counts[word] = counts.get(word, 0) + 1
        self.vocab = np.array(list(counts))
        self.cdf = np.cumsum(np.array(list(counts.values()), dtype=np.float64))
        self.cdf /= self.cdf[-1]
        self.seed = seed
        self.words = words_per_article

    def article(self, n: int) -> Article:
        rng = np.random.default_rng((self.seed, n))
        words = self.vocab[np.minimum(np.searchsorted(self.cdf, rng.random(self.words + 8)), len(self.vocab) - 1)]
        sentences, at = [], 8
        for length in rng.integers(12, 32, self.words // 12):
            part = words[at : at + length]
            if len(part) == 0:
                break
            at += length
            sentence = " ".join(part)
            sentences.append(sentence[0].upper() + sentence[1:] + ".")
        paragraphs = [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]
        outlet = self.OUTLETS[n % len(self.OUTLETS)]
        url = f"https://{outlet}/story/{self.seed}/{n}"
        published = datetime(2022, 5, 1, tzinfo=UTC) + timedelta(minutes=int(rng.integers(0, 90 * 1440)))
        return Article(text="\n".join(paragraphs), source_key=url, title=" ".join(words[:8]).title(), url=url,
                       source=outlet, published=published, kind="url")

    def articles(self, start: int, stop: Callable[[], bool] | None = None, end: int | None = None,
                 made: list[int] | None = None) -> Iterator[Article]:
        """Articles ``start, start+1, ...`` until ``stop()`` or ``end``; ``made[0]`` counts them."""
        n = start
        while (end is None or n < end) and not (stop and stop()):
            yield self.article(n)
            n += 1
            if made is not None:
                made[0] = n


# -- measuring ------------------------------------------------------------------------------------------
def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MB."""
    return memory_mb(os.getpid())


def cpu_s() -> float:
    """CPU seconds of this process and of its finished children (the ingest's cleaning worker processes)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def p50_p95(samples: Sequence[float]) -> str:
    ms = np.asarray(samples) * 1000
    return f"{np.percentile(ms, 50):.1f} / {np.percentile(ms, 95):.1f}"


@dataclass
class Stage:
    chunks: int
    documents: int
    added_chunks: int
    build_s: float
    build_cpu_s: float
    disk_mb: float
    rss_mb: float
    peak_rss_mb: float
    reingest_s: float | None  # None: not re-ingested (``--search-only``)
    server_mb: tuple[float, float] | None  # the Chroma server's (current, peak) RSS; None: embedded Chroma
    search: str
    lexical: str
    dense: str
    load: float


def measure_queries(corpus: Corpus, queries: Sequence[str], rounds: int) -> tuple[str, str, str]:
    """p50/p95 ms of ``Corpus.search`` (k=10) and of its lexical and dense steps, interleaved per query."""
    for q in queries[:5]:
        corpus.search(q, k=10)
    state, candidates = corpus.state, SearchOptions().candidates
    times: dict[str, list[float]] = {"search": [], "lexical": [], "dense": []}
    vectors = corpus.embed(list(queries))
    for _ in range(rounds):
        for q, vec in zip(queries, vectors, strict=True):
            steps: dict[str, Callable[[], object]] = {
                "search": lambda q=q: corpus.search(q, k=10),
                "lexical": lambda q=q: state.lexical(query_terms(q), candidates, None, None),
                "dense": lambda vec=vec: corpus.store.query(vec, candidates, None),
            }
            for name, step in steps.items():
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
    return p50_p95(times["search"]), p50_p95(times["lexical"]), p50_p95(times["dense"])


def base_vectors(corpus: Corpus, articles: Sequence[Article], n: int = 100) -> np.ndarray:
    """Real MiniLM vectors of ``n`` real chunks, for the stand-in embedder to scatter around."""
    texts: list[str] = []
    for art in articles:
        text = normalize(art.text)
        texts += [embedding_text(art.title, text[s.start : s.end]) for s in chunk_text(text, art.title)]
        if len(texts) >= n:
            break
    return corpus.embed(texts[:n])


def database_mb(corpus: Corpus) -> float:
    """The size of the state's tables and indexes in PostgreSQL (0 for the SQLite file, counted on disk)."""
    if not corpus.config.database_url:
        return 0.0
    row = corpus.state.conn.execute(
        "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n"
        " ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'").fetchone()
    return float(row[0]) / 1e6


def grow(data_dir: Path, sizes: Sequence[int], articles: Sequence[Article], queries: Sequence[str],
         rounds: int, database_url: str | None = None, search_only: bool = False,
         server: tuple[int, int] | None = None) -> Iterator[Stage]:
    """Grow one store through ``sizes`` (chunks) and measure it at each (``search_only``: measure it as it is;
    ``server``: the (pid, port) of the Chroma server that holds the vectors)."""
    corpus = Corpus.open(CorpusConfig(data_dir=data_dir, database_url=database_url,
                                      chroma_host="127.0.0.1" if server else None,
                                      chroma_port=server[1] if server else 8000))

    def server_mb() -> tuple[float, float] | None:
        return memory_mb(server[0]) if server else None

    def used_cpu_s() -> float:  # the server's CPU counts too: it builds the HNSW index
        return cpu_s() + (cpu_seconds(server[0]) if server else 0.0)
    try:
        real_embed = corpus.embedder.embed  # type: ignore[attr-defined]
        if search_only:
            stats = corpus.stats()
            search, lexical, dense = measure_queries(corpus, queries, rounds)
            now, peak = rss_mb()
            yield Stage(stats.chunks, stats.documents, 0, 0.0, 0.0, disk_mb(data_dir) + database_mb(corpus),
                        now, peak, None, server_mb(), search, lexical, dense, os.getloadavg()[0])
            return
        fake = NoisyEmbedder(base_vectors(corpus, articles), noise=0.6, seed=7)
        news = SyntheticNews(articles, seed=7)
        ended = _end_on_signal()
        held = corpus.stats()
        made, fake.n_texts = [held.documents], held.chunks  # a kept store holds articles 0..documents-1
        for size in sizes:
            if fake.n_texts >= size:
                continue
            corpus.embedder.embed = fake  # type: ignore[attr-defined]
            before = fake.n_texts
            start, cpu = time.perf_counter(), used_cpu_s()
            corpus.ingest_articles(news.articles(made[0], stop=lambda s=size: fake.n_texts >= s or ended[0], made=made))
            build_s, build_cpu = time.perf_counter() - start, used_cpu_s() - cpu
            stats = corpus.stats()
            _progress(f"{stats.chunks:,} chunks built in {build_s:,.0f} s ({build_cpu:,.0f} CPU s)")
            corpus.embedder.embed = real_embed  # type: ignore[attr-defined]
            # Queries before the re-ingest: at 1M chunks the re-ingest is the longest step of all.
            search, lexical, dense = measure_queries(corpus, queries, rounds)
            now, peak = rss_mb()
            _progress(f"search {search}, lexical {lexical}, dense {dense} ms; RSS {now:,.0f} / {peak:,.0f} MB")
            corpus.embedder.embed = fake  # type: ignore[attr-defined]
            start = time.perf_counter()
            again = corpus.ingest_articles(news.articles(0, end=made[0]))
            reingest_s = time.perf_counter() - start
            if again.unchanged != made[0] or again.added or again.updated:
                raise SystemExit(f"re-ingesting the unchanged synthetic articles changed the store: {again.to_json()}")
            corpus.embedder.embed = real_embed  # type: ignore[attr-defined]
            yield Stage(stats.chunks, stats.documents, fake.n_texts - before, build_s, build_cpu,
                        disk_mb(data_dir) + database_mb(corpus),
                        now, peak, reingest_s, server_mb(), search, lexical, dense, os.getloadavg()[0])
            if ended[0]:
                return
    finally:
        corpus.close()


def _end_on_signal() -> list[bool]:
    """A flag that ``SIGUSR1`` sets: the build in progress ends at the size it has reached."""
    ended = [False]

    def handler(signum: int, frame: object) -> None:
        ended[0] = True
        _progress("SIGUSR1: ending the build at the size reached")

    signal.signal(signal.SIGUSR1, handler)
    return ended


def _progress(message: str) -> None:
    print(f"{datetime.now(UTC).strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def render(stages: Sequence[Stage], n_queries: int, rounds: int) -> str:
    lines = [
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, {os.cpu_count()} cores shared with other jobs; "
        f"{n_queries} RealTime QA questions × {rounds} rounds per size; times in ms as p50 / p95.",
        "",
        "| chunks (docs) | build: chunks/s wall (CPU s per 1k chunks, workers and Chroma server included) | disk "
        "| RSS now / peak | Chroma server RSS now / peak | re-ingest unchanged "
        "| `Corpus.search` | lexical step | dense step | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in stages:
        build = (f"{s.added_chunks / s.build_s:,.0f} ({s.build_cpu_s / s.added_chunks * 1000:.2f})"
                 if s.added_chunks else "(not built in this run)")
        reingest = f"{s.reingest_s:.1f} s" if s.reingest_s is not None else "–"
        server = (f"{s.server_mb[0]:,.0f} / {s.server_mb[1]:,.0f} MB" if s.server_mb
                  else "(embedded: in this process)")
        lines.append(
            f"| {s.chunks:,} ({s.documents:,}) | {build} "
            f"| {s.disk_mb:,.0f} MB | {s.rss_mb:,.0f} / {s.peak_rss_mb:,.0f} MB | {server} | {reingest} "
            f"| {s.search} | {s.lexical} | {s.dense} | {s.load:.1f} |"
        )
    return "\n".join(lines)


@contextmanager
def _state_database(database_url: str | None) -> Iterator[str | None]:
    """A scratch schema of ``database_url`` for the run, or None (the SQLite file)."""
    if not database_url:
        yield None
        return
    from bench.pgschema import scratch_schema

    with scratch_schema(database_url, "sitrep_bench_scale") as url:
        yield url


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", type=Path, help="where to build the store (default: a temporary folder)")
    ap.add_argument("--out", type=Path, help="markdown file to write the table into (e.g. docs/benchmarks.md)")
    ap.add_argument("--database-url", metavar="URL",
                    help="keep the state in a scratch schema of this PostgreSQL database instead of the SQLite file")
    ap.add_argument("--store", type=Path, help="keep the store in this folder (a store already there is grown)")
    ap.add_argument("--search-only", action="store_true", help="with --store: measure that store without building")
    ap.add_argument("--chroma-server", type=int, metavar="PORT",
                    help="keep the vectors in a Chroma server started on this port (as CHROMA_HOST would)")
    args = ap.parse_args(argv)
    if args.search_only and not args.store:
        ap.error("--search-only needs --store")
    if args.store and args.database_url:
        ap.error("--store keeps a SQLite store; the PostgreSQL scratch schema is dropped after the run")
    if not args.data.is_dir():
        print(f"No benchmark data at {args.data}: pass --data DIR (RealTime QA week files).", file=sys.stderr)
        return 2
    bench = load_benchmark([args.data], None)
    queries = [q.question for q in bench.questions]
    stages: list[Stage] = []
    with tempfile.TemporaryDirectory(prefix="sitrep-scale-", dir=args.workdir) as tmp, \
            _state_database(args.database_url) as url:
        store = args.store or Path(tmp) / "store"
        server = start_chroma(store / "chroma-server", args.chroma_server) if args.chroma_server else None
        try:
            for stage in grow(store, sorted(args.sizes), bench.articles, queries, args.rounds, url,
                              args.search_only, (server.pid, args.chroma_server) if server else None):
                stages.append(stage)
                print(render(stages, len(queries), args.rounds).splitlines()[-1], file=sys.stderr, flush=True)
        finally:
            if server is not None:
                server.terminate()
                server.wait()
    table = render(stages, len(queries), args.rounds)
    publish(args.out, table, "bench_scale.py", argv, name="bench_scale_pg" if url else "bench_scale")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
