"""The state database's side of removal (`sitrep remove`): finding documents by URL, id, outlet or date,
and taking them out for good behind tombstones, in one transaction with the vector journal."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from retrieval import lexical
from retrieval.statedb import Connection, transaction, with_retry
from retrieval.tombstones import Tombstone

_CHUNK_IDS = "SELECT chunk_id FROM chunks WHERE doc_id = ?"


@dataclass(frozen=True)
class StoredDocument:
    """A live document as `sitrep remove` shows and tombstones it."""

    doc_id: str
    content_hash: str
    title: str
    source: str
    url: str
    published: str | None
    date_ts: float
    n_chunks: int
    sources: list[tuple[str, str]]  # (source_key, url) of every source carrying it


class RemovalQueries:
    """Removal's queries and its one write, on :class:`~retrieval.state.StateDB`'s connection."""

    conn: Connection

    def tombstone(self, keys: Sequence[str]) -> Tombstone | None:
        """The tombstone of the first of ``keys`` that was removed, or None."""
        for key in keys:
            row = self.conn.execute(
                "SELECT key, doc_id, title, removed_at FROM tombstones WHERE key = ?", (key,)
            ).fetchone()
            if row:
                return Tombstone(*row)
        return None

    def docs_named(self, refs: Sequence[str]) -> set[str]:
        """Documents that any of ``refs`` names: a document id, a source key, or a URL that carried it."""
        found: set[str] = set()
        for part, marks in in_batches(refs, 200):
            found.update(r[0] for r in self.conn.execute(
                f"SELECT doc_id FROM documents WHERE doc_id IN ({marks}) OR url IN ({marks})"
                f" UNION SELECT doc_id FROM sources WHERE source_key IN ({marks}) OR url IN ({marks})",
                part * 4,
            ))
        return found

    def urls_on_host(self, host: str) -> list[tuple[str, str]]:
        """(doc_id, url) of documents and sources whose URL mentions ``host`` (for matching URLs loosely)."""
        pattern = f"%{host.lower()}%"  # lower() on both sides: PostgreSQL's LIKE heeds case, SQLite's does not
        return [(r[0], r[1]) for r in self.conn.execute(
            "SELECT doc_id, url FROM documents WHERE lower(url) LIKE ?"
            " UNION SELECT doc_id, url FROM sources WHERE lower(url) LIKE ?",
            (pattern, pattern),
        )]

    def outlets(self) -> list[str]:
        """Every outlet name a document or one of its sources carries."""
        return [r[0] for r in self.conn.execute(
            "SELECT source FROM documents WHERE source != '' UNION SELECT source FROM sources WHERE source != ''"
        )]

    def docs_of_outlets(self, names: Sequence[str]) -> set[str]:
        """Documents whose outlet, or the outlet of any source carrying them, is one of ``names``."""
        if not names:
            return set()
        marks = ",".join("?" * len(names))
        return {r[0] for r in self.conn.execute(
            f"SELECT doc_id FROM documents WHERE source IN ({marks})"
            f" UNION SELECT doc_id FROM sources WHERE source IN ({marks})",
            [*names, *names],
        )}

    def docs_dated_before(self, ts: float) -> set[str]:
        """Documents published (or, undated, first seen) before ``ts``."""
        return {r[0] for r in self.conn.execute("SELECT doc_id FROM documents WHERE date_ts < ?", (ts,))}

    def stored_documents(self, doc_ids: Sequence[str]) -> list[StoredDocument]:
        """The documents with these ids (unknown ids are left out), newest first, with their sources."""
        docs: list[StoredDocument] = []
        for part, marks in in_batches(doc_ids, 500):
            rows = self.conn.execute(
                "SELECT doc_id, content_hash, title, source, url, published, date_ts, n_chunks FROM documents"
                f" WHERE doc_id IN ({marks})", part,
            ).fetchall()
            links: dict[str, list[tuple[str, str]]] = {}
            for doc_id, key, url in self.conn.execute(
                f"SELECT doc_id, source_key, url FROM sources WHERE doc_id IN ({marks}) ORDER BY first_seen", part
            ):
                links.setdefault(doc_id, []).append((key, url))
            docs.extend(StoredDocument(*r, sources=links.get(r[0], [])) for r in rows)
        return sorted(docs, key=lambda d: (-d.date_ts, d.doc_id))

    def remove_documents(self, removals: Sequence[tuple[StoredDocument, Sequence[str]]]) -> list[str]:
        """Take documents out for good, in one transaction: their chunks, lexical rows and sources go, the
        tombstone keys given with each are recorded, and their Chroma ids are journaled ``retired``.

        Returns those Chroma ids (to delete from the vector store; the journal covers a crash before that).
        """

        def txn() -> list[str]:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            retired: list[str] = []
            with transaction(self.conn) as c:
                for doc, keys in removals:
                    retired.extend(drop_document(c, doc.doc_id))
                    c.executemany(
                        "INSERT INTO tombstones(key, doc_id, title, removed_at) VALUES (?, ?, ?, ?)"
                        " ON CONFLICT(key) DO UPDATE SET doc_id = excluded.doc_id, title = excluded.title,"
                        " removed_at = excluded.removed_at",
                        [(k, doc.doc_id, doc.title, stamp) for k in keys],
                    )
                journal_retired(c, retired)
            return retired

        return with_retry(txn)

    def tombstone_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM tombstones").fetchone()[0])


def in_batches(values: Sequence[str], size: int) -> Iterable[tuple[list[str], str]]:
    """``values`` in parts small enough for one ``IN (...)``, each with its placeholders."""
    for start in range(0, len(values), size):
        part = list(values[start : start + size])
        yield part, ",".join("?" * len(part))


def journal_retired(c: Connection, chunk_ids: list[str]) -> None:
    """Journal Chroma ids that are no longer live, inside the caller's transaction (``ingest.recover`` deletes
    them from the vector store)."""
    if chunk_ids:
        c.execute("INSERT INTO vector_journal(chunk_ids, state, pid, created_ts) VALUES (?, 'retired', ?, ?)",
                  (json.dumps(chunk_ids), os.getpid(), time.time()))


def drop_document(c: Connection, doc_id: str) -> list[str]:
    """Delete a document and (by cascade) its chunks, their lexical rows and its sources, inside the caller's
    transaction; return its chunk ids."""
    chunk_ids = [r[0] for r in c.execute(_CHUNK_IDS, (doc_id,))]
    lexical.drop_chunks(c, chunk_ids)
    c.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
    return chunk_ids
