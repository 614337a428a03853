"""The Chroma server stops mid-session: one clear message, and recovery when it returns, with no restart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from retrieval.corpus import Corpus
from retrieval.errors import StoreError

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
