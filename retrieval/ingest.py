"""The ingestion pipeline: normalize → de-duplicate → chunk → embed → store, crash-safe.

Order of writes for a batch of new document versions:
1. journal the new Chroma ids as ``writing`` (the state database: SQLite, or PostgreSQL);
2. upsert their vectors into Chroma;
3. one SQLite transaction swaps each document's live chunks and lexical rows, links sources,
   journals the replaced ids as ``retired`` and drops the ``writing`` entry — the commit point;
4. delete the retired ids from Chroma and drop their journal entry.
Search only returns ids SQLite lists as live, so a reader sees the old version or the new one,
never both or neither. A ``kill -9`` anywhere leaves SQLite consistent; the journal tells the next
run which Chroma ids to remove, and the sources not yet committed are simply ingested again.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import multiprocessing
import os
import queue
import sys
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from retrieval import lexical
from retrieval.chunking import ChunkingConfig, chunk_text, embedding_text
from retrieval.cleaning import CLEANER_VERSION
from retrieval.date_repair import DateChange, DateRepair, Redated, apply_changes, recheck_source
from retrieval.dating import date_article
from retrieval.documents import Article, LoadFailure, LoadWarning
from retrieval.embeddings import Embedder
from retrieval.loaders.dates import PARSER_VERSION
from retrieval.preparing import (
    NEVER_CHUNK,
    Prepped,
    prepare_article,
    raw_hash,
    unchanged,
    worker_init,
    worker_prepare,
    worker_ready,
)
from retrieval.state import DocRow, NewVersion, SourceLink, StateDB, lexical_segment
from retrieval.statedb import connection
from retrieval.store import VectorStore
from retrieval.tombstones import article_keys
from retrieval.wordpieces import WordPieceCounter

log = logging.getLogger(__name__)

# Chunks embedded, written to Chroma and committed together. Batches start small, so the first articles
# are searchable within seconds, and double up to the maximum, where per-batch costs are negligible.
FIRST_BATCH_CHUNKS = 32
BATCH_CHUNKS = 512
QUEUE_BATCHES = 2  # planned batches waiting for the writer thread: bounds memory
TOUCH_BATCH = 5000  # unchanged sources marked as seen in groups of this many
CHUNKER_VERSION = "c1"  # part of chunk ids: changing the chunker re-chunks everything
# Cleaning and chunking are pure Python (regexes, tokenizers) and hold the GIL: next to the writer thread
# they ran on one core. A run longer than PARALLEL_AFTER articles hands them to worker processes, so they
# overlap with embedding and writing; a short run never pays for starting them (CPU taken from the model's
# threads while it embeds: see docs/benchmarks.md). Articles are prepared inline while they start,
# which is why a run known to be long (a list, a counted folder or JSONL file) starts it after
# KNOWN_LONG_AFTER articles to prepare: a few, so that a re-ingest of mostly unchanged input still starts none.
# Either way only once embedding has had to wait for planned batches: next to the local model, cleaning inline
# takes a sliver of the CPU, and the workers' start and their share of the cores would cost the model more.
PARALLEL_AFTER = 64
KNOWN_LONG_AFTER = 8
PREPARE_AHEAD = 64  # articles handed to the workers and not yet planned: bounds memory
# Articles per task sent to a worker. One article a task starved it: the pool keeps only a task or two queued
# for each worker, and refills that queue from a thread of this process, which waits for the GIL while the
# planning and writing threads hold it; a task of several articles keeps the worker busy meanwhile.
PREPARE_BATCH = 8
# Chunks embedded between two checks for a stopped run: Ctrl-C used to wait for the model to finish a whole batch.
EMBED_SLICE = 64
# At most, and no more than there are cores. They run at a lower priority (see retrieval.preparing), so they take
# only the CPU that embedding and writing leave: with one worker beside them on two cores both idled by turns.
PREPARE_WORKERS = 2


@dataclass
class IngestReport:
    """Counts of one ingestion run, and each failing source."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    failed: list[LoadFailure] = field(default_factory=list)
    doc_ids: list[str] = field(default_factory=list)
    warnings: list[LoadWarning] = field(default_factory=list)  # e.g. a date that could not be read
    redated: list[Redated] = field(default_factory=list)  # stored documents whose date was read again
    refused: list[str] = field(default_factory=list)  # source keys refused as removed (also in ``failed``)

    def add_repair(self, repair: DateRepair) -> None:
        """Include what a pass over stored dates changed."""
        self.redated += repair.redated
        self.warnings += repair.warnings

    def to_json(self) -> dict[str, object]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "duplicates": self.duplicates,
            "failed": [{"source": f.source, "error": f.error} for f in self.failed],
            "warnings": [{"source": w.source, "warning": w.warning} for w in self.warnings],
            "redated": len(self.redated),
            "redated_documents": [r.to_json() for r in self.redated],
        }


