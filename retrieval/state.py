"""The corpus's tables in the state database: documents, their sources, live chunks, the lexical index and
ingestion runs (in the SQLite file, or in PostgreSQL when ``SITREP_DATABASE_URL`` is set).

The state database is the source of truth for what is live. Chroma holds vectors for live chunks and, briefly,
for chunks being written or retired; search keeps only ids this database lists as live, so the
single transaction that swaps a document's chunks here is the moment the new version appears.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from retrieval import lexical
from retrieval.date_store import RECORD_DATE_SQL, add_column, ensure_date_columns
from retrieval.state_removal import RemovalQueries, drop_document, journal_retired
from retrieval.statedb import (
    Connection,
    Location,
    Migration,
    connect,
    engine,
    is_postgres,
    migrate,
    register,
    run_native,
    run_script,
    table_exists,
    transaction,
    with_retry,
)

log = logging.getLogger(__name__)

_SET_META = "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"
# Every commit of new chunks records which process made it: another process searching an embedded Chroma store
# holds indexes loaded before, which do not see vectors written since (retrieval.corpus reloads them).
VECTORS_WRITTEN = "vectors_written"
WRITER = uuid.uuid4().hex  # this process

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL UNIQUE,
    version TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    published TEXT,
    date_ts REAL NOT NULL,          -- published, or first seen when the date is unknown
    first_seen TEXT NOT NULL,
    first_seen_ts REAL NOT NULL,
    updated_at TEXT NOT NULL,
    text TEXT NOT NULL,
    n_chunks INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_date ON documents(date_ts);
CREATE INDEX IF NOT EXISTS documents_seen ON documents(first_seen_ts);
CREATE TABLE IF NOT EXISTS sources (
    source_key TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    url TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    published TEXT,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sources_doc ON sources(doc_id);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    text TEXT NOT NULL,
    date_ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, idx);
-- Chroma ids written but not yet live ('writing') or no longer live ('retired'); see module docstring.
CREATE TABLE IF NOT EXISTS vector_journal (
    chunk_ids TEXT NOT NULL,
    state TEXT NOT NULL,
    pid INTEGER NOT NULL,
    created_ts REAL NOT NULL
);
-- Page clutter the cleaner took out of each document's text and title (retrieval/cleaning.py), as JSON.
CREATE TABLE IF NOT EXISTS removed_text (
    doc_id TEXT PRIMARY KEY REFERENCES documents(doc_id) ON DELETE CASCADE,
    removed TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    started TEXT NOT NULL,
    finished TEXT,
    status TEXT NOT NULL,
    added INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    sources TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS run_failures (
    run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    error TEXT NOT NULL
);
-- What `sitrep remove` took out: ingest refuses these keys unless forced (see retrieval/tombstones.py).
CREATE TABLE IF NOT EXISTS tombstones (
    key TEXT PRIMARY KEY,           -- source:<source key> | url:<canonical URL> | text:<content hash>
    doc_id TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    removed_at TEXT NOT NULL
);
"""


_CHUNK_IDS = "SELECT chunk_id FROM chunks WHERE doc_id = ?"
# A hit's date: the publication date, or the ingestion time (date_ts, formatted by _hit_date) standing in, and
# which of the two it is.
_HIT_DATE = "d.published, d.date_ts, CASE WHEN d.published IS NULL THEN 'ingested' ELSE 'published' END"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class DocRow:
    doc_id: str
    content_hash: str
    version: str
    n_sources: int
    raw_hash: str | None = None  # of the input the source last gave (see retrieval.preparing.raw_hash)


@dataclass(frozen=True)
class ChunkRow:
    chunk_id: str
    doc_id: str
    idx: int
    char_start: int
    char_end: int
    text: str
    title: str
    source: str
    url: str
    published: str | None  # the ingestion time when the publication date is unknown (see date_source)
    date_source: str = "published"  # or "ingested"


