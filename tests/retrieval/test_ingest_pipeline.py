"""The ingest pipeline: batches committed in order by a writer thread, duplicates caught across queued
batches, writer failures surfaced, JSONL streamed line by line."""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from retrieval import ingest, preparing
from retrieval.corpus import Corpus
from retrieval.documents import Article, LoadFailure
from retrieval.errors import StoreError
from retrieval.loaders import FetchOptions, iter_sources
from retrieval.statedb import connection, state_location

pytestmark = pytest.mark.both_engines  # every store test here runs on SQLite and on PostgreSQL


class CountingEmbedder:
    """Deterministic pseudo-embeddings, recording each batch size: this is about batching, not meaning."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(len(texts))
        rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(384) for t in texts]
        out = np.asarray(rows, dtype=np.float32).reshape(len(texts), 384)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def _articles(n: int, prefix: str = "a") -> list[Article]:
    return [Article(text=f"Report {i}: flooding in district {i} displaced {i * 7} families near Lashkargah.",
                    source_key=f"{prefix}{i}", title=f"Floods {i}") for i in range(n)]


def test_batches_grow_and_every_article_is_committed(corpus_factory: Callable[..., Corpus],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = corpus_factory()
    fake = CountingEmbedder()
    monkeypatch.setattr(corpus, "embedder", fake)
    monkeypatch.setattr(ingest, "BATCH_CHUNKS", 64)
    report = corpus.ingest_articles(_articles(300))
    assert report.added == 300 and len(report.doc_ids) == 300
    assert fake.batches[:3] == [32, 64, 64] and sum(fake.batches) == 300  # one chunk per article
    assert corpus.stats().chunks == 300 == corpus.store.count()
    assert corpus.search("district 123", k=1, mode="lexical")[0].text.startswith("Report 123:")


def test_a_text_repeated_across_queued_batches_is_one_document(corpus_factory: Callable[..., Corpus],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = corpus_factory()
    monkeypatch.setattr(corpus, "embedder", CountingEmbedder())
    monkeypatch.setattr(ingest, "FIRST_BATCH_CHUNKS", 4)
    first = _articles(40)
    syndicated = [Article(text=a.text, source_key=f"copy-{a.source_key}", title=a.title) for a in first]
    report = corpus.ingest_articles(first + syndicated)  # the copies arrive while the originals are queued
    assert (report.added, report.duplicates) == (40, 40)
    stats = corpus.stats()
    assert (stats.documents, stats.sources) == (40, 80)


def test_a_failing_vector_store_stops_the_run_and_keeps_what_was_committed(
    corpus_factory: Callable[..., Corpus], monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = corpus_factory()
    monkeypatch.setattr(corpus, "embedder", CountingEmbedder())
    monkeypatch.setattr(ingest, "FIRST_BATCH_CHUNKS", 10)
    calls = {"n": 0}
    real_upsert = corpus.store.upsert

    def flaky(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise StoreError("The embedded Chroma store failed (test)")
        real_upsert(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(corpus.store, "upsert", flaky)
    with pytest.raises(StoreError, match="run the same ingest again"):
        corpus.ingest_articles(_articles(200))
    committed = corpus.stats().documents
    assert committed == 30  # batches of 10 and 20 went in; the third failed, nothing after it ran
    monkeypatch.setattr(corpus.store, "upsert", real_upsert)
    again = corpus.ingest_articles(_articles(200))
    assert (again.added, again.unchanged) == (170, 30)
    assert corpus.store.count() == corpus.stats().chunks == 200


def test_jsonl_is_read_line_by_line_with_a_cap_per_line(tmp_path: Path) -> None:
    path = tmp_path / "wire.jsonl"
    lines = [json.dumps({"id": f"s{i}", "title": f"Story {i}", "text": f"Body of story {i}. " * 20})
             for i in range(200)]
    lines[50] = json.dumps({"id": "huge", "text": "x " * 5000})
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cap = 2000  # bytes: the file is ~100 KB, far over it, and only one line is
    items = list(iter_sources([str(path)], options=FetchOptions(max_file_bytes=cap)))
    articles = [i for i in items if isinstance(i, Article)]
    failures = [i for i in items if isinstance(i, LoadFailure)]
    assert len(articles) == 199 and articles[-1].title == "Story 199"
    assert [f.error for f in failures] == [f"{path} line 51 is over the 1.95 KB limit (SITREP_MAX_FILE_BYTES)"]


def _long_articles(n: int) -> list[Article]:
    """Articles of several chunks each, every sentence different."""
    return [Article(text="\n".join(f"Paragraph {p} of report {i}: the convoy reached checkpoint {p * 13 + i} after "
                                   f"{p + i} hours, and officials in district {i} counted {p * i + 3} trucks."
                                   for p in range(40)),
                    source_key=f"long{i}", title=f"Convoy report {i}") for i in range(n)]


def _started_and_up(real_start: Callable[[bool], tuple[Any, list[Future[bool]]]], started: list[int]
                    ) -> Callable[[bool], tuple[Any, list[Future[bool]]]]:
    """``_start_workers`` that waits until the workers are up, so a short run hands them its articles."""
    def start(count_pieces: bool) -> tuple[Any, list[Future[bool]]]:
        started.append(int(count_pieces))
        pool, ready = real_start(count_pieces)
        wait(ready)
        return pool, ready

    return start


def test_worker_processes_chunk_exactly_as_inline_planning(corpus_factory: Callable[..., Corpus], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []
    counting_start = _started_and_up(ingest._start_workers, started)

    monkeypatch.setattr(ingest, "_start_workers", counting_start)
    monkeypatch.setattr(ingest._Writer, "starved", True)  # as with a fast embedder: cleaning is the slower side
    articles = _long_articles(12)
    inline = corpus_factory(tmp_path / "inline", articles)
    assert started == []  # a short run never starts a worker
    monkeypatch.setattr(ingest, "PARALLEL_AFTER", 3)
    # A store of its own (SQLite), even when ``inline`` is in PostgreSQL: the same state would find the
    # articles unchanged and prepare none of them.
    pooled = corpus_factory(tmp_path / "pooled", articles, database_url=None)
    assert started == [1]  # with MiniLM, the worker counts word pieces itself

    def chunks(corpus: Corpus) -> list[tuple[str, int, int, int]]:
        return corpus.state.conn.execute(
            "SELECT chunk_id, idx, char_start, char_end FROM chunks ORDER BY chunk_id").fetchall()

    assert len(chunks(pooled)) > 3 * len(articles) and [tuple(r) for r in chunks(pooled)] == [
        tuple(r) for r in chunks(inline)]
    changed = [*articles[:-1], Article(text=articles[-1].text + "\nA late update: the road reopened.",
                                       source_key=articles[-1].source_key, title=articles[-1].title)]
    again = pooled.ingest_articles(changed)  # unchanged ones are not prepared again; the changed one is
    assert (again.unchanged, again.updated, again.added) == (11, 1, 0)
    assert started == [1]  # one article to prepare: inline, no worker
    assert pooled.search("the road reopened", k=1, mode="lexical")[0].doc_id == again.doc_ids[-1]


def test_unchanged_input_is_neither_cleaned_nor_chunked_again(corpus_factory: Callable[..., Corpus],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = corpus_factory()
    monkeypatch.setattr(corpus, "embedder", CountingEmbedder())
    articles = _long_articles(6)
    corpus.ingest_articles(articles)
    cleaned: list[str] = []
    real_prepare = preparing.prepare

    def counting_prepare(article: Article) -> object:
        cleaned.append(article.source_key)
        return real_prepare(article)

    monkeypatch.setattr(preparing, "prepare", counting_prepare)
    again = corpus.ingest_articles(articles)
    assert (again.unchanged, again.updated, again.added) == (6, 0, 0) and cleaned == []
    retitled = [*articles[:-1], Article(text=articles[-1].text, source_key=articles[-1].source_key,
                                        title="Convoy report, updated")]
    again = corpus.ingest_articles(retitled)  # another input: cleaned, and its text is still the stored one
    assert again.unchanged == 6 and cleaned == ["long5"]
    assert corpus.ingest_articles(retitled).unchanged == 6 and cleaned == ["long5"]  # that input is known now
    with connection(corpus.state.location) as conn:  # as in a store from before raw hashes were kept
        conn.execute("UPDATE sources SET raw_hash = NULL")
    assert corpus.ingest_articles(retitled).unchanged == 6 and len(cleaned) == 7  # cleaned once more, then known
    assert corpus.ingest_articles(retitled).unchanged == 6 and len(cleaned) == 7
    changed = [*retitled[1:], Article(text=articles[0].text + "\nThe road reopened.", source_key="long0",
                                       title=articles[0].title)]
    assert corpus.ingest_articles(changed).updated == 1 and cleaned[-1] == "long0"
    assert corpus.search("the road reopened", k=1, mode="lexical")[0].text.endswith("The road reopened.")


def _dying_worker(*args: object) -> object:
    """Stands in for the worker's task: the worker process dies (as if killed for memory)."""
    import os

    os._exit(1)


