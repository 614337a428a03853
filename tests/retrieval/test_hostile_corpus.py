"""Hostile article text in the corpus: huge single lines, right-to-left scripts, invisible characters."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np
import pytest

from retrieval.corpus import Corpus
from retrieval.documents import Article
from retrieval.embeddings import WordPieceCounter


class HashingEmbedder:
    """Deterministic pseudo-embeddings: this test is about chunking and storage, not about meaning, and
    embedding ~1,500 chunks with the real model would take a minute on two cores."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(384) for t in texts]
        out = np.asarray(rows, dtype=np.float32).reshape(len(texts), 384)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_one_megabyte_single_line_is_chunked_to_fit_and_searchable(
    corpus_factory: Callable[..., Corpus], monkeypatch: pytest.MonkeyPatch
) -> None:
    words = [f"word{i % 997}" for i in range(150_000)]
    words[70_000] = "Zarghunshah"  # a needle in the middle of one enormous line with no sentence ends
    text = " ".join(words)
    assert len(text) > 1_000_000 and "\n" not in text
    corpus = corpus_factory()
    monkeypatch.setattr(corpus, "embedder", HashingEmbedder())
    report = corpus.ingest_articles([Article(text=text, source_key="huge", title="Huge")])
    assert report.added == 1 and report.failed == []

    counter = WordPieceCounter()
    rows = corpus.state.conn.execute("SELECT text FROM chunks").fetchall()
    assert len(rows) > 100
    assert max(counter.count("Huge\n" + r[0]) for r in rows[:200]) <= 256
    hits = corpus.search("Zarghunshah", k=3, mode="lexical")
    assert hits and "Zarghunshah" in hits[0].text


def test_rtl_mixed_script_and_zero_width_text(corpus_factory: Callable[..., Corpus]) -> None:
    dari = "در ولسوالی نوه هلمند دو چرخبال ارتش سقوط کرد و نه تن کشته شدند."
    pashto = "د لښکرګاه په ښار کې جګړې دوام لري او زرګونه کورنۍ بې ځایه شوې دي."
    hidden = "Ro\u200bss Wi\u200dlson said civilians need safe passage\u2066 out of Lashkargah\u2069."
    corpus = corpus_factory()
    report = corpus.ingest_articles([
        Article(text=f"{dari}\n{pashto}\n{hidden}", source_key="rtl", title="چرخبال", source="Tolo Dari",
                published=datetime(2020, 10, 14, tzinfo=UTC)),
    ])
    assert report.added == 1
    stored = corpus.state.conn.execute("SELECT text FROM documents").fetchone()[0]
    assert "\u200b" not in stored and "\u2066" not in stored and "Ross Wilson" in stored
    assert corpus.search("Ross Wilson safe passage", k=1)[0].doc_id == corpus.documents()[0].doc_id
    assert corpus.search("لښکرګاه", k=1, mode="lexical")
    # The same text with different invisible characters is the same story, not a new document.
    again = corpus.ingest_articles([Article(text=f"{dari}\n{pashto}\n{hidden.replace(chr(0x200B), '')}",
                                            source_key="rtl-copy", title="copy")])
    assert again.duplicates == 1