@dataclass(frozen=True)
class NewVersion:
    """A document version ready to go live: its metadata, text and chunks."""

    doc_id: str
    content_hash: str
    version: str
    title: str
    source: str
    url: str
    published: str | None
    date_ts: float
    text: str
    chunks: Sequence[tuple[str, int, int, int]]  # (chunk_id, idx, char_start, char_end)
    published_raw: str | None = None  # the date as the source gave it (see retrieval.date_store)
    date_order: str | None = None
    date_parser: str | None = None
    removed: Sequence[dict[str, str]] = ()  # clutter taken out by the cleaner: {"rule", "text"}


@dataclass(frozen=True)
class SourceLink:
    source_key: str
    doc_id: str
    kind: str
    url: str
    title: str
    source: str
    published: str | None
    raw_hash: str | None = None  # of the input as loaded (retrieval.preparing.raw_hash)


def _create(conn: Connection) -> None:
    run_script(conn, SCHEMA + lexical.SCHEMA)
    run_native(conn, lexical.TRIGGERS[engine(conn)])


def _segments_from_fts5(conn: Connection) -> None:
    """Stores made before the segment index kept an FTS5 table: index their chunks anew, drop it."""
    if engine(conn) == "sqlite" and table_exists(conn, "chunks_fts"):
        lexical.rebuild(conn, _lex_batches(conn))
        conn.execute("DROP TABLE IF EXISTS chunks_vocab")
        conn.execute("DROP TABLE chunks_fts")


def _lex_batches(conn: Connection, size: int = 2000) -> Iterator[list[lexical.LexChunk]]:
    cur = conn.execute(
        "SELECT c.chunk_id, c.date_ts, d.title, c.text FROM chunks c JOIN documents d ON d.doc_id = c.doc_id"
        " ORDER BY c.rowid"
    )
    while rows := cur.fetchmany(size):
        yield [lexical.LexChunk(*r) for r in rows]


def _keyed_journal(conn: Connection) -> None:
    """The vector journal gets a key of its own (``journal_id``) instead of SQLite's implicit rowid, which
    PostgreSQL has no equivalent of; SQLite's entries keep their ids."""
    run_script(conn, """
CREATE TABLE vector_journal_keyed (
    journal_id INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_ids TEXT NOT NULL,
    state TEXT NOT NULL,
    pid INTEGER NOT NULL,
    created_ts REAL NOT NULL
);
""")
    columns = "chunk_ids, state, pid, created_ts"
    if engine(conn) == "sqlite":
        conn.execute(f"INSERT INTO vector_journal_keyed(journal_id, {columns}) SELECT rowid, {columns}"
                     " FROM vector_journal")
    else:  # PostgreSQL's rows have no ids to keep
        conn.execute(f"INSERT INTO vector_journal_keyed({columns}) SELECT {columns} FROM vector_journal")
    conn.execute("DROP TABLE vector_journal")
    conn.execute("ALTER TABLE vector_journal_keyed RENAME TO vector_journal")


def _postings_by_term(conn: Connection) -> None:
    """PostgreSQL reads a query's postings by term across segments: without an index led by ``term`` its planner
    scans the whole table (SQLite seeks the (seg, term) key per segment, so it needs none)."""
    if engine(conn) == "postgresql":
        conn.execute("CREATE INDEX IF NOT EXISTS lex_postings_term ON lex_postings(term, seg)")


def _postings_uncompressed(conn: Connection) -> None:
    """On PostgreSQL, posting blobs are stored uncompressed (random chunk ids barely compress), so a query can
    read just the prefix it scores (``substr`` in :mod:`retrieval.lexical`) instead of inflating each blob."""
    if engine(conn) == "postgresql":
        conn.execute("ALTER TABLE lex_postings ALTER COLUMN ids SET STORAGE EXTERNAL,"
                     " ALTER COLUMN weights SET STORAGE EXTERNAL")


def _raw_hashes(conn: Connection) -> None:
    """Each source keeps a hash of its raw input, so a re-ingest of unchanged input skips cleaning and chunking
    (empty for existing sources: their next unchanged re-ingest cleans once and fills it in)."""
    add_column(conn, "sources", "raw_hash", "TEXT")


