"""The corpus engine end to end: ingest, de-duplicate, update, search, filters — on both stores."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from retrieval.corpus import Corpus
from retrieval.documents import Article
from retrieval.errors import EmbeddingMismatchError, QueryError

from conftest import fixture_articles

pytestmark = pytest.mark.both_engines  # every store test here runs on SQLite and on PostgreSQL


@pytest.fixture(params=["embedded", "server"])
def make_corpus(request: pytest.FixtureRequest, corpus_factory: Callable[..., Corpus]) -> Callable[..., Corpus]:
    """A corpus factory for the embedded store and for a `chroma run` server."""
    if request.param == "embedded":
        return corpus_factory
    host, port = request.getfixturevalue("chroma_server")
    collection = f"t{uuid.uuid4().hex[:12]}"

    def make(**kwargs: object) -> Corpus:
        return corpus_factory(chroma_host=host, chroma_port=port, collection=collection, **kwargs)

    return make


def consistent(corpus: Corpus) -> None:
    """Every live chunk has exactly one vector and there are no stray vectors."""
    stats = corpus.stats()
    assert corpus.store.count() == stats.chunks
    ids = [r[0] for r in corpus.state.conn.execute("SELECT chunk_id FROM chunks")]
    assert len(ids) == len(set(ids))


def test_ingest_reingest_and_search(make_corpus: Callable[..., Corpus], monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = make_corpus()
    report = corpus.ingest_articles(fixture_articles())
    assert (report.added, report.updated, report.unchanged, report.failed) == (4, 0, 0, [])
    consistent(corpus)

    calls: list[int] = []
    original = corpus.embedder.embed
    monkeypatch.setattr(corpus.embedder, "embed", lambda texts: calls.append(len(texts)) or original(texts))
    again = corpus.ingest_articles(fixture_articles())
    assert (again.added, again.unchanged) == (0, 4)
    assert calls == []  # nothing re-embedded

    hits = corpus.search("helicopter crash Nawa", k=3)
    assert {h.source for h in hits[:2]} == {"Kabul Ledger", "Frontier Wire"}
    first = next(h for h in hits if h.source == "Kabul Ledger")
    assert first.title == "Two army helicopters crash in Helmand's Nawa district"
    assert first.source == "Kabul Ledger"
    assert first.published == "2020-10-14T09:30:00+00:00"
    assert "nine people" in first.text
    assert first.similarity is not None and first.similarity > 0.3

    stolt = corpus.search("what did Stoltenberg say?", k=2)
    assert "Stoltenberg" in stolt[0].text

    # Hits that only the lexical side found get their similarity too (their vectors are read for the hits alone).
    lexical_only = corpus.search("helicopter crash Nawa", k=3, mode="lexical")
    vectors = corpus.chunk_vectors([h.chunk_id for h in lexical_only])
    query = corpus.embed(["helicopter crash Nawa"])[0]
    assert lexical_only and all(h.dense_rank is None for h in lexical_only)
    assert [h.similarity for h in lexical_only] == pytest.approx([float(vectors[h.chunk_id] @ query)
                                                                   for h in lexical_only])


def test_exact_duplicate_is_another_source(make_corpus: Callable[..., Corpus]) -> None:
    corpus = make_corpus(articles=fixture_articles())
    original = fixture_articles()[0]
    copy = Article(text="  " + original.text.replace("\n", "\n\n") + "\n", source_key="https://other.test/copy",
                   title="Copied story", url="https://other.test/copy", source="Other Outlet",
                   published=original.published)
    report = corpus.ingest_articles([copy])
    assert (report.added, report.duplicates) == (0, 1)
    stats = corpus.stats()
    assert (stats.documents, stats.sources) == (4, 5)
    doc = next(d for d in corpus.documents() if d.title == original.title)
    assert {s["source"] for s in doc.sources} == {"Kabul Ledger", "Other Outlet"}
    consistent(corpus)


def test_changed_content_replaces_chunks(make_corpus: Callable[..., Corpus]) -> None:
    corpus = make_corpus(articles=fixture_articles())
    original = fixture_articles()[0]
    corrected = Article(text=original.text.replace("at least nine people", "at least eleven people"),
                        source_key=original.source_key, title=original.title, url=original.url,
                        source=original.source, published=original.published)
    report = corpus.ingest_articles([corrected])
    assert (report.updated, report.added) == (1, 0)
    assert corpus.stats().documents == 4
    texts = " ".join(h.text for h in corpus.search("how many people were killed in the helicopter crash", k=8))
    assert "eleven" in texts and "at least nine" not in texts
    consistent(corpus)


def test_date_filters_apply_to_both_sides(make_corpus: Callable[..., Corpus]) -> None:
    corpus = make_corpus(articles=fixture_articles())
    since = datetime(2020, 10, 15, tzinfo=UTC)
    for mode in ("dense", "lexical", "hybrid"):
        hits = corpus.search("helicopter crash Nawa families displaced", k=8, since=since, mode=mode)
        assert hits, mode
        assert all(h.published and h.published >= "2020-10-15" for h in hits), mode
    until = corpus.search("helicopter", k=8, until=datetime(2020, 10, 14, 12, tzinfo=UTC))
    assert [h.source for h in until] == ["Kabul Ledger"]


def test_recency_and_per_document_cap(corpus: Corpus) -> None:
    latest = corpus.search("latest news from Helmand", k=4)
    assert latest[0].published == max(h.published or "" for h in latest)
    long_doc = Article(text="\n".join(f"Paragraph {i} about the Babaji area and PD4 fighting in Lashkargah city. "
                                      f"Security forces reported clashes near the 601 highway for hour {i}."
                                      for i in range(40)),
                       source_key="long", title="Babaji fighting log", published=datetime(2020, 10, 13, tzinfo=UTC))
    corpus.ingest_articles([long_doc])
    hits = corpus.search("Babaji PD4 fighting", k=6)
    assert sum(h.doc_id == hits[0].doc_id for h in hits) <= 2
    uncapped = corpus.search("Babaji PD4 fighting", k=6, max_per_doc=None)
    assert sum(h.doc_id == uncapped[0].doc_id for h in uncapped) > 2


@pytest.mark.parametrize("query", ["", "   ", "?!…", "x" * 5000])
def test_bad_queries_are_clear_errors(corpus: Corpus, query: str) -> None:
    with pytest.raises(QueryError):
        corpus.search(query)


def test_model_mismatch_is_refused(corpus_factory: Callable[..., Corpus], tmp_path: Path) -> None:
    corpus = corpus_factory(articles=fixture_articles()[:1])
    corpus.state.set_meta("embedding_model", "openai:text-embedding-3-small")
    corpus.close()
    with pytest.raises(EmbeddingMismatchError, match="sitrep reindex"):
        corpus_factory()


def test_reindex_rebuilds_vectors(corpus_factory: Callable[..., Corpus]) -> None:
    corpus = corpus_factory(articles=fixture_articles())
    chunks = corpus.stats().chunks
    corpus.state.set_meta("embedding_model", "something-else")
    corpus.close()
    again = Corpus.open(corpus.config, reindexing=True)
    assert again.reindex() == chunks
    assert again.store.count() == chunks
    assert "Stoltenberg" in again.search("what did Stoltenberg say?", k=1)[0].text
    again.close()


def test_interrupted_write_is_cleaned_up(corpus: Corpus) -> None:
    """Vectors journaled as 'writing' by a process that died never become visible and are removed."""
    import numpy as np

    orphan = ["deadbeef:v:0", "deadbeef:v:1"]
    vectors = np.ones((2, 384), dtype=np.float32) / np.sqrt(384)
    corpus.store.upsert(orphan, vectors, [{"doc_id": "x", "date_ts": 0.0}] * 2)
    corpus.state.conn.execute(
        "INSERT INTO vector_journal(chunk_ids, state, pid, created_ts) VALUES (?, 'writing', 999999999, 0)",
        ('["deadbeef:v:0", "deadbeef:v:1"]',),
    )
    assert all(not h.chunk_id.startswith("deadbeef") for h in corpus.search("anything about Helmand", k=10))
    corpus.ingest_articles([])
    consistent(corpus)