def test_a_run_goes_on_when_its_worker_process_dies(corpus_factory: Callable[..., Corpus],
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    corpus = corpus_factory()
    monkeypatch.setattr(ingest, "PARALLEL_AFTER", 5)
    monkeypatch.setattr(ingest._Writer, "starved", True)
    monkeypatch.setattr(ingest, "_start_workers", _started_and_up(ingest._start_workers, []))
    monkeypatch.setattr(ingest, "worker_prepare", _dying_worker)
    articles = _long_articles(12)
    with caplog.at_level(logging.WARNING, logger="retrieval.ingest"):
        report = corpus.ingest_articles(articles)
    assert any("ingest.worker_lost" in r.getMessage() for r in caplog.records)
    assert report.added == 12 and not report.failed
    assert corpus.stats().documents == 12 and corpus.store.count() == corpus.stats().chunks


def test_articles_are_prepared_inline_while_the_worker_starts(corpus_factory: Callable[..., Corpus],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = corpus_factory()
    real_start = ingest._start_workers
    handed: list[object] = []

    def still_starting(count_pieces: bool) -> tuple[Any, list[Future[bool]]]:
        pool, _ = real_start(count_pieces)
        real_submit = pool.submit
        monkeypatch.setattr(pool, "submit", lambda fn, *a, **k: handed.append(fn) or real_submit(fn, *a, **k))
        return pool, [Future()]  # never up during this run

    monkeypatch.setattr(ingest, "PARALLEL_AFTER", 3)
    monkeypatch.setattr(ingest._Writer, "starved", True)
    monkeypatch.setattr(ingest, "_start_workers", still_starting)
    report = corpus.ingest_articles(_long_articles(12))  # nothing waits for the worker, not even the run's end
    assert report.added == 12 and not report.failed and handed == []
    assert corpus.stats().documents == 12 and corpus.store.count() == corpus.stats().chunks


def test_workers_clean_at_a_lower_priority_and_leave_ctrl_c_to_the_ingest_process() -> None:
    pool, ready = ingest._start_workers(False)
    try:
        wait(ready)
        assert pool.submit(os.nice, 0).result() == os.nice(0) + preparing.WORKER_NICENESS
        assert pool.submit(signal.getsignal, signal.SIGINT).result() == signal.SIG_IGN
    finally:
        pool.shutdown()


def test_ctrl_c_while_the_writer_drains_drops_its_queue_and_still_waits_for_its_threads(
        corpus_factory: Callable[..., Corpus], monkeypatch: pytest.MonkeyPatch) -> None:
    writer = ingest._Writer(corpus_factory()._ingestor(None, False), ingest.IngestReport(), lambda n: None)
    embedding, real_join = writer._threads[0], writer._threads[0].join
    interrupts = [KeyboardInterrupt()]

    def join(timeout: float | None = None) -> None:
        if interrupts:
            raise interrupts.pop()  # Ctrl-C arrives while the run waits for the queued batches
        real_join(timeout)

    monkeypatch.setattr(embedding, "join", join)
    with pytest.raises(KeyboardInterrupt):
        writer.close(abandon=False)
    assert writer.abandon and not any(thread.is_alive() for thread in writer._threads)


def test_a_stopped_run_stops_embedding_between_slices_of_a_batch(corpus_factory: Callable[..., Corpus],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = corpus_factory()
    calls: list[int] = []

    def embed(texts: Sequence[str]) -> np.ndarray:
        calls.append(len(texts))
        return np.ones((len(texts), 384), dtype=np.float32)

    monkeypatch.setattr(corpus.embedder, "embed", embed)
    ingestor = corpus._ingestor(None, False)
    batch: Any = [SimpleNamespace(embed_texts=[f"chunk {i}" for i in range(100)], version=None)]
    embedded = ingestor.embed(batch)
    assert embedded is not None and embedded.vectors.shape == (100, 384) and calls == [ingest.EMBED_SLICE, 36]
    calls.clear()
    assert ingestor.embed(batch, stop=lambda: bool(calls)) is None and calls == [ingest.EMBED_SLICE]


def test_workers_start_only_when_embedding_waits_for_cleaning(corpus_factory: Callable[..., Corpus], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []
    monkeypatch.setattr(ingest, "_start_workers", _started_and_up(ingest._start_workers, started))
    monkeypatch.setattr(ingest, "PARALLEL_AFTER", 3)
    articles = _long_articles(40)  # batches of 32, 64, 128 and the rest: several chances to wait

    class ModelPaced(CountingEmbedder):
        """As slow as a model on a loaded machine: each batch keeps it busy while the next one is planned."""

        def embed(self, texts: Sequence[str]) -> np.ndarray:
            time.sleep(0.5)
            return super().embed(texts)

    slow = corpus_factory(tmp_path / "model")
    monkeypatch.setattr(slow, "embedder", ModelPaced())
    assert slow.ingest_articles(articles).added == 40 and started == []
    fast = corpus_factory(tmp_path / "fast", database_url=None)
    monkeypatch.setattr(fast, "embedder", CountingEmbedder())  # embeds at once, then waits for the next batch
    assert fast.ingest_articles(articles).added == 40 and len(started) == 1


def test_a_run_known_to_be_long_starts_its_worker_early(corpus_factory: Callable[..., Corpus], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    handed: list[str] = []  # source keys of the articles the worker prepared
    real_start = _started_and_up(ingest._start_workers, [])

    def counting(count_pieces: bool) -> tuple[Any, list[Future[bool]]]:
        pool, ready = real_start(count_pieces)
        real_submit = pool.submit
        monkeypatch.setattr(pool, "submit", lambda fn, *a, **k: (
            handed.extend(x.source_key for x in a[0]) if fn is ingest.worker_prepare else None) or real_submit(
                fn, *a, **k))
        return pool, ready

    monkeypatch.setattr(ingest, "_start_workers", counting)
    monkeypatch.setattr(ingest._Writer, "starved", True)
    monkeypatch.setattr(ingest, "PARALLEL_AFTER", 9)
    monkeypatch.setattr(ingest, "KNOWN_LONG_AFTER", 2)
    articles = _long_articles(12)
    streamed = corpus_factory(tmp_path / "streamed").ingest_articles(iter(articles))  # length unknown
    assert streamed.added == 12 and handed == ["long9", "long10", "long11"]
    handed.clear()
    listed = corpus_factory(tmp_path / "listed", database_url=None)
    assert listed.ingest_articles(articles).added == 12 and handed == [f"long{i}" for i in range(2, 12)]
    handed.clear()
    changed = [*articles[:-1], Article(text=articles[-1].text + "\nThe road reopened.", source_key="long11",
                                       title=articles[-1].title)]
    again = listed.ingest_articles(changed)
    assert (again.unchanged, again.updated) == (11, 1) and handed == []  # one article to prepare: inline


def test_progress_counts_an_article_once_it_is_saved(corpus_factory: Callable[..., Corpus],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = corpus_factory()
    corpus.ingest_articles(_articles(5, prefix="old"))
    monkeypatch.setattr(ingest, "BATCH_CHUNKS", 64)
    seen: list[tuple[int, int]] = []  # (articles counted so far, documents committed at that moment)

    def done(n: int) -> None:
        counted = (seen[-1][0] if seen else 0) + n
        with connection(state_location(corpus.config.data_dir, corpus.config.database_url)) as conn:
            seen.append((counted, conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]))

    new = [Article(text=f"Bulletin {i}: the road to Nad Ali reopened after {i + 2} days.", source_key=f"new{i}",
                   title=f"Road {i}") for i in range(150)]
    items: list[Article | LoadFailure] = [*_articles(5, prefix="old"), LoadFailure("bad.txt", "unreadable"), *new]
    report = corpus._ingestor(None, force=False).run(items, on_done=done)
    assert report.added == 150 and report.unchanged == 5
    assert seen[-1][0] == len(items)  # every item counted once
    # New articles are counted when their batch is committed, never before: the count of saved new
    # articles (counted minus the 5 unchanged and the failure) never exceeds what the store holds.
    assert all(counted - 6 <= committed - 5 for counted, committed in seen if counted > 6)
