"""The corpus facade: one object that ingests, searches and describes the article store.

Everything outside :mod:`retrieval` (the CLI, the answer engine, the Slack bot, the digest) goes
through :class:`Corpus`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from retrieval import heap
from retrieval.chunking import embedding_text
from retrieval.date_repair import DateRepair, repair_dates
from retrieval.date_store import OutletDates, date_counts
from retrieval.documents import Article, LoadFailure, SearchHit
from retrieval.embeddings import MiniLMEmbedding, WordPieceCounter, make_embedder, model_label
from retrieval.errors import EmbeddingMismatchError, StoreError
from retrieval.ingest import Ingestor, IngestReport, chunk_metadata, ingest_lock, recover
from retrieval.loaders import FetchOptions, count_sources, iter_sources
from retrieval.loaders.dates import check_date_order
from retrieval.outlets import outlet_for_url, readable_outlet
from retrieval.progress import Progress, as_progress
from retrieval.removal import RemovalReport, RemovalRequest, remove
from retrieval.search import SearchOptions, hybrid_search
from retrieval.state import VECTORS_WRITTEN, WRITER, StateDB
from retrieval.statedb import DatabaseError, state_location
from retrieval.store import DEFAULT_COLLECTION, VectorStore

log = logging.getLogger(__name__)

_WAITING = "waiting for another ingest to finish…"
_OUTLETS_FILLED = "1"  # bump when outlet naming changes, to rename once more on open
WRITER_ARENAS = 2  # two reuse released shards' pages as one does, without every thread waiting on one lock
VECTOR_GENERATION = "vector_generation"  # the meta key naming the vector store's generation in use
RELOAD_SECONDS = 30.0

__all__ = ["Corpus", "CorpusConfig", "CorpusStats", "DocumentInfo", "IngestReport"]


@dataclass(frozen=True)
class CorpusConfig:
    """Where the corpus lives and how it embeds."""

    data_dir: Path
    database_url: str | None = field(default=None, repr=False)  # PostgreSQL for the state; None: SQLite file
    chroma_host: str | None = None
    chroma_port: int = 8000
    embedding_model: str = "minilm"
    collection: str = DEFAULT_COLLECTION
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    fetch: FetchOptions = field(default_factory=FetchOptions)


@dataclass(frozen=True)
class DocumentInfo:
    doc_id: str
    title: str
    source: str
    url: str
    published: str | None
    first_seen: str
    sources: list[dict[str, object]]


@dataclass(frozen=True)
class CorpusStats:
    documents: int
    chunks: int
    sources: int
    newest_published: str | None
    embedding_model: str
    store: str
    published_dates: int = 0  # documents dated by their publication date
    ingested_dates: int = 0  # documents whose ingestion time stands in for an unknown date
    lacking_dates: list[OutletDates] = field(default_factory=list)  # outlets with the most undated documents

    def to_json(self) -> dict[str, object]:
        return {
            "documents": self.documents,
            "chunks": self.chunks,
            "sources": self.sources,
            "newest_published": self.newest_published,
            "embedding_model": self.embedding_model,
            "store": self.store,
            "dated_by_publication": self.published_dates,
            "dated_by_ingestion": self.ingested_dates,
            "outlets_lacking_dates": [o.to_json() for o in self.lacking_dates],
        }


def disk_full(exc: BaseException) -> bool:
    """Whether an error from a write means the disk is full (or a file-size limit was reached)."""
    if isinstance(exc, OSError) and exc.errno is not None:  # its message names a path, which may say "full"
        return exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
    message = str(exc).lower()
    return any(word in message for word in ("full", "too large", "no space", "quota", "disk i/o"))


def _fill_outlets(state: StateDB) -> None:
    """Once per store: documents ingested before outlets came from URLs get theirs (``www.cnn.com`` → CNN)."""
    if state.get_meta("outlets_filled") == _OUTLETS_FILLED:
        return
    updates = []
    for table, key, url, source in state.outlets_to_fill():
        outlet = readable_outlet(source) if source else outlet_for_url(url)
        if outlet and outlet != source:
            updates.append((table, key, outlet))
    state.set_outlets(updates)
    state.set_meta("outlets_filled", _OUTLETS_FILLED)
    if updates:
        log.info("outlets.filled rows=%d", len(updates))


class Corpus:
    """The article store. Safe to share between threads: each thread gets its own state connection."""

    def __init__(self, config: CorpusConfig, embedder: MiniLMEmbedding | object, store: VectorStore) -> None:
        self.config = config
        self.embedder = embedder
        self._store = store
        self._written: str | None = None  # the last commit of new chunks seen in the state database
        self._stale = False  # another process has committed chunks since the store was (re)loaded
        self._reloaded = -RELOAD_SECONDS
        self.model = model_label(config.embedding_model)
        self._local = threading.local()
        self._wordpieces: WordPieceCounter | None = None

    @classmethod
    def open(cls, config: CorpusConfig, reindexing: bool = False, writes_only: bool = False) -> Corpus:
        """Open (creating if needed) the corpus in ``config.data_dir``.

        A store built with another embedding model is refused, unless ``reindexing``: then :meth:`reindex`
        rebuilds its vectors from the chunks kept in the state database.
        ``writes_only``: this process ingests or re-indexes and never searches, so an embedded store keeps
        only the vector index of the shard it writes to in memory (see :class:`VectorStore`), and glibc's
        malloc is held to two arenas so that the released shards' memory is reused (:mod:`retrieval.heap`).
        """
        if writes_only:
            heap.limit_arenas(WRITER_ARENAS)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # not ours to change, e.g. a shared mount
            config.data_dir.chmod(0o700)
        embedder = make_embedder(config.embedding_model, config.openai_api_key, config.openai_base_url)
        label = model_label(config.embedding_model)
        state = StateDB(state_location(config.data_dir, config.database_url))
        recorded = state.get_meta("embedding_model")
        if recorded and recorded != label and not reindexing:
            raise EmbeddingMismatchError(
                f"The store in {config.data_dir} was built with embedding model {recorded!r} but "
                f"SITREP_EMBEDDING_MODEL selects {label!r}. A store never mixes models: set it back, or "
                "run `sitrep reindex` to re-embed every chunk with the new model."
            )
        store = VectorStore(config.data_dir, embedder, label, config.chroma_host, config.chroma_port,  # type: ignore[arg-type]
                            replace_mismatched=reindexing, collection=config.collection, release_shards=writes_only,
                            generation=int(state.get_meta(VECTOR_GENERATION) or 0))
        if not recorded:
            state.set_meta("embedding_model", label)
        _fill_outlets(state)
        corpus = cls(config, embedder, store)
        corpus._local.state = state
        corpus._written = state.get_meta(VECTORS_WRITTEN)  # what a fresh client sees
        return corpus

    @property
    def store(self) -> VectorStore:
        """The vector store as other processes left it: after a reindex by another process (the bot while
        `sitrep reindex` runs beside it), the generation that reindex switched to; after another process
        committed new chunks (`sitrep ingest` beside the bot), reloaded so that dense search sees them (at most
        every ``RELOAD_SECONDS``: a long ingest commits a batch every few seconds)."""
        meta = self.state.metas([VECTOR_GENERATION, VECTORS_WRITTEN])
        current = int(meta.get(VECTOR_GENERATION) or 0)
        if current > self._store.generation:
            self._store = self._store.sibling(current)
        written = meta.get(VECTORS_WRITTEN)
        if written != self._written:
            self._written = written
            # Seen before this process commits chunks of its own (an ingest opens the store first), so a
            # commit of ours never hides one of another process's.
            self._stale = self._stale or bool(written and not written.startswith(WRITER))
        if self._stale and time.monotonic() - self._reloaded >= RELOAD_SECONDS:
            self._stale, self._reloaded = False, time.monotonic()
            self._store.reload()
        return self._store

    @property
    def state(self) -> StateDB:
        db = getattr(self._local, "state", None)
        if db is None:
            db = StateDB(state_location(self.config.data_dir, self.config.database_url))
            self._local.state = db
        return db

    def close(self) -> None:
        """Close this thread's state connection and the vector store's client: the corpus is done with. A
        process that opens the store again afterwards (`sitrep start`, then its chat) then holds the only client
        on an embedded directory, which :meth:`VectorStore.reload` needs to read it again from disk."""
        db = getattr(self._local, "state", None)
        if db is not None:
            db.close()
            self._local.state = None
        self._store.close()

    # -- ingest -----------------------------------------------------------------------------------------
    @contextmanager
    def _lock(self, on_wait: Callable[[], object] | None = None) -> Iterator[None]:
        """One ingest (or removal, or date repair) at a time over this store, across processes and hosts."""
        with ingest_lock(self.config.data_dir, on_wait, self.config.database_url):
            yield

    def _ingestor(self, date_order: str | None, force: bool) -> Ingestor:
        if self._wordpieces is None and isinstance(self.embedder, MiniLMEmbedding):
            self._wordpieces = WordPieceCounter()
        counter = self._wordpieces.pieces if self._wordpieces else None
        return Ingestor(self.state, self.store, self.embedder, counter,  # type: ignore[arg-type]
                        date_order=date_order, force=force)

    def ingest(self, sources: Sequence[str], *, feed: bool | None = None, source_name: str | None = None,
               progress: Progress | bool = False, date_order: str | None = None, force: bool = False) -> IngestReport:
        """Load and ingest files, folders, URLs and feeds. Per-source failures are in the report.

        ``progress`` shows a live count on a terminal and says when the run waits for another ingest.
        ``date_order`` (``dmy``/``mdy``) says how these sources write numeric dates such as 04/10/2022.
        Articles taken out with :meth:`remove` are refused (a per-source failure) unless ``force``.
        """
        items = iter_sources(sources, feed=feed, source_name=source_name, options=self.config.fetch)
        # Local sources are counted (a JSONL file is read once more, at disk speed): the bar's total, and a run
        # known to be long may start its cleaning workers sooner.
        total = count_sources(sources)
        return self._run(items, [str(s) for s in sources], progress, check_date_order(date_order), force, total)

    def ingest_articles(self, articles: Iterable[Article | LoadFailure], progress: Progress | bool = False,
                        date_order: str | None = None, force: bool = False) -> IngestReport:
        """Ingest articles that were already loaded (feeds polled by the scheduler, tests)."""
        return self._run(articles, ["<articles>"], progress, check_date_order(date_order), force)

    def repair_dates(self) -> DateRepair:
        """Read every stored date again from its raw value (``sitrep reindex --dates``); nothing is re-embedded."""
        with self._lock():
            recover(self.state, self.store)
            return repair_dates(self.state, self.store, every=True)

    def remove(self, request: RemovalRequest, *, dry_run: bool = False) -> RemovalReport:
        """Take the articles ``request`` matches out for good (see :mod:`retrieval.removal`)."""
        if dry_run:  # reads only: no need to wait for a running ingest
            return remove(self.state, self.store, request, dry_run=True)
        with self._lock():
            recover(self.state, self.store)
            return remove(self.state, self.store, request)

    def _run(self, items: Iterable[Article | LoadFailure], labels: list[str], progress: Progress | bool,
             date_order: str | None, force: bool = False, total: int | None = None) -> IngestReport:
        shown = as_progress(progress)
        with self._lock(on_wait=lambda: shown.note(_WAITING)):
            state = self.state
            recover(state, self.store)
            run_id = state.start_run(labels)
            try:
                # The first run after an upgrade of the date parser reads the stored dates again.
                repaired = repair_dates(state, self.store)
                with shown.bar("ingesting", "doc", total=total) as advance:
                    report = self._ingestor(date_order, force).run(items, on_done=advance, expected=total)
            except (*DatabaseError, OSError, StoreError) as exc:
                # The batch in flight was never committed: the store still holds the last good state.
                log.error("ingest.aborted run=%d error=%s", run_id, exc)
                hint = " The disk looks full or failing: free space, then" if disk_full(exc) else " Fix that, then"
                raise StoreError(
                    f"Ingest stopped: {str(exc).rstrip('.')}.{hint} run the same ingest again to finish; "
                    "everything committed before is intact."
                ) from exc
            report.add_repair(repaired)
            counts = {k: getattr(report, k) for k in ("added", "updated", "unchanged", "duplicates")}
            state.finish_run(run_id, counts, [(f.source, f.error) for f in report.failed])
            log.info("ingest.done run=%d %s failed=%d", run_id,
                     " ".join(f"{k}={v}" for k, v in counts.items()), len(report.failed))
            return report

    def reindex(self, progress: Progress | bool = False) -> int:
        """Re-embed every live chunk with the configured model into a new generation of the vector store,
        built beside the one in use, which searches keep using until the new one is complete."""
        shown = as_progress(progress)
        with self._lock(on_wait=lambda: shown.note(_WAITING)):
            fresh = self.store.successor(self.embedder)  # type: ignore[arg-type]
            total = 0
            with shown.bar("re-embedding", "chunk", total=self.state.counts()[1]) as advance:
                for rows in self.state.all_chunks():
                    vectors = self.embed([embedding_text(r[1], r[2]) for r in rows])
                    metas = [chunk_metadata(r[3]) for r in rows]
                    fresh.upsert([r[0] for r in rows], vectors, metas)
                    total += len(rows)
                    advance(len(rows))
            # The switch: one committed write. A crash after it leaves the old generation, which the next
            # reindex drops.
            self.state.set_metas({VECTOR_GENERATION: str(fresh.generation), "embedding_model": self.model})
            old, self._store = self._store, fresh
            old.drop()
            return total

    # -- search and reads -------------------------------------------------------------------------------
    def search(self, query: str, k: int = 8, *, since: datetime | None = None, until: datetime | None = None,
               max_per_doc: int | None = 2, recency: bool | None = None, mode: str = "hybrid",
               query_vector: np.ndarray | None = None) -> list[SearchHit]:
        """Hybrid search over live chunks (``mode`` ``dense`` or ``lexical`` for evaluation).

        ``query_vector``: the query's embedding when the caller already has it (saves embedding it again).
        """
        options = SearchOptions(k=k, since=since, until=until, max_per_doc=max_per_doc, recency=recency)
        return hybrid_search(query, self.state, self.store, self.embedder, options, mode,  # type: ignore[arg-type]
                             query_vector=query_vector)

    def ranked_documents(self, query: str, k: int = 10, mode: str = "hybrid",
                         until: datetime | None = None) -> list[set[str]]:
        """The top ``k`` documents for ``query`` (published by ``until``), each as the set of its id and every
        URL that carries it. Hybrid ranks as search does for a user; the baselines rank without a recency prior."""
        hits = self.search(query, k=k, until=until, max_per_doc=1, recency=None if mode == "hybrid" else False,
                           mode=mode)
        urls = self.state.sources_of([h.doc_id for h in hits])
        return [{h.doc_id, h.url, *(str(s["url"]) for s in urls[h.doc_id])} - {""} for h in hits]

    def chunk_vectors(self, chunk_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of live chunks (ids not in the store are left out)."""
        return self.store.vectors(chunk_ids)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors from the corpus's embedding model."""
        return self.embedder.embed(list(texts))  # type: ignore[attr-defined,no-any-return]

    def removed_text(self, doc_id: str) -> list[dict[str, str]]:
        """The page clutter the cleaner took out of a document: ``{"rule", "text"}`` each, in order."""
        return self.state.removed_text(doc_id)

    def stats(self) -> CorpusStats:
        docs, chunks, sources, newest = self.state.counts()
        published, ingested, lacking = date_counts(self.state.conn)
        return CorpusStats(docs, chunks, sources, newest, self.model, self.store.description, published, ingested,
                           lacking)

    def documents(self, *, since: datetime | None = None, until: datetime | None = None,
                  by: str = "published") -> list[DocumentInfo]:
        """Documents in a window, newest first, ``by`` published date or by when they were first ingested."""
        rows = self.state.documents(since.timestamp() if since else None, until.timestamp() if until else None, by)
        srcs = self.state.sources_of([r["doc_id"] for r in rows])
        return [
            DocumentInfo(r["doc_id"], r["title"], r["source"], r["url"], r["published"], r["first_seen"],
                         srcs.get(r["doc_id"], []))
            for r in rows
        ]

    def document_chunks(self, doc_id: str) -> list[SearchHit]:
        """A document's live chunks in order, as search hits (rank = chunk order, score 0)."""
        ids = self.state.doc_chunk_ids(doc_id)
        rows = self.state.chunk_rows(ids)
        return [
            SearchHit(rank=n, score=0.0, chunk_id=i, doc_id=rows[i].doc_id, title=rows[i].title,
                      source=rows[i].source, url=rows[i].url, published=rows[i].published, text=rows[i].text,
                      chunk_index=rows[i].idx, char_start=rows[i].char_start, char_end=rows[i].char_end,
                      date_source=rows[i].date_source)
            for n, i in enumerate(ids, start=1)
        ]