_SEGMENTS = 3
CORPUS = register("corpus", [
    Migration(1, _create, "articles, passages, sources, runs, tombstones, lexical index"),
    Migration(2, ensure_date_columns, "raw publication dates"),
    Migration(_SEGMENTS, _segments_from_fts5, "lexical index in segments instead of FTS5"),
    Migration(4, _keyed_journal, "a key for the vector journal (journal_id)"),
    Migration(5, _postings_by_term, "PostgreSQL: lexical postings indexed by term"),
    Migration(6, _postings_uncompressed, "PostgreSQL: posting blobs stored uncompressed, read by prefix"),
    Migration(7, _raw_hashes, "sources: a hash of the raw input, so unchanged input is not cleaned again"),
])


class StateDB(RemovalQueries):
    """Typed access to the state database. One instance per thread of use."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self.conn = connect(location)
        self._dates = lexical.DateIndex()
        try:
            applied = migrate(self.conn, CORPUS)
        except BaseException:
            self.conn.close()
            raise
        if _SEGMENTS in applied:
            lexical.merge_segments(self.conn)
            log.info("state.migrated lexical_index=segments chunks=%d", self.counts()[1])
        if not is_postgres(location):
            with contextlib.suppress(OSError):  # not ours to change, e.g. a shared mount
                os.chmod(location, 0o600)

    def close(self) -> None:
        self.conn.close()

    # -- meta -------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def metas(self, keys: Sequence[str]) -> dict[str, str]:
        """The values of these meta keys (keys never set are left out), in one read."""
        marks = ",".join("?" * len(keys))
        return dict(self.conn.execute(f"SELECT key, value FROM meta WHERE key IN ({marks})", list(keys)))

    def set_meta(self, key: str, value: str) -> None:
        self.set_metas({key: value})

    def set_metas(self, values: dict[str, str]) -> None:
        """Set several meta keys in one transaction (readers see all of them change, or none)."""
        def txn() -> None:
            with transaction(self.conn) as c:
                c.executemany(_SET_META, list(values.items()))

        with_retry(txn)

    # -- lookups used by ingest -----------------------------------------------------------------------
    def doc_for_source(self, source_key: str) -> DocRow | None:
        row = self.conn.execute(
            "SELECT d.doc_id, d.content_hash, d.version, "
            "(SELECT COUNT(*) FROM sources s2 WHERE s2.doc_id = d.doc_id), s.raw_hash "
            "FROM sources s JOIN documents d ON d.doc_id = s.doc_id WHERE s.source_key = ?",
            (source_key,),
        ).fetchone()
        return DocRow(*row) if row else None

    def doc_for_hash(self, content_hash: str) -> DocRow | None:
        row = self.conn.execute(
            "SELECT doc_id, content_hash, version, (SELECT COUNT(*) FROM sources s WHERE s.doc_id = d.doc_id) "
            "FROM documents d WHERE content_hash = ?",
            (content_hash,),
        ).fetchone()
        return DocRow(*row) if row else None

    def touch_sources(self, sources: Iterable[tuple[str, str | None]]) -> None:
        """Mark ``(source_key, raw_hash)`` sources as seen now; a raw hash given replaces the stored one."""
        stamp = now_iso()
        rows = [(stamp, raw, key) for key, raw in sources]
        if rows:
            with_retry(lambda: self.conn.executemany(
                "UPDATE sources SET last_seen = ?, raw_hash = coalesce(?, raw_hash) WHERE source_key = ?", rows))

    # -- the vector journal ---------------------------------------------------------------------------
    def journal(self, chunk_ids: Sequence[str], state: str) -> int:
        """Record Chroma ids about to be written (``writing``) or to be removed (``retired``)."""

        def write() -> int:
            row = self.conn.execute(
                "INSERT INTO vector_journal(chunk_ids, state, pid, created_ts) VALUES (?, ?, ?, ?)"
                " RETURNING journal_id",
                (json.dumps(list(chunk_ids)), state, os.getpid(), time.time()),
            ).fetchone()
            return int(row[0])

        return with_retry(write)

    def drop_journal(self, journal_ids: Sequence[int]) -> None:
        if journal_ids:
            with_retry(lambda: self.conn.executemany("DELETE FROM vector_journal WHERE journal_id = ?",
                                                     [(r,) for r in journal_ids]))

    def stale_journal(self, stale_after: float = 3600.0) -> list[tuple[int, list[str], str]]:
        """Journal entries left by processes that died (or that are over an hour old)."""
        out = []
        for journal_id, ids, state, pid, created in self.conn.execute(
            "SELECT journal_id, chunk_ids, state, pid, created_ts FROM vector_journal"
        ):
            if state == "retired" or not _alive(pid) or time.time() - created > stale_after or pid == os.getpid():
                out.append((journal_id, json.loads(ids), state))
        return out

    def live_subset(self, chunk_ids: Sequence[str]) -> set[str]:
        live: set[str] = set()
        for start in range(0, len(chunk_ids), 500):
            part = list(chunk_ids[start : start + 500])
            marks = ",".join("?" * len(part))
            query = f"SELECT chunk_id FROM chunks WHERE chunk_id IN ({marks})"
            live.update(r[0] for r in self.conn.execute(query, part))
        return live

    # -- the commit point -----------------------------------------------------------------------------
    def commit_batch(
        self,
        versions: Sequence[NewVersion],
        links: Sequence[SourceLink],
        retire_docs: Sequence[str],
        written_journal: Sequence[int],
        unblock: Sequence[str] = (),
        segment: lexical.Segment | None = None,
    ) -> list[str]:
        """Make new versions live, link sources, drop orphaned documents — in one transaction.

        ``unblock``: tombstone keys of removed articles that a forced ingest brings back.
        ``segment``: the versions' chunks already tokenized (:func:`lexical_segment`), else done here.
        Returns the Chroma ids that are no longer live (to delete from the vector store).
        """
        if segment is None:
            segment = lexical_segment(versions)

        def txn() -> list[str]:
            c = self.conn
            stamp = now_iso()
            stamp_ts = time.time()
            retired: list[str] = []
            c.execute("BEGIN IMMEDIATE")
            try:
                for v in versions:
                    old = [r[0] for r in c.execute(_CHUNK_IDS, (v.doc_id,))]
                    retired.extend(old)
                    lexical.drop_chunks(c, old)
                    c.execute("DELETE FROM chunks WHERE doc_id = ?", (v.doc_id,))
                    c.execute(
                        "INSERT INTO documents(doc_id, content_hash, version, title, source, url, published, date_ts,"
                        " first_seen, first_seen_ts, updated_at, text, n_chunks)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT(doc_id) DO UPDATE SET content_hash = excluded.content_hash,"
                        " version = excluded.version, title = excluded.title, source = excluded.source,"
                        " url = excluded.url, published = excluded.published, date_ts = excluded.date_ts,"
                        " updated_at = excluded.updated_at, text = excluded.text, n_chunks = excluded.n_chunks",
                        (v.doc_id, v.content_hash, v.version, v.title, v.source, v.url, v.published, v.date_ts,
                         stamp, stamp_ts, stamp, v.text, len(v.chunks)),
                    )
                    c.execute(RECORD_DATE_SQL, (v.published_raw, v.date_order, v.date_parser, v.doc_id))
                    c.executemany(
                        "INSERT INTO chunks(chunk_id, doc_id, idx, char_start, char_end, text, date_ts)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [(cid, v.doc_id, i, s, e, v.text[s:e], v.date_ts) for cid, i, s, e in v.chunks],
                    )
                    c.execute("INSERT INTO removed_text(doc_id, removed) VALUES (?, ?)"
                              " ON CONFLICT(doc_id) DO UPDATE SET removed = excluded.removed",
                              (v.doc_id, json.dumps(list(v.removed), ensure_ascii=False)))
                if segment is not None:
                    lexical.add_segment(c, segment)
                c.executemany(
                    "INSERT INTO sources(source_key, doc_id, kind, url, title, source, published, first_seen,"
                    " last_seen, raw_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(source_key) DO UPDATE"
                    " SET doc_id = excluded.doc_id, url = excluded.url, title = excluded.title,"
                    " source = excluded.source, published = excluded.published, last_seen = excluded.last_seen,"
                    " raw_hash = excluded.raw_hash",
                    [(link.source_key, link.doc_id, link.kind, link.url, link.title, link.source, link.published,
                      stamp, stamp, link.raw_hash) for link in links],
                )
                for doc_id in retire_docs:
                    if c.execute("SELECT 1 FROM sources WHERE doc_id = ?", (doc_id,)).fetchone():
                        continue  # another source still carries this text
                    retired.extend(drop_document(c, doc_id))
                c.executemany("DELETE FROM tombstones WHERE key = ?", [(k,) for k in unblock])
                journal_retired(c, retired)
                c.executemany("DELETE FROM vector_journal WHERE journal_id = ?", [(r,) for r in written_journal])
                if versions:
                    c.execute(_SET_META, (VECTORS_WRITTEN, f"{WRITER}:{time.time_ns()}"))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            return retired

        retired = with_retry(txn)
        with_retry(lambda: lexical.merge_segments(self.conn))
        return retired

    # -- runs -------------------------------------------------------------------------------------------
    def start_run(self, sources: Sequence[str]) -> int:
        def write() -> int:
            row = self.conn.execute(
                "INSERT INTO runs(started, status, sources) VALUES (?, 'running', ?) RETURNING run_id",
                (now_iso(), json.dumps(list(sources)[:1000])),
            ).fetchone()
            return int(row[0])

        return with_retry(write)

    def finish_run(self, run_id: int, counts: dict[str, int], failures: Sequence[tuple[str, str]]) -> None:
        def write() -> None:
            c = self.conn
            c.execute("BEGIN IMMEDIATE")
            c.execute(
                "UPDATE runs SET finished = ?, status = ?, added = ?, updated = ?, unchanged = ?, duplicates = ?,"
                " failed = ? WHERE run_id = ?",
                (now_iso(), "failed" if failures else "ok", counts["added"], counts["updated"],
                 counts["unchanged"], counts["duplicates"], len(failures), run_id),
            )
            c.executemany("INSERT INTO run_failures(run_id, source, error) VALUES (?, ?, ?)",
                          [(run_id, s, e) for s, e in failures])
            c.execute("COMMIT")

        with_retry(write)

    # -- reads for search and the engine -----------------------------------------------------------
    def chunk_rows(self, chunk_ids: Sequence[str]) -> dict[str, ChunkRow]:
        rows: dict[str, ChunkRow] = {}
        for start in range(0, len(chunk_ids), 500):
            part = list(chunk_ids[start : start + 500])
            marks = ",".join("?" * len(part))
            for r in self.conn.execute(
                "SELECT c.chunk_id, c.doc_id, c.idx, c.char_start, c.char_end, c.text, d.title, d.source, d.url,"
                f" {_HIT_DATE} FROM chunks c JOIN documents d ON d.doc_id = c.doc_id WHERE c.chunk_id IN ({marks})",
                part,
            ):
                rows[r[0]] = ChunkRow(*r[:9], *_hit_date(*r[9:]))
        return rows

    def lexical(
        self, query_terms: Sequence[str], limit: int, since_ts: float | None, until_ts: float | None,
        frequencies: dict[str, int] | None = None,
    ) -> list[tuple[str, float]]:
        """BM25-ranked (chunk_id, score) of live chunks holding any of ``query_terms``, best first
        (``frequencies``: see :func:`retrieval.lexical.search`)."""
        return lexical.search(self.conn, query_terms, limit, since_ts, until_ts, self._dates,
                              frequencies=frequencies)

    def doc_chunk_ids(self, doc_id: str) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT chunk_id FROM chunks WHERE doc_id = ? ORDER BY idx", (doc_id,))]

    def all_chunks(self, batch: int = 1000) -> Iterable[list[tuple[str, str, str, float, str]]]:
        """(chunk_id, title, text, date_ts, doc_id) for every live chunk, in batches (for re-indexing)."""
        last = ""
        while True:
            rows = self.conn.execute(
                "SELECT c.chunk_id, d.title, c.text, c.date_ts, c.doc_id FROM chunks c"
                " JOIN documents d ON d.doc_id = c.doc_id WHERE c.chunk_id > ? ORDER BY c.chunk_id LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield rows

    def counts(self) -> tuple[int, int, int, str | None]:
        docs = self.conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        chunks = self.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        sources = self.conn.execute("SELECT COUNT(*) FROM sources").fetchone()[0]
        newest = self.conn.execute("SELECT MAX(published) FROM documents").fetchone()[0]
        return docs, chunks, sources, newest

    def documents(self, since_ts: float | None, until_ts: float | None, by: str) -> list[Any]:
        column = "first_seen_ts" if by == "first_seen" else "date_ts"
        sql = (
            "SELECT doc_id, title, source, url, published, first_seen FROM documents WHERE 1=1"
        )
        params: list[object] = []
        if since_ts is not None:
            sql += f" AND {column} >= ?"
            params.append(since_ts)
        if until_ts is not None:
            sql += f" AND {column} <= ?"
            params.append(until_ts)
        sql += f" ORDER BY {column} DESC"
        return self.conn.execute(sql, params).fetchall()

    def removed_text(self, doc_id: str) -> list[dict[str, str]]:
        """What the cleaner took out of a document ({"rule", "text"} each); empty for older documents."""
        row = self.conn.execute("SELECT removed FROM removed_text WHERE doc_id = ?", (doc_id,)).fetchone()
        return list(json.loads(row[0])) if row else []

    def outlets_to_fill(self) -> list[tuple[str, str, str, str]]:
        """(table, key, url, source) of documents and sources with a URL whose outlet is missing or only a
        web domain."""
        rows = []
        for table, key in (("documents", "doc_id"), ("sources", "source_key")):
            rows += [(table, r[0], r[1], r[2]) for r in self.conn.execute(
                f"SELECT {key}, url, source FROM {table} WHERE url != '' AND (source = '' OR "
                "(source LIKE '%.%' AND source NOT LIKE '% %'))")]
        return rows

    def set_outlets(self, updates: Sequence[tuple[str, str, str]]) -> None:
        """Set ``source`` for (table, key, outlet) rows of ``documents`` or ``sources``, in one transaction."""
        keys = {"documents": "doc_id", "sources": "source_key"}

        def write() -> None:
            c = self.conn
            c.execute("BEGIN IMMEDIATE")
            try:
                for table, key, outlet in updates:
                    c.execute(f"UPDATE {table} SET source = ? WHERE {keys[table]} = ?", (outlet, key))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

        with_retry(write)

    def sources_of(self, doc_ids: Sequence[str]) -> dict[str, list[dict[str, object]]]:
        out: dict[str, list[dict[str, object]]] = {d: [] for d in doc_ids}
        for start in range(0, len(doc_ids), 500):
            part = list(doc_ids[start : start + 500])
            marks = ",".join("?" * len(part))
            for r in self.conn.execute(
                f"SELECT doc_id, source, url, title, published FROM sources WHERE doc_id IN ({marks})"
                " ORDER BY first_seen",
                part,
            ):
                out[r[0]].append({"source": r[1], "url": r[2], "title": r[3], "published": r[4]})
        return out


def lexical_segment(versions: Sequence[NewVersion]) -> lexical.Segment | None:
    """The versions' chunks tokenized for the lexical index, outside any transaction (None: no chunks)."""
    chunks = [lexical.LexChunk(cid, v.date_ts, v.title, v.text[s:e]) for v in versions for cid, _, s, e in v.chunks]
    return lexical.segment(chunks) if chunks else None


def _hit_date(published: str | None, date_ts: float, source: str) -> tuple[str, str]:
    """A hit's date and its source: the publication date, or the ingestion time in the same ISO form."""
    if published is not None:
        return published, source
    return datetime.fromtimestamp(math.floor(date_ts), UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00"), source


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
