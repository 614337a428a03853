"""An outlet for every article with a URL: known names, registered domains, and stores ingested before."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.cli.digest import add_commands
from bot.settings import load_settings
from retrieval.corpus import Corpus
from retrieval.documents import Article
from retrieval.embeddings import MiniLMEmbedding
from retrieval.outlets import outlet_for_url, readable_outlet

pytestmark = pytest.mark.both_engines  # every store test here runs on SQLite and on PostgreSQL


@pytest.mark.parametrize(("url", "outlet"), [
    ("https://www.cnn.com/2022/10/30/asia/itaewon/index.html", "CNN"),
    ("https://edition.cnn.com/2022/10/30/asia/itaewon/index.html", "CNN"),
    ("https://www.reuters.com/world/asia-pacific/x", "Reuters"),
    ("https://www.bbc.co.uk/news/world-asia-63444291", "BBC"),
    ("https://apnews.com/article/x", "AP"),
    ("https://www.aljazeera.com/news/2022/10/30/x", "Al Jazeera"),
    ("https://tolonews.com/afghanistan-180000", "TOLOnews"),
    ("https://pajhwok.com/2022/10/30/x/", "Pajhwok"),
    ("https://www.nytimes.com/2022/10/30/world/asia/x.html", "The New York Times"),
    ("https://www.washingtonpost.com/world/2022/10/30/x/", "The Washington Post"),
    ("https://www.theguardian.com/world/2022/oct/30/x", "The Guardian"),
    ("https://abcnews.go.com/International/x", "ABC News"),
    ("https://www.theweek.co.uk/news/x", "The Week"),
    ("https://news.local-paper.co.uk/story/1", "local-paper.co.uk"),
    ("https://www.kabulnow.com.af/x", "kabulnow.com.af"),
    ("https://blog.example.org/a/b", "example.org"),
    ("http://127.0.0.1:8080/story", "127.0.0.1"),
    ("", ""),
    ("not a url", ""),
])
def test_outlet_for_url(url: str, outlet: str) -> None:
    assert outlet_for_url(url) == outlet


def test_a_recorded_domain_becomes_a_name_and_a_name_stays() -> None:
    assert [readable_outlet(n) for n in ("www.cnn.com", "usatoday.com", "TOLOnews", "Kabul Ledger")] == [
        "CNN", "USA Today", "TOLOnews", "Kabul Ledger"]


def records(tmp_path: Path) -> Path:
    path = tmp_path / "records.jsonl"
    rows = [
        {"id": "1", "url": "https://www.cnn.com/2022/10/31/asia/itaewon-toll/index.html",
         "text": "The number of dead in the Itaewon crowd crush climbed to 154, officials said on Monday."},
        {"id": "2", "url": "https://www.bbc.co.uk/news/world-asia-63444291",
         "text": "Mourners laid flowers near the narrow alley in Seoul where the crush happened on Saturday."},
        {"id": "3", "url": "https://news.local-paper.co.uk/itaewon-vigil",
         "text": "A vigil for the victims of the Itaewon disaster was held in Manchester on Tuesday evening."},
        {"id": "4", "source": "Kabul Ledger", "url": "https://www.cnn.com/2022/10/31/asia/x/index.html",
         "text": "Afghan students in Seoul said two of their classmates were missing after the crush."},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


def test_records_without_source_get_their_outlet_and_the_digest_counts_them(
        tmp_path: Path, corpus_factory: Callable[..., Corpus], embedder: MiniLMEmbedding,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database_url: str | None) -> None:
    corpus = corpus_factory(tmp_path / "data")
    assert corpus.ingest([str(records(tmp_path))]).added == 4
    assert sorted(d.source for d in corpus.documents()) == ["BBC", "CNN", "Kabul Ledger", "local-paper.co.uk"]
    hits = corpus.search("Itaewon crowd crush dead", k=1)
    assert hits[0].source == "CNN"
    corpus.close()

    monkeypatch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
    parser = argparse.ArgumentParser(prog="sitrep")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["digest", "--since", "1h", "--json"])
    settings = load_settings({"SITREP_DATA_DIR": str(tmp_path / "data"), "SITREP_ANSWER_MODE": "extractive",
                              **({"SITREP_DATABASE_URL": database_url} if database_url else {})})
    assert args.handler(args, settings) == 0
    digest = json.loads(capsys.readouterr().out)
    assert (digest["articles"], digest["outlets"]) == (4, 4)
    assert "from 4 outlets" in digest["text"]


def test_a_store_ingested_before_gets_its_outlets_when_opened(tmp_path: Path,
                                                              corpus_factory: Callable[..., Corpus]) -> None:
    data = tmp_path / "old"
    corpus = corpus_factory(data, articles=[
        Article(text="Flood waters rose in Kisumu overnight, the Red Cross said.", source_key="a",
                url="https://edition.cnn.com/2022/11/02/africa/kenya-floods/index.html", kind="json"),
        Article(text="Rescue teams reached Ahero by boat on Wednesday morning.", source_key="b",
                url="https://www.theweek.co.uk/news/kenya", kind="json"),
        Article(text="A local report without any address at all.", source_key="c", kind="file"),
    ])
    # As an older sitrep left them: no outlet, or only a host name.
    conn = corpus.state.conn  # autocommit: each statement is written at once
    conn.execute("UPDATE documents SET source = CASE WHEN url LIKE '%cnn%' THEN '' ELSE 'www.theweek.co.uk' END"
                 " WHERE url != ''")
    conn.execute("UPDATE sources SET source = ''")
    conn.execute("DELETE FROM meta WHERE key = 'outlets_filled'")
    corpus.close()
    reopened = corpus_factory(data)
    assert sorted(d.source for d in reopened.documents()) == ["", "CNN", "The Week"]
    sources = reopened.state.conn.execute("SELECT source FROM sources ORDER BY source").fetchall()
    assert [r[0] for r in sources] == ["", "CNN", "The Week"]
