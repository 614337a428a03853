"""Lexical index options side by side: build time, disk, query latency and agreement, on the same chunks.

    .venv/bin/python bench/bench_lexical.py [--chunks 100000] [--data DIR] [--options fts5,segments,tantivy,bm25s]

The chunks are synthetic news text (words drawn from the RealTime QA articles' word frequencies, ~150 words
each, an 8-word title shared by 10 consecutive chunks); the queries are the benchmark's question sentences.
Options:

- ``fts5``: what sitrep used before: SQLite FTS5, ``bm25()`` with a 0.4 title weight, query words found in
  more than 10% of chunks dropped (``fts5 unpruned``: all of them).
- ``segments``: :mod:`retrieval.lexical`, what sitrep uses now (a term scores its 20,000 best-weighted
  postings at most); ``segments, every posting``: the same index scoring every posting (exact BM25).
- ``tantivy`` (PyPI ``tantivy``) and ``bm25s`` (PyPI ``bm25s``), when installed: not dependencies of sitrep.

``agreement@60`` is the share of each option's top 60 that exact BM25 over the segment index (every posting
scored) also returns in its top 60.
Query times are interleaved (each query runs on every option in turn) so machine load hits all alike.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.realtimeqa import load_benchmark  # noqa: E402
from retrieval import lexical  # noqa: E402
from retrieval.search import query_terms, query_words  # noqa: E402
from retrieval.terms import words  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "benchmarks" / "realtimeqa-2022-dev"
DEPTH = 60
Chunk = tuple[str, str, str]  # (chunk_id, title, body)
Search = Callable[[str], list[str]]


def synthetic_chunks(texts: Sequence[str], n: int, seed: int = 3) -> list[Chunk]:
    """``n`` chunks of news-shaped word salad drawn from the word frequencies of ``texts``."""
    counts: dict[str, int] = {}
    for text in texts:
        for word in text.split():
            word = word.strip(".,;:!?\"'()[]“”‘’")
            if word.isalpha() and len(word) < 20:
                counts[word] = counts.get(word, 0) + 1
    vocab = np.array(list(counts))
    p = np.array(list(counts.values()), dtype=np.float64)
    rng = np.random.default_rng(seed)
    drawn = vocab[rng.choice(len(vocab), n * 150 + n, p=p / p.sum())]
    out, title = [], ""
    for i in range(n):
        if i % 10 == 0:
            title = " ".join(drawn[n * 150 + i : n * 150 + i + 8]).title()
        out.append((f"c{i}", title, " ".join(drawn[i * 150 : i * 150 + 150])))
    return out


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


# -- the options ----------------------------------------------------------------------------------------
def build_fts5(chunks: Sequence[Chunk], where: Path) -> tuple[Search, Search, Path]:
    conn = sqlite3.connect(where / "fts5.db", isolation_level=None)
    conn.executescript("PRAGMA journal_mode=WAL; CREATE VIRTUAL TABLE f USING fts5(chunk_id UNINDEXED, title, body,"
                       " tokenize = 'porter unicode61 remove_diacritics 2');"
                       "CREATE VIRTUAL TABLE v USING fts5vocab(f, 'row');"
                       "CREATE VIRTUAL TABLE temp.stem USING fts5(w, tokenize = 'porter unicode61 remove_diacritics 2')"
                       ";"
                       "CREATE VIRTUAL TABLE temp.stem_v USING fts5vocab(temp, stem, 'instance');")
    for start in range(0, len(chunks), 1000):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO f VALUES (?, ?, ?)", chunks[start : start + 1000])
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    total = len(chunks)
    df_cache: dict[str, int] = {}

    def pruned(query_words_: list[str]) -> list[str]:
        conn.execute("DELETE FROM temp.stem")
        conn.executemany("INSERT INTO temp.stem(rowid, w) VALUES (?, ?)", list(enumerate(query_words_, 1)))
        stems = {query_words_[d - 1]: t for t, d in conn.execute("SELECT term, doc FROM temp.stem_v")}
        for stem in set(stems.values()) - df_cache.keys():
            row = conn.execute("SELECT doc FROM v WHERE term = ?", (stem,)).fetchone()
            df_cache[stem] = int(row[0]) if row else 0
        df = {w: df_cache.get(stems.get(w, ""), 0) for w in query_words_}
        kept = [w for w in query_words_ if df[w] <= 0.1 * total]
        return kept or [min(query_words_, key=df.__getitem__)]

    def run(ws: list[str]) -> list[str]:
        match = " OR ".join(f'"{w}"' for w in ws)
        sql = "SELECT chunk_id, bm25(f, 0.0, 0.4, 1.0) AS s FROM f WHERE f MATCH ? ORDER BY s LIMIT ?"
        return [r[0] for r in conn.execute(sql, (match, DEPTH))]

    return (lambda q: run(pruned(query_words(q)))), (lambda q: run(query_words(q))), where / "fts5.db"


def build_segments(chunks: Sequence[Chunk], where: Path) -> tuple[Search, Search, Path]:
    conn = sqlite3.connect(where / "segments.db", isolation_level=None)
    conn.executescript("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;"
                       "CREATE TABLE chunks (chunk_id TEXT PRIMARY KEY);" + lexical.SCHEMA)
    for start in range(0, len(chunks), 1000):
        part = chunks[start : start + 1000]
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO chunks VALUES (?)", [(c[0],) for c in part])
        lexical.add_chunks(conn, [lexical.LexChunk(c[0], 0.0, c[1], c[2]) for c in part])
        conn.execute("COMMIT")
        lexical.merge_segments(conn)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # so the file size is the index size
    capped: Search = lambda q: [c for c, _ in lexical.search(conn, query_terms(q), DEPTH)]  # noqa: E731
    every: Search = lambda q: [  # noqa: E731
        c for c, _ in lexical.search(conn, query_terms(q), DEPTH, max_postings=len(chunks))]
    return capped, every, where / "segments.db"


def build_tantivy(chunks: Sequence[Chunk], where: Path) -> tuple[Search, Path]:
    import tantivy

    sb = tantivy.SchemaBuilder()
    sb.add_text_field("chunk_id", stored=True, tokenizer_name="raw")
    sb.add_text_field("title", tokenizer_name="en_stem")
    sb.add_text_field("body", tokenizer_name="en_stem")
    schema = sb.build()
    (where / "tantivy").mkdir()
    index = tantivy.Index(schema, path=str(where / "tantivy"))
    writer = index.writer(heap_size=100_000_000, num_threads=1)
    for start in range(0, len(chunks), 1000):
        for cid, title, body in chunks[start : start + 1000]:
            writer.add_document(tantivy.Document(chunk_id=cid, title=title, body=body))
        writer.commit()
    writer.wait_merging_threads()
    index.reload()
    searcher = index.searcher()

    def run(q: str) -> list[str]:
        ws = query_words(q)
        if not ws:
            return []
        query = index.parse_query(" OR ".join(ws), ["title", "body"], field_boosts={"title": 0.4})
        return [searcher.doc(addr)["chunk_id"][0] for _, addr in searcher.search(query, DEPTH).hits]

    return run, where / "tantivy"


def build_bm25s(chunks: Sequence[Chunk], where: Path) -> tuple[Search, Path]:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("porter")
    corpus = [f"{t} {b}" for _, t, b in chunks]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(corpus, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    retriever.save(str(where / "bm25s"))
    ids = [c[0] for c in chunks]

    def run(q: str) -> list[str]:
        tokens = bm25s.tokenize([q], stopwords="en", stemmer=stemmer, show_progress=False)
        if not tokens.vocab:
            return []
        docs, _ = retriever.retrieve(tokens, k=DEPTH, show_progress=False, n_threads=1)
        return [ids[i] for i in docs[0]]

    return run, where / "bm25s"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--options", default="fts5,segments,tantivy,bm25s")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    bench = load_benchmark([args.data], None)
    queries = [q.question for q in bench.questions]
    chunks = synthetic_chunks([a.text for a in bench.articles], args.chunks)
    wanted = args.options.split(",")
    searches: dict[str, Search] = {}
    rows: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="sitrep-lex-") as tmp:
        where = Path(tmp)
        for name in wanted:
            start = time.perf_counter()
            if name == "fts5":
                pruned, full, path = build_fts5(chunks, where)
                searches["fts5"], searches["fts5 unpruned"] = pruned, full
            elif name == "segments":
                capped, every, path = build_segments(chunks, where)
                searches["segments"], searches["segments, every posting"] = capped, every
            else:
                builder = {"tantivy": build_tantivy, "bm25s": build_bm25s}[name]
                searches[name], path = builder(chunks, where)
            built = time.perf_counter() - start
            rows[name] = [name, f"{built:.1f} s ({len(chunks) / built:,.0f} chunks/s)",
                          f"{dir_size(path) / 1e6:.0f} MB"]
            print(f"built {name} in {built:.1f} s", file=sys.stderr)
        for fn in searches.values():  # warm-up
            for q in queries[:5]:
                fn(q)
        times: dict[str, list[float]] = {n: [] for n in searches}
        results: dict[str, list[list[str]]] = {n: [] for n in searches}
        for r in range(args.rounds):
            for q in queries:
                for name, fn in searches.items():
                    start = time.perf_counter()
                    got = fn(q)
                    times[name].append(time.perf_counter() - start)
                    if r == 0:
                        results[name].append(got)
    ref = results.get("segments, every posting")
    load = os.getloadavg()
    print(f"{len(chunks):,} synthetic chunks, {len(queries)} queries × {args.rounds} rounds, interleaved; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end\n")
    print("| option | build | disk | query p50 | query p95 | agreement@60 with segments, every posting |")
    print("|---|---|---|---|---|---|")
    for name in searches:
        base = rows[next(option for option in rows if name.startswith(option))]
        ms = np.asarray(times[name]) * 1000
        agree = "—"
        if ref is not None and name != "segments, every posting":
            overlap = [len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(results[name], ref, strict=True) if b]
            agree = f"{np.mean(overlap):.2f}"
        build = base if name == base[0] else ["", "", ""]
        print(f"| {name} | {build[1]} | {build[2]} | {np.percentile(ms, 50):.1f} ms | "
              f"{np.percentile(ms, 95):.1f} ms | {agree} |")
    print(f"\nquery words per question: {np.mean([len(words(q)) for q in queries]):.1f}, "
          f"index terms: {np.mean([len(query_terms(q)) for q in queries]):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
