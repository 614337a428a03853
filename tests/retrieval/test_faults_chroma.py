"""The Chroma server stops mid-session: one clear message, and recovery when it returns, with no restart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from retrieval.corpus import Corpus
from retrieval.embeddings import MiniLMEmbedding, model_label
from retrieval.errors import StoreError
from retrieval.store import VectorStore

from conftest import ChromaServer, fixture_articles


def test_chroma_server_down_then_back(tmp_path: Path, corpus_factory: Callable[..., Corpus]) -> None:
    server = ChromaServer(tmp_path / "chroma")
    (tmp_path / "chroma").mkdir()
    server.start()
    try:
        host, port = server.address
        corpus = corpus_factory(chroma_host=host, chroma_port=port, articles=fixture_articles())
        assert corpus.search("helicopter crash Nawa", k=1)

        server.stop()
        with pytest.raises(StoreError) as caught:
            corpus.search("helicopter crash Nawa", k=1)
        message = str(caught.value)
        assert f"Cannot reach the Chroma server at {host}:{port}" in message
        assert "Traceback" not in message and "\n" not in message

        server.start()  # same port, same data
        hits = corpus.search("helicopter crash Nawa", k=2)
        assert hits and "Nawa" in hits[0].text
        assert corpus.store.count() == corpus.stats().chunks
    finally:
        server.stop()


def test_a_collection_created_by_another_host_in_between_is_opened(
        tmp_path: Path, embedder: MiniLMEmbedding, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two hosts opening a new store at once both find no collection; the one whose create comes second
    opens the collection the other made instead of failing."""
    first = VectorStore(tmp_path, embedder, model_label("minilm"))
    monkeypatch.setattr("retrieval.store._Connection.names", lambda self: set())  # it looked before the other created
    second = VectorStore(tmp_path, embedder, model_label("minilm"))
    assert second.shards[0].id == first.shards[0].id