@dataclass
class _Pending:
    version: NewVersion | None
    link: SourceLink
    retire_doc: str | None
    outcome: str  # added | updated | duplicates
    embed_texts: list[str] = field(default_factory=list)
    unblock: list[str] = field(default_factory=list)  # tombstones a forced ingest lifts


@dataclass(frozen=True)
class _Embedded:
    """A batch's vectors and lexical segment, ready to be written."""

    vectors: np.ndarray
    segment: lexical.Segment | None


@contextmanager
def ingest_lock(data_dir: Path, on_wait: Callable[[], object] | None = None,
                database_url: str | None = None) -> Iterator[None]:
    """Serialize ingests across processes (the CLI and a running bot may both ingest).

    With a PostgreSQL ``database_url`` the lock lives in the database (an advisory lock per schema), so
    ingests on different hosts sharing it take turns too; otherwise it is a file lock in ``data_dir``.
    ``on_wait`` is called once when another process holds the lock, before waiting for it.
    """
    if database_url:
        with _database_lock(database_url, on_wait):
            yield
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "ingest.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# The ingest lock's key: one per schema, so several sitrep deployments can share a database.
_LOCK_KEY = "hashtext('sitrep-ingest'), hashtext(current_schema())"


@contextmanager
def _database_lock(url: str, on_wait: Callable[[], object] | None) -> Iterator[None]:
    """A session-level advisory lock held on a connection of its own (released if this process dies)."""
    with connection(url) as conn:
        if not conn.execute(f"SELECT pg_try_advisory_lock({_LOCK_KEY})").fetchone()[0]:
            if on_wait is not None:
                on_wait()
            conn.execute(f"SELECT pg_advisory_lock({_LOCK_KEY})")
        try:
            yield
        finally:
            conn.execute(f"SELECT pg_advisory_unlock({_LOCK_KEY})")


def recover(state: StateDB, store: VectorStore) -> int:
    """Remove Chroma ids left by an interrupted run (written but never made live, or retired)."""
    removed = 0
    for journal_id, ids, state_name in state.stale_journal():
        live = state.live_subset(ids) if state_name == "writing" else set()
        dead = [i for i in ids if i not in live]
        store.delete(dead)
        state.drop_journal([journal_id])
        removed += len(dead)
    if removed:
        log.info("ingest.recovered orphan_vectors=%d", removed)
    return removed


def _version(digest: str) -> str:
    return digest[:12] + CHUNKER_VERSION + CLEANER_VERSION


def _made_from(current: DocRow | None, article: Article, raw: str) -> bool:
    """Whether the source's stored version was made from this very input by the current cleaner and chunker.

    A feed entry's summary is always prepared: whether it replaces nothing depends on its cleaned text.
    """
    return (current is not None and article.kind != "feed" and current.raw_hash == raw
            and current.version == _version(current.content_hash))


