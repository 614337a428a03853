"""The Chroma vector store: embedded ``PersistentClient`` by default, ``HttpClient`` with ``CHROMA_HOST``.

Vectors are computed by sitrep (see :mod:`retrieval.embeddings`) and handed to Chroma; the collection
is created with the matching registered embedding function, so its configuration records the model
and a store built with another model is refused with a message that says how to re-index.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from retrieval import heap
from retrieval.embeddings import Embedder
from retrieval.errors import EmbeddingMismatchError, StoreError
from retrieval.neterrors import connection_cause
from retrieval.shards import (
    PLACEMENT_DIR,
    Placement,
    generation_name,
    parse_name,
    placement_path,
    remove_placement,
    shard_name,
)

log = logging.getLogger(__name__)

DEFAULT_COLLECTION = "sitrep_chunks"
MAX_BATCH = 5000  # Chroma's limit is 5,461 records per call
# An embedded shard's HNSW index is ~2.8 KB a vector. An ingest with the model peaks at 530-580 MB with 9k
# chunks in one collection (docs/benchmarks.md, "Memory"), so a shard of 10,000 (28 MB) keeps it under 600 MB;
# a search queries every shard, ~1 ms each (10 at 100k chunks).
SHARD_CHUNKS = 10_000
# A process that searches an embedded store (the Slack bot, `sitrep chat`) loads every shard's HNSW index
# (~2.8 KB a chunk): past about this many chunks it passes 600 MB (docs/benchmarks.md, "Memory"). Ingest and
# reindex hold one shard whatever the size; a server holds the indexes in its own process.
EMBEDDED_CHUNK_LIMIT = 40_000


def embedded_size_advice(chunks: int, host: str | None, data_dir: Path) -> str | None:
    """What to do when an embedded store has outgrown the memory budget of a searching process (None: nothing
    to do)."""
    if host or chunks <= EMBEDDED_CHUNK_LIMIT:
        return None
    return (f"the embedded Chroma store holds {chunks:,} chunks; past ~{EMBEDDED_CHUNK_LIMIT:,} the Slack bot and "
            f"`sitrep chat` hold its whole index in memory to search it (over 600 MB; ingest and reindex stay "
            f"bounded). To keep them small, stop sitrep, serve this same store with `chroma run --path "
            f"{data_dir / 'chroma'}` and set CHROMA_HOST=127.0.0.1 (nothing is re-embedded).")


def _unreachable(host: str | None, port: int, exc: Exception) -> StoreError:
    if host:
        return StoreError(
            f"Cannot reach the Chroma server at {host}:{port}: {connection_cause(exc)}. "
            "Check that `chroma run` is up there and CHROMA_HOST/CHROMA_PORT are right."
        )
    detail = " ".join(str(exc).split())[:200]
    return StoreError(f"The embedded Chroma store failed ({type(exc).__name__}: {detail})")


class _Connection:
    """Chroma's client, shared by the generations of one store (the one in use and the one a reindex builds).

    With ``release`` (a process that writes but never searches) the client is reopened whenever a write goes
    to another collection than the ones touched since it was opened: closing the client is the only way to
    make Chroma free a loaded index, and reopening takes ~15 ms. A searching process reopens it to see what
    another process wrote (:meth:`VectorStore.reload`), once the operations in flight are done. Collection
    handles of an older client are stale; ``epoch`` tells the stores to fetch them again.
    """

    def __init__(self, host: str | None, port: int, path: Path, release: bool) -> None:
        self.host, self.port, self.path = host, port, path
        self.release = release and not host
        self.epoch = 0
        self.touched: set[str] = set()  # collections whose index the client may hold
        self.client = self._open()
        self._turn = threading.Condition()
        self._users = 0
        self._reopening = False

    def _open(self) -> Any:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(anonymized_telemetry=False)
        if self.host:
            client = chromadb.HttpClient(host=self.host, port=self.port, settings=settings)
            client.heartbeat()
            return client
        return chromadb.PersistentClient(path=str(self.path), settings=settings)

    def reopen(self) -> None:
        self.client.close()
        heap.trim()
        self.client = self._open()
        self.epoch += 1
        self.touched.clear()

    @contextmanager
    def in_use(self) -> Iterator[None]:
        """Around an operation: any number at once, none while the client is reopened for a reload."""
        with self._turn:
            self._turn.wait_for(lambda: not self._reopening)
            self._users += 1
        try:
            yield
        finally:
            with self._turn:
                self._users -= 1
                self._turn.notify_all()

    def reopen_alone(self) -> None:
        """Reopen the client once no operation is using it (the next ones wait)."""
        with self._turn:
            self._turn.wait_for(lambda: not self._reopening)
            self._reopening = True
            self._turn.wait_for(lambda: self._users == 0)
        try:
            self.reopen()
        finally:
            with self._turn:
                self._reopening = False
                self._turn.notify_all()

    def writing(self, name: str) -> None:
        """Before a write to collection ``name``: release every other index when asked to (a writing process
        has no other operation in flight)."""
        if self.release and self.touched - {name}:
            self.reopen()
        self.touched.add(name)

    def names(self) -> set[str]:
        return {c.name if hasattr(c, "name") else str(c) for c in self.client.list_collections()}

    def close(self) -> None:
        self.client.close()


class VectorStore:
    """Chunk vectors with ``date_ts`` metadata in one or more Chroma collections (shards).

    An embedded store starts a new shard when the newest holds ``SHARD_CHUNKS`` vectors and records each
    vector's shard (:mod:`retrieval.shards`, which also names the collections); with ``release_shards`` (a
    process that writes but does not search: ingest, reindex) only the index of the shard being written is
    in memory. Searches query every shard. A server holds its indexes in its own process: its writes go to
    the newest shard, and those for ids of unknown placement to every shard.

    ``generation``: which build of the store is in use (the state database records it); a reindex fills
    :meth:`successor` and switches to it only once it is complete.
    """

    def __init__(self, data_dir: Path, embedder: Embedder, model_label: str,
                 host: str | None = None, port: int = 8000, replace_mismatched: bool = False,
                 collection: str = DEFAULT_COLLECTION, release_shards: bool = False, generation: int = 0,
                 *, _connection: _Connection | None = None) -> None:
        self.host, self.port = host, port
        self.collection, self.generation = collection, generation
        self.name = generation_name(collection, generation)
        self.model_label = model_label
        self._data_dir = data_dir
        self._embedder = embedder
        self._placement = None if host else Placement(placement_path(data_dir, collection, generation))
        self._handles: dict[int, Any] = {}
        self._epoch = 0
        self._newest_size: int | None = None  # vectors in the newest shard, read when first written to
        try:
            self._conn = _connection or _Connection(host, port, data_dir / "chroma", release_shards)
            try:
                self._shards = self._open_shards()
            except EmbeddingMismatchError:
                if not replace_mismatched:
                    raise
                # Kept as they are until a reindex has built their successor with the configured model.
                self._shards = self._present(self._conn.names())
        except (EmbeddingMismatchError, StoreError):
            raise
        except Exception as exc:
            raise _unreachable(host, port, exc) from exc

    @property
    def description(self) -> str:
        return f"chroma-server {self.host}:{self.port}" if self.host else "chroma-embedded"

    @property
    def client(self) -> Any:
        """Chroma's client (reopened by a writing process when it moves to another shard)."""
        return self._conn.client

    @property
    def shards(self) -> list[Any]:
        """The Chroma collections, shard 0 first."""
        return [self._shard(s) for s in self._shards]

    def _mismatch(self, found: str) -> EmbeddingMismatchError:
        return EmbeddingMismatchError(
            f"The store was built with embedding model {found!r} but SITREP_EMBEDDING_MODEL selects "
            f"{self.model_label!r}. A collection never mixes models: set SITREP_EMBEDDING_MODEL back, or "
            "re-index with `sitrep reindex` (re-embeds every chunk with the configured model)."
        )

    def _shard_name(self, shard: int) -> str:
        return shard_name(self.collection, self.generation, shard)

    def _present(self, names: set[str]) -> list[int]:
        """This generation's shard numbers among these collection names."""
        parsed = (parse_name(n, self.collection) for n in names)
        return sorted(p[1] for p in parsed if p and p[0] == self.generation)

    def _open_shards(self) -> list[int]:
        """The shard numbers present (creating shard 0 when there is none), checked against the model."""
        present = self._present(self._conn.names())
        if 0 in present:
            self._existing(0)
        else:
            self._create(0)
        return sorted({0, *present})

    def _create(self, shard: int) -> Any:
        try:
            handle = self.client.create_collection(
                self._shard_name(shard),
                embedding_function=self._embedder,  # type: ignore[arg-type]
                metadata={"embedding_model": self.model_label, "hnsw:space": "cosine"},
            )
        except Exception as exc:
            # Two hosts opening a new store at once both see no collection; the second create loses the race.
            if "already exists" not in str(exc).lower():
                raise
            return self._existing(shard)
        self._handles[shard] = handle
        return handle

    def _existing(self, shard: int) -> Any:
        try:
            handle = self.client.get_collection(self._shard_name(shard),
                                                embedding_function=self._embedder)  # type: ignore[arg-type]
        except Exception as exc:
            if "conflict" in str(exc).lower():
                raise self._mismatch(str(exc)) from exc
            raise
        found = (handle.metadata or {}).get("embedding_model")
        if found and found != self.model_label:
            raise self._mismatch(found)
        self._handles[shard] = handle
        return handle

    def _shard(self, shard: int) -> Any:
        # Getting a collection reads its configuration only; its index is loaded by the first operation on it.
        if self._epoch != self._conn.epoch:
            self._handles.clear()
            self._epoch = self._conn.epoch
        return self._handles.get(shard) or self._existing(shard)

    def _reading(self, shard: int) -> Any:
        self._conn.touched.add(self._shard_name(shard))
        return self._shard(shard)

    def _writing_to(self, shard: int) -> Any:
        self._conn.writing(self._shard_name(shard))
        return self._shard(shard)

    def recreate(self, embedder: Embedder) -> None:
        """Drop every shard and create an empty store for the configured model (a restore fills it)."""
        self._embedder = embedder
        self._delete_generations(lambda generation: generation == self.generation)
        if self._placement:
            self._placement.clear()
        self._newest_size = 0
        self._shards = self._open_shards()

    def successor(self, embedder: Embedder) -> VectorStore:
        """An empty store of the next generation beside this one, for a reindex to fill before it switches.

        What an interrupted reindex left (collections of other generations than this one) is dropped first.
        """
        self._delete_generations(lambda generation: generation != self.generation)
        if self._placement:
            for path in (self._data_dir / PLACEMENT_DIR).glob("*.sqlite3"):
                if (p := parse_name(path.stem, self.collection)) and p[0] != self.generation:
                    remove_placement(path)
        return self._at(self.generation + 1, embedder)

    def sibling(self, generation: int) -> VectorStore:
        """The store's ``generation`` (one a reindex switched to), through the same client."""
        return self._at(generation, self._embedder)

    def _at(self, generation: int, embedder: Embedder) -> VectorStore:
        return VectorStore(self._data_dir, embedder, self.model_label, self.host, self.port,
                           collection=self.collection, generation=generation, _connection=self._conn)

    def drop(self) -> None:
        """Delete this generation's collections and placements (once a reindex has switched to its successor)."""
        self._delete_generations(lambda generation: generation == self.generation)
        self._shards = []
        if self._placement:
            self._placement.close()
            remove_placement(placement_path(self._data_dir, self.collection, self.generation))
            self._placement = None

    def _delete_generations(self, which: Callable[[int], bool]) -> None:
        """Delete every collection of this store whose generation ``which`` picks."""
        for name in self._conn.names():
            if (parsed := parse_name(name, self.collection)) and which(parsed[0]):
                self.client.delete_collection(name)
                self._conn.touched.discard(name)
        self._handles.clear()

    def _by_shard(self, ids: Sequence[str]) -> tuple[dict[int, list[int]], list[int]]:
        """Positions in ``ids`` grouped by the shard that holds them, and the positions of unplaced ids."""
        placed = self._placement.shards_of(ids) if self._placement else {}
        groups: dict[int, list[int]] = {}
        unplaced = []
        for pos, chunk_id in enumerate(ids):
            shard = placed.get(chunk_id)
            if shard is None:
                unplaced.append(pos)
            else:
                groups.setdefault(shard, []).append(pos)
        return groups, unplaced

    def _room(self) -> int:
        """How many more vectors the newest shard takes (a new shard is started when it is full)."""
        if self._placement is None:
            return MAX_BATCH
        if self._newest_size is None:
            self._newest_size = int(self._writing_to(self._shards[-1]).count())
        if self._newest_size >= SHARD_CHUNKS:
            shard = self._shards[-1] + 1
            self._conn.writing(self._shard_name(shard))
            self._create(shard)
            self._shards.append(shard)
            self._newest_size = 0
        return SHARD_CHUNKS - self._newest_size

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict[str, Any]]) -> None:
        """Write vectors: an id already placed stays in its shard, a new one goes to the newest shard."""
        with self._using():
            groups, new = self._by_shard(ids)
            for shard, positions in groups.items():
                self._upsert_into(shard, ids, vectors, metadatas, positions)
            while new:
                room = min(self._room(), MAX_BATCH)
                taken, new = new[:room], new[room:]
                shard = self._shards[-1]
                if self._placement:
                    self._placement.place((ids[p] for p in taken), shard)
                    self._newest_size = (self._newest_size or 0) + len(taken)
                self._upsert_into(shard, ids, vectors, metadatas, taken)

    def _upsert_into(self, shard: int, ids: Sequence[str], vectors: np.ndarray,
                     metadatas: Sequence[dict[str, Any]], positions: list[int]) -> None:
        handle = self._writing_to(shard)
        for start in range(0, len(positions), MAX_BATCH):
            part = positions[start : start + MAX_BATCH]
            handle.upsert(ids=[ids[p] for p in part], embeddings=vectors[part],
                          metadatas=[metadatas[p] for p in part])

    def _each_holder(self, ids: Sequence[str]) -> list[tuple[int, list[int]]]:
        """For a write to existing ids: each shard that may hold some of them, with their positions (an id of
        unknown placement may be in any shard)."""
        groups, unplaced = self._by_shard(ids)
        for shard in self._shards if unplaced else ():
            groups[shard] = groups.get(shard, []) + unplaced
        return [(shard, positions) for shard, positions in sorted(groups.items())]

    def update_metadata(self, ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> None:
        """Change some metadata keys of stored chunks (the others and the vectors are kept; unknown ids are
        ignored)."""
        with self._using():
            for shard, positions in self._each_holder(ids):
                handle = self._writing_to(shard)
                for start in range(0, len(positions), MAX_BATCH):
                    part = positions[start : start + MAX_BATCH]
                    handle.update(ids=[ids[p] for p in part], metadatas=[metadatas[p] for p in part])

    def delete(self, ids: Sequence[str]) -> None:
        """Remove vectors (unknown ids are ignored)."""
        with self._using():
            for shard, positions in self._each_holder(ids):
                handle = self._writing_to(shard)
                for start in range(0, len(positions), MAX_BATCH):
                    handle.delete(ids=[ids[p] for p in positions[start : start + MAX_BATCH]])
            if self._placement:
                self._placement.forget(ids)

    def query(self, vector: np.ndarray, n: int, where: dict[str, Any] | None) -> list[tuple[str, float]]:
        """Nearest chunks as (id, cosine similarity), best first, over every shard."""
        found: list[tuple[str, float]] = []
        with self._using():
            for shard in self._shards:
                res = self._reading(shard).query(query_embeddings=[vector], n_results=n, where=where,
                                               include=["distances"])
                ids = res["ids"][0] if res["ids"] else []
                dists = res["distances"][0] if res.get("distances") else [1.0] * len(ids)
                found.extend((i, 1.0 - float(d)) for i, d in zip(ids, dists, strict=False))
        return sorted(found, key=lambda hit: -hit[1])[:n]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of these ids (ids not in the store are left out)."""
        found: dict[str, np.ndarray] = {}
        with self._using():
            for shard, positions in self._each_holder(ids):
                res = self._reading(shard).get(ids=[ids[p] for p in positions], include=["embeddings"])
                found.update((i, np.asarray(e, dtype=np.float32))
                             for i, e in zip(res["ids"], res["embeddings"], strict=False))
        return found

    def count(self) -> int:
        """Vectors in every shard."""
        with self._using():
            total = 0
            for shard in self._shards:
                total += int(self._reading(shard).count())
            return total

    @contextmanager
    def _using(self) -> Iterator[None]:
        """Around one operation: the client stays open, and Chroma's failures become :class:`StoreError`."""
        with self._conn.in_use():
            try:
                yield
            except (StoreError, EmbeddingMismatchError):
                raise
            except Exception as exc:
                raise _unreachable(self.host, self.port, exc) from exc

    def reload(self) -> None:
        """See what another process wrote since: an embedded client reads the indexes again from disk at their
        next use (one it has loaded never shows vectors written by another process, and a query whose metadata
        filter meets them fails), and the shards are listed again (that process may have started new ones).
        Chroma shares one client state per directory within a process: it is only read again once every client
        on it is closed, so a process keeps one open (:meth:`Corpus.close` closes its store's)."""
        if not self.host:
            self._conn.reopen_alone()
        with self._using():
            self._shards = sorted({0, *self._present(self._conn.names())})
            self._newest_size = None

    def close(self) -> None:
        """Release Chroma's client (and with it every loaded index) and the placement file."""
        self._conn.close()
        if self._placement:
            self._placement.close()
