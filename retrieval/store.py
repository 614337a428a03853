"""The Chroma vector store: embedded ``PersistentClient`` by default, ``HttpClient`` with ``CHROMA_HOST``.

Vectors are computed by sitrep (see :mod:`retrieval.embeddings`) and handed to Chroma; the collection
is created with the matching registered embedding function, so its configuration records the model
and a store built with another model is refused with a message that says how to re-index.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.embeddings import Embedder
from retrieval.errors import EmbeddingMismatchError, StoreError
from retrieval.neterrors import connection_cause

log = logging.getLogger(__name__)

DEFAULT_COLLECTION = "sitrep_chunks"
MAX_BATCH = 5000  # Chroma's limit is 5,461 records per call
# The embedded store keeps its whole HNSW index in the process that ingests or re-indexes (~2.8 KB a chunk):
# past about this many chunks that process passes 600 MB (docs/benchmarks.md, "Memory"). A server holds the
# index in its own process instead.
EMBEDDED_CHUNK_LIMIT = 40_000


def embedded_size_advice(chunks: int, host: str | None, data_dir: Path) -> str | None:
    """What to do when an embedded store has outgrown the memory budget (None: nothing to do)."""
    if host or chunks <= EMBEDDED_CHUNK_LIMIT:
        return None
    return (f"the embedded Chroma store holds {chunks:,} chunks; past ~{EMBEDDED_CHUNK_LIMIT:,} every ingest and "
            f"reindex holds its whole index in memory (over 600 MB). Stop sitrep, serve this same store with "
            f"`chroma run --path {data_dir / 'chroma'}` and set CHROMA_HOST=127.0.0.1 (nothing is re-embedded).")


def _unreachable(host: str | None, port: int, exc: Exception) -> StoreError:
    if host:
        return StoreError(
            f"Cannot reach the Chroma server at {host}:{port}: {connection_cause(exc)}. "
            "Check that `chroma run` is up there and CHROMA_HOST/CHROMA_PORT are right."
        )
    detail = " ".join(str(exc).split())[:200]
    return StoreError(f"The embedded Chroma store failed ({type(exc).__name__}: {detail})")


class VectorStore:
    """A Chroma collection of chunk vectors with ``date_ts`` metadata."""

    def __init__(self, data_dir: Path, embedder: Embedder, model_label: str,
                 host: str | None = None, port: int = 8000, replace_mismatched: bool = False,
                 collection: str = DEFAULT_COLLECTION) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self.host, self.port = host, port
        self.name = collection
        self.model_label = model_label
        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        try:
            if host:
                self.client = chromadb.HttpClient(host=host, port=port, settings=chroma_settings)
                self.client.heartbeat()
            else:
                self.client = chromadb.PersistentClient(path=str(data_dir / "chroma"), settings=chroma_settings)
            try:
                self.collection = self._open_collection(embedder)
            except EmbeddingMismatchError:
                if not replace_mismatched:
                    raise
                self.recreate(embedder)
        except (EmbeddingMismatchError, StoreError):
            raise
        except Exception as exc:
            raise _unreachable(host, port, exc) from exc

    @property
    def description(self) -> str:
        return f"chroma-server {self.host}:{self.port}" if self.host else "chroma-embedded"

    def _mismatch(self, found: str) -> EmbeddingMismatchError:
        return EmbeddingMismatchError(
            f"The store was built with embedding model {found!r} but SITREP_EMBEDDING_MODEL selects "
            f"{self.model_label!r}. A collection never mixes models: set SITREP_EMBEDDING_MODEL back, or "
            "re-index with `sitrep reindex` (re-embeds every chunk with the configured model)."
        )

    def _open_collection(self, embedder: Embedder) -> Any:
        if self.name in self._collection_names():
            return self._existing(embedder)
        try:
            return self.client.create_collection(
                self.name,
                embedding_function=embedder,  # type: ignore[arg-type]
                metadata={"embedding_model": self.model_label, "hnsw:space": "cosine"},
            )
        except Exception as exc:
            # Two hosts opening a new store at once both see no collection; the second create loses the race.
            if "already exists" not in str(exc).lower():
                raise
            return self._existing(embedder)

    def _existing(self, embedder: Embedder) -> Any:
        try:
            collection = self.client.get_collection(self.name, embedding_function=embedder)  # type: ignore[arg-type]
        except Exception as exc:
            if "conflict" in str(exc).lower():
                raise self._mismatch(str(exc)) from exc
            raise
        found = (collection.metadata or {}).get("embedding_model")
        if found and found != self.model_label:
            raise self._mismatch(found)
        return collection

    def recreate(self, embedder: Embedder) -> None:
        """Drop the collection and create an empty one for the configured model (for re-indexing)."""
        if self.name in self._collection_names():
            self.client.delete_collection(self.name)
        self.collection = self._open_collection(embedder)

    def _collection_names(self) -> set[str]:
        return {c.name if hasattr(c, "name") else str(c) for c in self.client.list_collections()}

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict[str, Any]]) -> None:
        try:
            for start in range(0, len(ids), MAX_BATCH):
                end = start + MAX_BATCH
                self.collection.upsert(
                    ids=list(ids[start:end]),
                    embeddings=vectors[start:end],
                    metadatas=list(metadatas[start:end]),
                )
        except Exception as exc:
            raise _unreachable(self.host, self.port, exc) from exc

    def update_metadata(self, ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> None:
        """Change some metadata keys of stored chunks (the others and the vectors are kept; unknown ids are
        ignored)."""
        try:
            for start in range(0, len(ids), MAX_BATCH):
                end = start + MAX_BATCH
                self.collection.update(ids=list(ids[start:end]), metadatas=list(metadatas[start:end]))
        except Exception as exc:
            raise _unreachable(self.host, self.port, exc) from exc

    def delete(self, ids: Sequence[str]) -> None:
        try:
            for start in range(0, len(ids), MAX_BATCH):
                self.collection.delete(ids=list(ids[start : start + MAX_BATCH]))
        except Exception as exc:
            raise _unreachable(self.host, self.port, exc) from exc

    def query(self, vector: np.ndarray, n: int, where: dict[str, Any] | None) -> list[tuple[str, float]]:
        """Nearest chunks as (id, cosine similarity), best first."""
        try:
            res = self.collection.query(query_embeddings=[vector], n_results=n, where=where, include=["distances"])
        except Exception as exc:
            raise _unreachable(self.host, self.port, exc) from exc
        ids = res["ids"][0] if res["ids"] else []
        dists = res["distances"][0] if res.get("distances") else [1.0] * len(ids)
        return [(i, 1.0 - float(d)) for i, d in zip(ids, dists, strict=False)]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        try:
            res = self.collection.get(ids=list(ids), include=["embeddings"])
        except Exception as exc:
            raise _unreachable(self.host, self.port, exc) from exc
        return {i: np.asarray(e, dtype=np.float32) for i, e in zip(res["ids"], res["embeddings"], strict=False)}

    def count(self) -> int:
        try:
            return int(self.collection.count())
        except Exception as exc:
            raise _unreachable(self.host, self.port, exc) from exc