def _start_workers(count_pieces: bool) -> tuple[ProcessPoolExecutor, list[Future[bool]]]:
    """Start the worker processes that clean and chunk (``PREPARE_WORKERS``, one per core at most), without
    waiting for them: each returned future is done when its process is up (it has imported what it runs).

    They are spawned (forking a process with a writer thread and a tokenizer thread pool is unsafe), and
    spawned without re-importing the ``__main__`` module: the workers only run :mod:`retrieval.preparing`,
    and the main module (the CLI, the bot, a benchmark) would load Chroma and onnxruntime into each of them.
    """
    workers = max(1, min(PREPARE_WORKERS, (os.cpu_count() or 2)))
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=worker_init,
                               initargs=(count_pieces,))
    main = sys.modules["__main__"]
    saved = {name: main.__dict__[name] for name in ("__file__", "__spec__") if name in main.__dict__}
    try:
        main.__dict__.pop("__file__", None)
        main.__dict__["__spec__"] = None
        # Each submission launches a process here, in this thread (with the main module hidden from it); its
        # imports then run in the new process while this one goes on.
        ready = [pool.submit(worker_ready, n) for n in range(workers)]
    finally:
        main.__dict__.update(saved)
        if "__spec__" not in saved:
            main.__dict__.pop("__spec__", None)
    return pool, ready


@dataclass
class _Handed:
    """Articles handed to the worker in one task; ``future`` is None until the task is sent."""

    articles: list[Article] = field(default_factory=list)
    skip_hashes: list[str | None] = field(default_factory=list)
    future: Future[list[Prepped]] | None = None


# How an item's preparation comes: done already, the n-th article of a task, or None (inline).
_Preparation = Future[Prepped] | tuple[_Handed, int] | None


class _Preparer:
    """Yields each item with its preparation, in input order: inline for the first ``PARALLEL_AFTER`` articles
    (``KNOWN_LONG_AFTER`` when the run is known to be longer), until embedding has waited for planning
    (``_Writer.starved``) and while the worker processes start; then from the workers, handed ``PREPARE_BATCH``
    articles a task and running up to ``PREPARE_AHEAD`` articles ahead.
    An article whose source's stored version was made from the same raw input is not prepared at all
    (:func:`retrieval.preparing.unchanged`)."""

    def __init__(self, ingestor: Ingestor, expected: int | None, writer: _Writer) -> None:
        self.ingestor = ingestor
        self.writer = writer
        # Articles this run prepares before it starts the worker.
        long_run = expected is not None and expected > PARALLEL_AFTER
        self.inline_first = min(KNOWN_LONG_AFTER, PARALLEL_AFTER) if long_run else PARALLEL_AFTER
        wordpieces = ingestor.wordpieces
        # A worker builds its own word-piece counter; any other counter (tests) keeps the work inline.
        self.poolable = wordpieces is None or isinstance(getattr(wordpieces, "__self__", None), WordPieceCounter)
        self.pool: ProcessPoolExecutor | None = None
        self.ready: list[Future[bool]] = []  # done when the worker processes are up
        self.broken = False  # the worker process died: the rest of the run prepares inline
        self.to_prepare = 0  # articles of this run that needed cleaning so far
        self.handing = _Handed()  # articles for the next task, not sent yet

    def _pool_ready(self) -> bool:
        """Whether articles go to the workers now (not before they are up, nor after one was lost)."""
        if self.pool is None or self.broken or not all(f.done() for f in self.ready):
            return False
        if any(f.exception() is not None for f in self.ready):  # a worker died while starting
            self._lost()
            return False
        return True

    def _lost(self) -> None:
        if not self.broken:
            log.warning("ingest.worker_lost cleaning and chunking continue in this process")
        self.broken = True

    @staticmethod
    def _skip_hash(art: Article, current: DocRow | None) -> str | None:
        """The text hash for which chunking is wasted: the source's stored version is current for it."""
        if current is None:
            return None
        if art.kind == "feed":
            return NEVER_CHUNK
        return current.content_hash if current.version == _version(current.content_hash) else None

    def stream(self, items: Iterable[Article | LoadFailure]
               ) -> Iterator[tuple[Article | LoadFailure, Prepped | None]]:
        ahead: deque[tuple[Article | LoadFailure, _Preparation]] = deque()
        try:
            for item in items:
                ahead.append((item, None if isinstance(item, LoadFailure) else self._submit(item)))
                while len(ahead) > (PREPARE_AHEAD if self._pool_ready() else 0):
                    yield self._next(ahead)
            while ahead:
                yield self._next(ahead)
        finally:
            if self.pool is not None:
                # A worker still starting was never used: the run need not wait for it to come up.
                self.pool.shutdown(wait=self._pool_ready(), cancel_futures=True)

    def _submit(self, item: Article) -> _Preparation:
        """Start preparing ``item``: None leaves it to the planning thread (inline)."""
        if self.broken and self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool, self.poolable = None, False
        current = self.ingestor.state.doc_for_source(item.source_key)
        raw = raw_hash(item)
        if _made_from(current, item, raw):
            assert current is not None
            return _done(unchanged(item, current.content_hash, raw))
        self.to_prepare += 1  # counts only articles to prepare: unchanged input never starts a worker
        if self.pool is None and self.to_prepare > self.inline_first and self.poolable and self.writer.starved:
            self.pool, self.ready = _start_workers(self.ingestor.wordpieces is not None)
        if not self._pool_ready():
            return None  # planned inline, chunked only when needed
        handed = self.handing
        handed.articles.append(item)
        handed.skip_hashes.append(self._skip_hash(item, current))
        if len(handed.articles) >= PREPARE_BATCH:
            self._hand_over()
        return handed, len(handed.articles) - 1

    def _hand_over(self) -> None:
        """Send the articles gathered for the worker as one task."""
        handed, self.handing = self.handing, _Handed()
        if handed.articles:
            assert self.pool is not None
            handed.future = self.pool.submit(worker_prepare, handed.articles, self.ingestor.chunking,
                                             handed.skip_hashes)

    def _next(self, ahead: deque[tuple[Article | LoadFailure, _Preparation]]
              ) -> tuple[Article | LoadFailure, Prepped | None]:
        item, preparation = ahead.popleft()
        if preparation is None:
            return item, None
        try:
            if isinstance(preparation, Future):
                return item, preparation.result()
            handed, index = preparation
            if handed.future is None:  # the task is still gathering articles: this one is wanted now
                if self.pool is None:  # the worker was lost meanwhile
                    return item, None
                self._hand_over()
            assert handed.future is not None
            return item, handed.future.result()[index]
        except BrokenProcessPool:  # e.g. the worker was killed for memory: the run goes on without it
            self._lost()
            return item, None


