"""`summarize` without a topic: the window's biggest stories, how much was covered, and the rest by name."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bot.answer.engine import Engine
from bot.digest.build import build_digest
from bot.settings import load_settings
from retrieval.corpus import Corpus, CorpusConfig
from retrieval.embeddings import MiniLMEmbedding
from tests.fixtures_news import week_articles


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedding) -> Iterator[Corpus]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
        corpus = Corpus.open(CorpusConfig(data_dir=tmp_path_factory.mktemp("summary-week")))
    corpus.ingest_articles(week_articles())
    yield corpus
    corpus.close()


def _engine(corpus: Corpus) -> Engine:
    return Engine(load_settings({"SITREP_ANSWER_MODE": "extractive"}).llm, corpus,
                  clock=lambda: datetime(2024, 3, 6, 12, tzinfo=UTC))


def test_summary_covers_the_biggest_stories_and_offers_the_rest(week: Corpus) -> None:
    summary = _engine(week).summarize(max_events=2)
    assert not summary.abstained
    head, *body, tail = summary.answer.split("\n")
    # 13 articles in the 3 days up to the newest one (the fishing fleet, a week older, is out)
    assert head.startswith("The 2 biggest of ") and "published between 2024-03-03 and 2024-03-06" in head
    assert head.endswith("8 of 13 articles covered.")
    assert len(body) == 2
    assert body[0].startswith("- **Velmora mourns 44 victims of bridge collapse** (5 articles, 4 outlets; 6 Mar 2024):")
    assert body[1].startswith("- **Port Saren strike ends with pay deal** (3 articles, 3 outlets; 6 Mar 2024):")
    assert all(re.search(r"\[\d+\]$", line) for line in body)
    assert tail.startswith("Also in this window: ")
    assert "Floods in the Arrow valley" in tail or "Arrow valley flood waters" in tail
    assert "(2 articles)" in tail and "Ask “summarize " in tail
    assert "Fishing fleet" not in summary.answer
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", summary.answer)}
    assert markers == {c.n for c in summary.citations}


def test_summary_of_a_given_window(week: Corpus) -> None:
    summary = _engine(week).summarize(since=datetime(2024, 2, 26, tzinfo=UTC),
                                      until=datetime(2024, 2, 28, tzinfo=UTC))
    head, *body = summary.answer.split("\n")
    assert head.startswith("All 1 story published between 2024-02-26 and 2024-02-28")
    assert body[0].startswith("- **Fishing fleet returns to Saren for the winter** (1 article, 1 outlet;")
    assert "Also in this window" not in summary.answer


def test_summary_of_an_empty_window_abstains(week: Corpus) -> None:
    summary = _engine(week).summarize(since=datetime(2024, 1, 1, tzinfo=UTC), until=datetime(2024, 1, 2, tzinfo=UTC))
    assert summary.abstained and not summary.citations


def test_digest_story_title_is_the_newest_articles(week: Corpus) -> None:
    engine = _engine(week)
    digest = build_digest(week, engine.summarize_passages, since=datetime(2024, 3, 4, tzinfo=UTC),
                          until=datetime(2024, 3, 6, 12, tzinfo=UTC), timezone="UTC")
    bridge = digest.stories[0]
    assert len(bridge.docs) == 5
    assert bridge.title == "Velmora mourns 44 victims of bridge collapse"
    assert "**1. Velmora mourns 44 victims of bridge collapse**" in digest.markdown
