"""The publication-date columns of the state database, and the reads and writes on them.

Three nullable columns on ``documents`` (added by :func:`ensure_date_columns` to stores made before them):
``published_raw`` (the date exactly as the source gave it, "" for none), ``date_order`` (the source's
declared ``dmy``/``mdy``) and ``date_parser`` (the parser version that read it). NULL in ``date_parser``
marks a document stored by a version that kept no raw value. ``published`` NULL means the ingestion time
(``date_ts``) stands in.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from retrieval import lexical
from retrieval.statedb import Connection, DatabaseError, engine, with_retry

_COLUMNS = (("published_raw", "TEXT"), ("date_order", "TEXT"), ("date_parser", "TEXT"))
# Run inside the ingest's commit transaction, right after a document version is written.
RECORD_DATE_SQL = "UPDATE documents SET published_raw = ?, date_order = ?, date_parser = ? WHERE doc_id = ?"


def ensure_date_columns(conn: Connection) -> None:
    """Add the date columns to a ``documents`` table that lacks them (a store from before they existed)."""
    for name, kind in _COLUMNS:
        add_column(conn, "documents", name, kind)


def add_column(conn: Connection, table: str, name: str, kind: str) -> None:
    """``ALTER TABLE table ADD COLUMN name kind`` unless the column exists (an additive, nullable change)."""
    if has_column(conn, table, name):
        return
    try:
        with_retry(lambda: conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}"))
    except DatabaseError as exc:
        message = str(exc).lower()
        if "duplicate column" not in message and "already exists" not in message:  # another process added it
            raise


def has_column(conn: Connection, table: str, name: str) -> bool:
    """Whether ``table`` has the column ``name``, on either engine (PRAGMA is a no-op on PostgreSQL)."""
    if engine(conn) == "postgresql":
        return conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? "
            "AND column_name = ?", (table, name),
        ).fetchone() is not None
    return any(row[1] == name for row in conn.execute(f"PRAGMA table_info({table})"))


@dataclass(frozen=True)
class StoredDate:
    """What the store holds about one document's date."""

    doc_id: str
    published: str | None
    date_ts: float
    first_seen_ts: float
    updated_at: str
    raw: str | None
    order: str | None
    parser: str | None


@dataclass(frozen=True)
class DateWrite:
    """A document's date as it is to be stored. ``published`` None: ``date_ts`` is the ingestion time."""

    doc_id: str
    published: str | None
    date_ts: float
    raw: str | None
    order: str | None
    parser: str


_STORED = ("SELECT doc_id, published, date_ts, first_seen_ts, updated_at, published_raw, date_order, date_parser"
           " FROM documents")


def stored_date(conn: Connection, doc_id: str) -> StoredDate | None:
    row = conn.execute(f"{_STORED} WHERE doc_id = ?", (doc_id,)).fetchone()
    return StoredDate(*row) if row else None


def stale_dates(conn: Connection, version: str, every: bool, batch: int = 500) -> Iterator[list[StoredDate]]:
    """Documents whose date was not read by parser ``version`` (``every``: all documents), in batches."""
    last = ""
    where = "" if every else " AND (date_parser IS NULL OR date_parser != ?)"
    while True:
        params: list[object] = [last] + ([] if every else [version]) + [batch]
        rows = conn.execute(f"{_STORED} WHERE doc_id > ?{where} ORDER BY doc_id LIMIT ?", params).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        yield [StoredDate(*r) for r in rows]