def _done(prepped: Prepped) -> Future[Prepped]:
    future: Future[Prepped] = Future()
    future.set_result(prepped)
    return future


class _InFlight:
    """Texts and sources planned but not yet committed, so duplicates across queued batches are caught."""

    def __init__(self) -> None:
        self.hashes: dict[str, str] = {}  # content hash -> doc_id
        self.keys: set[str] = set()
        self._batches: deque[tuple[int, list[str], list[str]]] = deque()
        self._open: tuple[list[str], list[str]] = ([], [])

    def add(self, pending: _Pending) -> None:
        self.keys.add(pending.link.source_key)
        self._open[1].append(pending.link.source_key)
        if pending.version is not None:
            self.hashes[pending.version.content_hash] = pending.version.doc_id
            self._open[0].append(pending.version.content_hash)

    def seal(self, number: int) -> None:
        """The pending items added since the last seal went into batch ``number``."""
        self._batches.append((number, *self._open))
        self._open = ([], [])

    def forget_up_to(self, committed: int) -> None:
        """Batches up to ``committed`` are in the database now: lookups there find them."""
        while self._batches and self._batches[0][0] <= committed:
            _, hashes, keys = self._batches.popleft()
            for digest in hashes:
                self.hashes.pop(digest, None)
            self.keys.difference_update(keys)


