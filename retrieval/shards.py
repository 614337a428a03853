"""How a vector store is laid out in Chroma collections, and which one (shard) holds each chunk vector.

Chroma loads a collection's whole HNSW index into memory as soon as anything touches it, even a count or a
lookup by id. An embedded store is therefore split into shards of at most ``retrieval.store.SHARD_CHUNKS``
vectors, and a small SQLite file per store (under ``DATA_DIR/shards``) records where every vector went, so
that a write (a changed article's old chunks deleted, a date repaired) touches only the shards that hold its
ids and an ingest or a reindex keeps one shard's index in memory, whatever the corpus size.

A placement is written before its vector and forgotten after it: a crash in between leaves a placement
without a vector, which a later delete of that id clears, never a vector that no placement names.

Collection names: generation 0 (a store as first built) is ``{collection}`` for shard 0 and
``{collection}.{i}`` for shard *i*; a ``sitrep reindex`` builds generation *g* beside the one in use, as
``{collection}-g{g}`` and ``{collection}-g{g}.{i}``, and the state database's switch to it is one write.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from retrieval.statedb import connect

PLACEMENT_DIR = "shards"  # in the data directory, beside Chroma's own
_LOOKUP_BATCH = 900  # SQLite's default limit on bound parameters is 999


def generation_name(collection: str, generation: int) -> str:
    """The name of a generation's shard 0 (the prefix of its other shards)."""
    return collection if generation == 0 else f"{collection}-g{generation}"


def shard_name(collection: str, generation: int, shard: int) -> str:
    base = generation_name(collection, generation)
    return base if shard == 0 else f"{base}.{shard}"


def parse_name(name: str, collection: str) -> tuple[int, int] | None:
    """(generation, shard) of a collection of this store, None for any other collection."""
    base, shard = name, 0
    head, _, tail = name.rpartition(".")
    if name != collection and head and tail.isdigit():
        base, shard = head, int(tail)
    if base == collection:
        return 0, shard
    number = base.removeprefix(collection + "-g")
    return (int(number), shard) if base != number and number.isdigit() else None


def placement_path(data_dir: Path, collection: str, generation: int) -> Path:
    return data_dir / PLACEMENT_DIR / f"{generation_name(collection, generation)}.sqlite3"


def remove_placement(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


class Placement:
    """A chunk id → shard number table, safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self._conn = connect(path)
        self._lock = threading.Lock()
        with self._lock:
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