def sources_of(conn: Connection, doc_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """(source key, kind) of each document's sources, oldest first."""
    out: dict[str, list[tuple[str, str]]] = {}
    for start in range(0, len(doc_ids), 500):
        part = list(doc_ids[start : start + 500])
        marks = ",".join("?" * len(part))
        for doc_id, key, kind in conn.execute(
            f"SELECT doc_id, source_key, kind FROM sources WHERE doc_id IN ({marks}) ORDER BY first_seen", part
        ):
            out.setdefault(doc_id, []).append((key, kind))
    return out


def chunk_ids_of(conn: Connection, doc_ids: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for start in range(0, len(doc_ids), 500):
        part = list(doc_ids[start : start + 500])
        marks = ",".join("?" * len(part))
        for doc_id, chunk_id in conn.execute(f"SELECT doc_id, chunk_id FROM chunks WHERE doc_id IN ({marks})", part):
            out.setdefault(doc_id, []).append(chunk_id)
    return out


def write_dates(conn: Connection, writes: Sequence[DateWrite]) -> None:
    """Store new dates in one transaction: the document, its sources' copy, and every chunk's ``date_ts``
    (the column date filters use, in ``chunks`` and in the lexical index)."""
    if not writes:
        return

    # NULL-safe equality: SQLite's ``IS``; PostgreSQL's ``IS NOT DISTINCT FROM`` (SQLite has it from 3.39 only).
    same = "IS" if engine(conn) == "sqlite" else "IS NOT DISTINCT FROM"

    def txn() -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # A temporary table (this connection's own; its name finds it before any other on both engines).
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS redate (doc_id TEXT PRIMARY KEY, date_ts REAL NOT NULL)")
            conn.execute("DELETE FROM redate")
            conn.executemany("INSERT INTO redate VALUES (?, ?)", [(w.doc_id, w.date_ts) for w in writes])
            conn.executemany(
                f"UPDATE sources SET published = ? WHERE doc_id = ? AND published {same}"
                " (SELECT published FROM documents WHERE doc_id = ?)",
                [(w.published, w.doc_id, w.doc_id) for w in writes],
            )
            conn.executemany(
                "UPDATE documents SET published = ?, date_ts = ?, published_raw = ?, date_order = ?, date_parser = ?"
                " WHERE doc_id = ?",
                [(w.published, w.date_ts, w.raw, w.order, w.parser, w.doc_id) for w in writes],
            )
            conn.execute("UPDATE chunks SET date_ts = (SELECT r.date_ts FROM redate r WHERE r.doc_id ="
                         " chunks.doc_id) WHERE doc_id IN (SELECT doc_id FROM redate)")
            lexical.redate(conn, conn.execute("SELECT c.chunk_id, r.date_ts FROM chunks c JOIN redate r"
                                              " ON r.doc_id = c.doc_id").fetchall())
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    with_retry(txn)


def mark_read(conn: Connection, doc_ids: Sequence[str], version: str) -> None:
    """Record that parser ``version`` has looked at these documents' dates (and left them as they are)."""
    with_retry(lambda: conn.executemany("UPDATE documents SET date_parser = ? WHERE doc_id = ?",
                                        [(version, d) for d in doc_ids]))


@dataclass(frozen=True)
class OutletDates:
    """How many of one outlet's documents are dated by their ingestion time."""

    source: str
    ingested: int
    documents: int

    def to_json(self) -> dict[str, object]:
        return {"source": self.source, "ingested": self.ingested, "documents": self.documents}


def date_counts(conn: Connection, top: int = 10) -> tuple[int, int, list[OutletDates]]:
    """(documents with a publication date, documents dated by ingestion time, the outlets lacking dates
    most: by count of undated documents, then by share)."""
    undated = "SUM(CASE WHEN published IS NULL THEN 1 ELSE 0 END)"
    published, ingested = conn.execute(
        f"SELECT COUNT(*) - COALESCE({undated}, 0), COALESCE({undated}, 0) FROM documents"
    ).fetchone()
    rows = conn.execute(
        f"SELECT outlet, n, total FROM (SELECT CASE WHEN source = '' THEN '(no outlet)' ELSE source END AS outlet,"
        f" {undated} AS n, COUNT(*) AS total FROM documents GROUP BY 1) o WHERE n > 0"
        " ORDER BY n DESC, CAST(n AS REAL) / total DESC, outlet LIMIT ?",
        (top,),
    ).fetchall()
    return int(published), int(ingested), [OutletDates(r[0], int(r[1]), int(r[2])) for r in rows]