class _Writer:
    """Embeds, writes to Chroma and commits planned batches in order, on two threads of its own.

    One thread embeds; the other journals, writes to Chroma and commits (on its own connection) the batch
    embedded before, so the model never waits for the writes. The planning thread (loading, cleaning,
    chunking) runs ahead by at most ``QUEUE_BATCHES`` batches, so memory stays bounded.
    """

    # Set once the embedding thread, past its first batch, found no planned batch waiting: planning (cleaning,
    # chunking) is the slower side, and worker processes for it pay off.
    starved = False

    def __init__(self, ingestor: Ingestor, report: IngestReport, on_done: Callable[[int], None]) -> None:
        self.ingestor = ingestor
        self.report = report
        self.on_done = on_done  # told how many documents each committed batch held
        self.committed = 0  # number of the last committed batch
        self.error: BaseException | None = None
        self.abandon = False
        self._planned: queue.Queue[tuple[int, list[_Pending]] | None] = queue.Queue(maxsize=QUEUE_BATCHES)
        self._embedded: queue.Queue[tuple[int, list[_Pending], _Embedded] | None] = queue.Queue(maxsize=1)
        self._threads = [threading.Thread(target=self._embed_loop, name="sitrep-ingest-embed", daemon=True),
                         threading.Thread(target=self._store_loop, name="sitrep-ingest-store", daemon=True)]
        for thread in self._threads:
            thread.start()

    def put(self, number: int, batch: list[_Pending]) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self._planned.put((number, batch), timeout=0.2)
                return
            except queue.Full:
                continue

    def close(self, abandon: bool) -> None:
        """Wait for the queued batches (or drop them when ``abandon``); re-raise the writers' error.

        Ctrl-C while this waits drops the batches not yet written and still waits for both threads (within a
        slice of embedding): a thread left inside the model when the interpreter exits aborts it.
        """
        self.abandon = abandon
        interrupted: KeyboardInterrupt | None = None
        for step in (lambda: self._planned.put(None), *(thread.join for thread in self._threads)):
            while True:
                try:
                    step()
                    break
                except KeyboardInterrupt as exc:
                    interrupted, self.abandon = exc, True
        if interrupted is not None:
            raise interrupted
        if self.error is not None and not abandon:
            raise self.error

    def _skipping(self) -> bool:
        return self.error is not None or self.abandon

    def _embed_loop(self) -> None:
        embedded_one = False
        while True:
            if embedded_one and self._planned.empty():
                self.starved = True
            if (job := self._planned.get()) is None:
                break
            embedded_one = True
            if self._skipping():
                continue
            try:
                vectors = self.ingestor.embed(job[1], stop=self._skipping)
            except BaseException as exc:  # handed to the planning thread, which raises it
                self.error = exc
                continue
            if vectors is not None:  # None: the run stopped while the batch was embedded
                self._embedded.put((*job, vectors))
        self._embedded.put(None)

    def _store_loop(self) -> None:
        state = self.ingestor.open_state()
        try:
            while (job := self._embedded.get()) is not None:
                if self._skipping():
                    continue
                try:
                    self.ingestor.write(state, job[1], job[2], self.report)
                    self.committed = job[0]
                    self.on_done(len(job[1]))
                except BaseException as exc:  # handed to the planning thread, which raises it
                    self.error = exc
        finally:
            if state is not self.ingestor.state:
                state.close()


