"""`sitrep remove`: a removed article is never retrieved, cited, summarised or counted again, re-ingesting it is
refused unless forced, and a `kill -9` mid-removal is rolled back or finished on the next run."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.answer.engine import Engine
from bot.cli.main import main
from bot.digest.build import build_digest
from bot.digest.scheduler import FeedPoller
from bot.feeds.registry import FeedRegistry
from bot.settings import load_settings
from retrieval.corpus import Corpus
from retrieval.errors import QueryError
from retrieval.removal import RemovalRequest

from conftest import fixture_articles
from httpfixtures import LOCAL_FETCH, LocalHTTPServer, Route

pytestmark = pytest.mark.both_engines  # every store test here runs on SQLite and on PostgreSQL

CRASH_URL = "https://example-news.test/helmand-helicopters"
CRASH_QUERY = "MI-17 helicopters crashed in Nawa district, Ministry of Defense"


def _engine(corpus: Corpus) -> Engine:
    return Engine(load_settings({"SITREP_ANSWER_MODE": "extractive"}).llm, corpus)


def _doc_id(corpus: Corpus, url: str) -> str:
    return next(d.doc_id for d in corpus.documents() if d.url == url)


def consistent(corpus: Corpus) -> None:
    """Every live chunk has its vector, no other vector is left, and no journal entry is pending."""
    assert corpus.store.count() == corpus.stats().chunks
    assert corpus.state.conn.execute("SELECT COUNT(*) FROM vector_journal").fetchone()[0] == 0


def test_removed_article_is_never_retrieved_cited_summarised_or_counted(corpus: Corpus) -> None:
    removed_id = _doc_id(corpus, CRASH_URL)
    chunk_ids = corpus.state.doc_chunk_ids(removed_id)
    for mode in ("dense", "lexical"):
        assert removed_id in {h.doc_id for h in corpus.search(CRASH_QUERY, k=8, mode=mode)}

    report = corpus.remove(RemovalRequest(targets=[CRASH_URL]))
    assert [d.doc_id for d in report.documents] == [removed_id] and report.not_found == []
    assert report.chunks == len(chunk_ids) > 0

    for mode in ("dense", "lexical", "hybrid"):
        hits = corpus.search(CRASH_QUERY, k=8, mode=mode)
        assert removed_id not in {h.doc_id for h in hits}, mode
    assert corpus.store.vectors(chunk_ids) == {}
    consistent(corpus)

    engine = _engine(corpus)
    answer = engine.ask("How many people died when the helicopters crashed in Nawa?")
    assert answer.citations, "the other outlet's article still answers it"
    assert all(c.doc_id != removed_id and c.url != CRASH_URL for c in answer.citations)
    summary = engine.summarize("helicopter crash in Nawa")
    assert all(c.doc_id != removed_id for c in summary.citations)
    digest = build_digest(corpus, engine.summarize_passages, since=datetime(2020, 10, 13, tzinfo=UTC),
                          until=datetime(2020, 10, 17, tzinfo=UTC), timezone="UTC", channel="C1")
    assert digest.article_count == 3
    assert all(d.doc_id != removed_id for s in digest.stories for d in s.docs)
    assert all(c.doc_id != removed_id for c in digest.citations)


def test_a_removed_articles_figures_are_not_compared_in_the_next_digest(
    corpus_factory: Callable[..., Corpus],
) -> None:
    from tests.digest.test_digest import DAY1, DAY2, SINCE1, UNTIL1, UNTIL2, articles

    corpus = corpus_factory(articles=articles(DAY1 + DAY2))
    engine = _engine(corpus)

    def build(since: datetime, until: datetime, previous: dict[str, Any] | None) -> Any:
        return build_digest(corpus, engine.summarize_passages, since=since, until=until, timezone="UTC",
                            previous_state=previous, channel="C1")

    first = build(SINCE1, UNTIL1, None)
    changes = [c for s in build(UNTIL1, UNTIL2, first.state()).stories for c in s.changes]
    assert any("people killed: 9 →" in c for c in changes), changes
    # Both articles that reported nine dead are retracted: the next digest has nothing to compare 15 with.
    corpus.remove(RemovalRequest(targets=[url for url, *_ in DAY1 if "crash" in url]))
    changes = [c for s in build(UNTIL1, UNTIL2, first.state()).stories for c in s.changes]
    assert not any("people killed" in c for c in changes), changes
    assert any("families displaced: 4,000 →" in c for c in changes), changes


def test_reingest_is_refused_unless_forced(corpus: Corpus) -> None:
    crash = next(a for a in fixture_articles() if a.source_key == CRASH_URL)
    corpus.remove(RemovalRequest(targets=[CRASH_URL]))

    again = corpus.ingest_articles([crash])
    assert (again.added, again.refused) == (0, [CRASH_URL])
    [failure] = again.failed
    assert failure.source == CRASH_URL
    assert "removed with `sitrep remove`" in failure.error and "--force" in failure.error
    # The same text from another address, and new text at the same address, are refused too.
    copied = replace(crash, source_key="https://mirror.test/copy", url="https://mirror.test/copy")
    assert "its text is the same as an article" in corpus.ingest_articles([copied]).failed[0].error
    rewritten = replace(crash, text=crash.text + "\nThe ministry later revised the toll.")
    assert corpus.ingest_articles([rewritten]).refused == [CRASH_URL]
    # The URL with tracking parameters is the same URL.
    tracked = replace(crash, source_key=CRASH_URL + "?utm_source=x", url=CRASH_URL + "?utm_source=x")
    assert corpus.ingest_articles([tracked]).refused
    assert corpus.stats().documents == 3

    forced = corpus.ingest_articles([crash], force=True)
    assert (forced.added, forced.failed) == (1, [])
    assert corpus.ingest_articles([crash]).unchanged == 1  # back for good: no longer refused
    assert CRASH_URL in {h.url for h in corpus.search(CRASH_QUERY, k=3)}
    consistent(corpus)


def test_selection_by_outlet_and_date_and_dry_run(corpus: Corpus) -> None:
    before = corpus.stats()
    preview = corpus.remove(RemovalRequest(outlet="kabul ledger"), dry_run=True)
    assert sorted(d.title for d in preview.documents) == ["NATO chief urges Taliban to reduce violence",
                                                          "Two army helicopters crash in Helmand's Nawa district"]
    assert preview.to_json()["removed"] == 0 and preview.to_json()["dry_run"] is True
    assert corpus.stats() == before

    early = corpus.remove(RemovalRequest(outlet="Kabul Ledger", before=datetime(2020, 10, 15, tzinfo=UTC)))
    assert [d.title for d in early.documents] == ["Two army helicopters crash in Helmand's Nawa district"]
    assert corpus.stats().documents == 3

    nothing = corpus.remove(RemovalRequest(targets=["https://nowhere.test/x", "0123456789abcdef"]))
    assert nothing.documents == [] and nothing.not_found == ["https://nowhere.test/x", "0123456789abcdef"]
    assert corpus.remove(RemovalRequest(outlet="No Such Outlet")).not_found == ["--outlet No Such Outlet"]
    with pytest.raises(QueryError):
        RemovalRequest()
    consistent(corpus)


def test_text_shared_by_two_sources_goes_for_both(corpus: Corpus) -> None:
    crash = next(a for a in fixture_articles() if a.source_key == CRASH_URL)
    copy = replace(crash, source_key="https://mirror.test/copy", url="https://mirror.test/copy", source="Mirror")
    assert corpus.ingest_articles([copy]).duplicates == 1
    report = corpus.remove(RemovalRequest(targets=["https://mirror.test/copy"]))
    [doc] = report.documents
    assert {url for _, url in doc.sources} == {CRASH_URL, "https://mirror.test/copy"}
    assert corpus.ingest_articles([crash]).refused == [CRASH_URL]


def test_cli_remove(cli_env: Path, corpus_factory: Callable[..., Corpus], capsys: pytest.CaptureFixture[str]) -> None:
    corpus = corpus_factory(data_dir=cli_env, articles=fixture_articles())
    crash_id = _doc_id(corpus, CRASH_URL)

    assert main(["remove", "https://nowhere.test/story"]) == 0
    out = capsys.readouterr().out
    assert "Nothing to remove" in out and "Not found (nothing removed for it): https://nowhere.test/story" in out

    assert main(["remove", "--dry-run", crash_id]) == 0
    assert "Would remove 1 article" in capsys.readouterr().out
    assert corpus.stats().documents == 4

    assert main(["remove", CRASH_URL, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["removed"] == 1 and result["not_found"] == [] and result["dry_run"] is False
    assert result["documents"][0]["doc_id"] == crash_id and result["documents"][0]["sources"] == [CRASH_URL]

    assert main(["remove"]) == 2
    assert "Say what to remove" in capsys.readouterr().err
    assert main(["remove", "--before", "next week"]) == 2
    assert "--before 'next week' is not a date" in capsys.readouterr().err

    assert main(["remove", "--before", "2020-10-15"]) == 0  # the other 14 Oct article
    assert "Removed 1 article" in capsys.readouterr().out
    assert corpus.stats().documents == 2


# A `sitrep` that is killed (SIGKILL) at a chosen point of a removal.
KILLED_AT = """
import os, signal, sys
import retrieval.state_removal, retrieval.store
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
if sys.argv[1] == "delete":  # after the commit, when the vectors are being deleted
    retrieval.store.VectorStore.delete = die
