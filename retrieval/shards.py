"""Which Chroma collection (shard) holds each chunk vector of an embedded store.

Chroma loads a collection's whole HNSW index into memory as soon as anything touches it, even a count or a
lookup by id. An embedded store is therefore split into shards of at most ``SHARD_CHUNKS`` vectors, and this
small SQLite file beside Chroma's own records where every vector went, so that a write (a changed article's
old chunks deleted, a date repaired) touches only the shards that hold its ids and an ingest or a reindex
keeps one shard's index in memory, whatever the corpus size.

A placement is written before its vector and forgotten after it: a crash in between leaves a placement
without a vector, which a later delete of that id clears, never a vector that no placement names.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

PLACEMENT_FILE = "sitrep-shards.sqlite3"
_LOOKUP_BATCH = 900  # SQLite's default limit on bound parameters is 999


class Placement:
    """A chunk id → shard number table, safe to share between threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("CREATE TABLE IF NOT EXISTS placement (chunk_id TEXT PRIMARY KEY, shard INTEGER "
                               "NOT NULL) WITHOUT ROWID")

    def shards_of(self, ids: Sequence[str]) -> dict[str, int]:
        """The shard of each placed id (ids never placed are left out)."""
        found: dict[str, int] = {}
        with self._lock:
            for start in range(0, len(ids), _LOOKUP_BATCH):
                part = list(ids[start : start + _LOOKUP_BATCH])
                marks = ",".join("?" * len(part))
                found.update(self._conn.execute(
                    f"SELECT chunk_id, shard FROM placement WHERE chunk_id IN ({marks})", part))
        return found

    def place(self, ids: Iterable[str], shard: int) -> None:
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT OR REPLACE INTO placement VALUES (?, ?)", ((i, shard) for i in ids))
            self._conn.execute("COMMIT")

    def forget(self, ids: Iterable[str]) -> None:
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.executemany("DELETE FROM placement WHERE chunk_id = ?", ((i,) for i in ids))
            self._conn.execute("COMMIT")

    def clear(self) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM placement")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