class Ingestor:
    """Turns a stream of articles into committed document versions."""

    def __init__(self, state: StateDB, store: VectorStore, embedder: Embedder,
                 wordpieces: Callable[[str], Sequence[int]] | None, chunking: ChunkingConfig | None = None,
                 open_state: Callable[[], StateDB] | None = None, date_order: str | None = None,
                 force: bool = False) -> None:
        self.state = state
        self.force = force  # ingest removed articles again (lifting their tombstones)
        self.store = store
        self.embedder = embedder
        self.wordpieces = wordpieces
        self.chunking = chunking or ChunkingConfig()
        self.open_state = open_state or (lambda: StateDB(state.location))
        self.date_order = date_order  # how these sources write numeric dates: "dmy", "mdy" or unknown
        self._date_changes: list[DateChange] = []
        self._touched: list[tuple[str, str | None]] = []  # sources seen but not written: (key, raw hash to keep)

    def run(self, items: Iterable[Article | LoadFailure], on_done: Callable[[int], None] | None = None,
            expected: int | None = None) -> IngestReport:
        """Ingest ``items`` as they arrive (nothing is read ahead beyond the queued batches).

        ``expected``: how many items the run holds, when known beforehand (a sized ``items`` says it itself).

        ``on_done(n)``: n more items are finished — failed or unchanged at once, new or changed ones when their
        batch is committed (embedding comes last, so a count of items read would run ahead of the work).
        """
        report = IngestReport()
        inflight = _InFlight()
        done = on_done or (lambda n: None)
        writer = _Writer(self, report, done)
        batch: list[_Pending] = []
        chunks_in_batch = number = 0
        batch_limit = FIRST_BATCH_CHUNKS
        failed = True
        if expected is None and isinstance(items, Sized):
            expected = len(items)
        prepared_items = _Preparer(self, expected, writer).stream(items)
        try:
            for item, prepped in prepared_items:
                if isinstance(item, LoadFailure):
                    report.failed.append(item)
                    done(1)
                else:
                    inflight.forget_up_to(writer.committed)
                    pending = self._plan(item, inflight, report, prepped)
                    if pending is None:
                        done(1)
                        if len(self._touched) >= TOUCH_BATCH:
                            self.state.touch_sources(self._touched)
                            self._touched = []
                    else:
                        batch.append(pending)
                        inflight.add(pending)
                        chunks_in_batch += len(pending.version.chunks) if pending.version else 0
                    if chunks_in_batch >= batch_limit:
                        batch_limit = min(BATCH_CHUNKS, batch_limit * 2)
                        number += 1
                        inflight.seal(number)
                        writer.put(number, batch)
                        batch, chunks_in_batch = [], 0
            if batch:
                number += 1
                writer.put(number, batch)
            failed = False
        finally:
            prepared_items.close()  # stops the worker process, if one was started
            writer.close(abandon=failed)
        self.state.touch_sources(self._touched)
        self._touched = []
        redated, warnings = apply_changes(self.state, self.store, self._date_changes)
        report.redated += redated
        report.warnings += warnings
        self._date_changes = []
        return report

    def _plan(self, loaded: Article, inflight: _InFlight, report: IngestReport,
              prepped: Prepped | None = None) -> _Pending | None:
        current = self.state.doc_for_source(loaded.source_key)
        if prepped is not None and not prepped.cleaned and not _made_from(current, loaded, prepped.raw):
            prepped = None  # an earlier article of this run changed the source since it was looked up
        if prepped is None:
            # Inline, chunking waits until the text is known to need it (below).
            prepped = prepare_article(loaded, self.chunking, self.wordpieces, NEVER_CHUNK)
        prepared = prepped.prepared
        art, text = prepared.article, prepared.article.text
        if not text:
            clutter = Counter(r.rule for r in prepared.removed if not r.rule.startswith("title"))
            what = f" ({', '.join(f'{n} {rule}' for rule, n in clutter.most_common())} lines removed as page clutter)"
            report.failed.append(LoadFailure(art.source_key, f"{art.source_key}: no article text"
                                                             f"{what if clutter else ''}"))
            self._touched.append((art.source_key, None))
            return None
        if art.source_key in inflight.keys:
            # The same source twice in one run: the later text wins in the next run; skip now.
            report.unchanged += 1
            self._touched.append((art.source_key, None))
            return None
        digest = prepped.digest
        keys = article_keys(art.source_key, art.url, digest)
        removed = self.state.tombstone(keys)
        if removed and not self.force:
            report.failed.append(LoadFailure(art.source_key, removed.refusal(art.source_key)))
            report.refused.append(art.source_key)
            self._touched.append((art.source_key, None))
            return None
        unblock = keys if removed else []
        version = _version(digest)
        dated = date_article(art, self.date_order, datetime.now(UTC))
        published = dated.iso
        link = SourceLink(art.source_key, "", art.kind, art.url, art.title, art.source, published, prepped.raw)
        if current and ((current.content_hash == digest and current.version == version) or art.kind == "feed"):
            # kind "feed" is an entry's summary kept because its article could not be fetched this
            # time: it must never replace the full text ingested earlier. Its date may be read anew.
            report.unchanged += 1
            # The stored version is this input's: the next run with the same input need not clean it.
            self._touched.append((art.source_key, prepped.raw if art.kind != "feed" else None))
            if change := recheck_source(self.state, current.doc_id, current.n_sources, art, dated):
                self._date_changes.append(change)
            return None
        # The same text from an older chunker or cleaner: rebuilt in place, for every source sharing it.
        rebuild = current is not None and current.content_hash == digest

        # (A second source of that text planned in this run only links to the rebuilt version.)
        same_text = inflight.hashes.get(digest) or (
            None if rebuild else (d.doc_id if (d := self.state.doc_for_hash(digest)) else None))
        if same_text:
            if dated.published is None:
                report.warnings.append(LoadWarning(art.source_key, f"{dated.problem}; the document it duplicates "
                                                                   "keeps its own date"))
            retire = current.doc_id if current and current.doc_id != same_text else None
            return _Pending(None, _relink(link, same_text), retire, "duplicates", unblock=unblock)
        if dated.published is None:
            report.warnings.append(LoadWarning(art.source_key, dated.warning()))

        if current and (current.n_sources == 1 or rebuild):
            doc_id, outcome, retire = current.doc_id, "updated", None
        else:
            # New text from a new source, or a changed text of a source that shares its old text
            # with other outlets: the others keep the old document, this source gets a new one.
            doc_id = hashlib.sha1(f"{art.source_key}\0{digest}".encode()).hexdigest()[:16]
            outcome = "updated" if current else "added"
            retire = current.doc_id if current else None
        spans = prepped.spans if prepped.spans is not None else chunk_text(text, art.title, self.chunking,
                                                                           self.wordpieces)
        date_ts = (dated.published.timestamp() if dated.published else datetime.now(UTC).timestamp())
        new = NewVersion(
            doc_id=doc_id, content_hash=digest, version=version, title=art.title, source=art.source, url=art.url,
            published=published, date_ts=date_ts, text=text,
            chunks=[(f"{doc_id}:{version}:{s.index}", s.index, s.start, s.end) for s in spans],
            published_raw=dated.raw, date_order=self.date_order, date_parser=PARSER_VERSION,
            removed=[r.to_json() for r in prepared.removed],
        )
        pending = _Pending(new, _relink(link, doc_id), retire, outcome, unblock=unblock)
        pending.embed_texts = [embedding_text(art.title, text[s.start : s.end]) for s in spans]
        return pending

    def embed(self, batch: list[_Pending], stop: Callable[[], bool] = lambda: False) -> _Embedded | None:
        """The vectors of a planned batch's chunks, in order, and the chunks tokenized for the lexical index
        (here, so that it overlaps with the previous batch's writes); None when ``stop()`` turns true between
        two slices of ``EMBED_SLICE`` chunks."""
        texts = [t for p in batch for t in p.embed_texts]
        parts = []
        for start in range(0, len(texts), EMBED_SLICE):
            if stop():
                return None
            parts.append(self.embedder.embed(texts[start : start + EMBED_SLICE]))
        vectors = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
        return _Embedded(vectors, lexical_segment([p.version for p in batch if p.version is not None]))

    def write(self, state: StateDB, batch: list[_Pending], embedded: _Embedded, report: IngestReport) -> None:
        """Write one embedded batch to Chroma and commit it (the steps in the module docstring), through ``state``."""
        if not batch:
            return
        versions = [p.version for p in batch if p.version is not None]
        ids = [c[0] for v in versions for c in v.chunks]
        journal_rows: list[int] = []
        if ids:
            journal_rows.append(state.journal(ids, "writing"))
            metadatas = [chunk_metadata(v.date_ts) for v in versions for _ in v.chunks]
            self.store.upsert(ids, embedded.vectors, metadatas)
        retired = state.commit_batch(
            versions, [p.link for p in batch], [p.retire_doc for p in batch if p.retire_doc], journal_rows,
            unblock=[k for p in batch for k in p.unblock], segment=embedded.segment,
        )
        for p in batch:
            setattr(report, p.outcome, getattr(report, p.outcome) + 1)
            report.doc_ids.append(p.link.doc_id)
        if retired:
            recover(state, self.store)
        log.info("ingest.batch docs=%d chunks=%d retired=%d", len(versions), len(ids), len(retired))


def chunk_metadata(date_ts: float) -> dict[str, object]:
    """The metadata stored with a chunk's vector: ``date_ts``, what Chroma-side date filters use.

    Everything else about a chunk lives in the state database; each metadata key is a row in Chroma's
    own SQLite (its document id cost ~10% of Chroma's write CPU and was never read), so fewer keys make
    every write cheaper. Vectors written before keep their ``doc_id`` key, unread.
    """
    return {"date_ts": date_ts}


def _relink(link: SourceLink, doc_id: str) -> SourceLink:
    return replace(link, doc_id=doc_id)