else:  # inside the transaction, after the first document was deleted
    drop = retrieval.state_removal.drop_document
    calls = []
    def drop_then_die(c, doc_id):
        if calls:
            die()
        calls.append(doc_id)
        return drop(c, doc_id)
    retrieval.state_removal.drop_document = drop_then_die
from bot.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def test_kill_9_mid_removal_is_rolled_back_or_finished(cli_env: Path, corpus_factory: Callable[..., Corpus]) -> None:
    corpus = corpus_factory(data_dir=cli_env, articles=fixture_articles())
    chunks = corpus.stats().chunks
    other = "https://relief.test/displacement-update"

    def killed(point: str, *targets: str) -> None:
        run = subprocess.run([sys.executable, "-c", KILLED_AT, point, "remove", *targets], env=os.environ.copy(),
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == -9, run.stderr[-2000:]

    killed("transaction", CRASH_URL, other)  # rolled back: both still there, nothing tombstoned
    assert corpus.stats().documents == 4 and corpus.stats().chunks == chunks
    assert corpus.state.tombstone_count() == 0
    consistent(corpus)

    crash_id = _doc_id(corpus, CRASH_URL)
    killed("delete", CRASH_URL)  # committed: gone from search at once, its vectors journaled
    assert corpus.stats().documents == 3 and all(d.url != CRASH_URL for d in corpus.documents())
    assert crash_id not in {h.doc_id for h in corpus.search(CRASH_QUERY, k=8, mode="dense")}
    assert corpus.store.count() > corpus.stats().chunks
    assert corpus.remove(RemovalRequest(targets=["https://nowhere.test/x"])).documents == []  # the next run
    consistent(corpus)


def test_feed_entries_refused_as_removed_are_not_fetched_again(tmp_path: Path,
                                                               corpus_factory: Callable[..., Corpus]) -> None:
    corpus = corpus_factory()
    text = ("Two Afghan army helicopters crashed in Nawa district of Helmand province on Wednesday morning, "
            "killing nine people on board, the Ministry of Defense said in a statement.")
    with LocalHTTPServer() as server:
        server.route("/crash", Route(f"<html><head><title>Crash</title></head><body><article><h1>Crash</h1>"
                                     f"<p>{text}</p></article></body></html>"))
        item = (f"<item><title>Crash</title><link>{server.base_url}/crash</link>"
                "<pubDate>Wed, 14 Oct 2020 09:00:00 GMT</pubDate></item>")
        feed = server.route("/feed.xml", Route(f'<?xml version="1.0"?><rss version="2.0"><channel><title>Herald'
                                               f"</title><link>{server.base_url}/</link>{item}</channel></rss>",
                                               content_type="application/rss+xml"))
        registry = FeedRegistry(tmp_path / "state.db", env_feeds=[feed], poll_interval=timedelta(minutes=15))
        poller = FeedPoller(registry, corpus, LOCAL_FETCH)
        start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        assert poller.tick(start)[0].added == 1
        corpus.remove(RemovalRequest(targets=[f"{server.base_url}/crash"]))
        _forget_links(registry, feed)

        assert poller.tick(start + timedelta(minutes=15))[0].added == 0  # fetched once more, refused
        assert len(server.requests_to("/crash")) == 2
        poller.tick(start + timedelta(minutes=30))
        assert len(server.requests_to("/crash")) == 2  # remembered: not fetched again
    assert corpus.stats().documents == 0


def _forget_links(registry: FeedRegistry, feed: str) -> None:
    """As if the feed's links had never been seen (a feed removed and added again, or another feed)."""
    with sqlite3.connect(registry.path) as conn:
        conn.execute("DELETE FROM feeds_seen_links WHERE feed_url = ?", (feed,))
