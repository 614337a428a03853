"""``sitrep digest`` and ``sitrep feeds`` handlers, run through their argparse wiring."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.cli.digest import add_commands
from bot.settings import Settings, load_settings
from retrieval.corpus import Corpus
from retrieval.embeddings import MiniLMEmbedding
from retrieval.errors import ConfigError, SourceError

from conftest import fixture_articles
from slack_api_server import SlackApiServer


def run(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="sitrep")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args, settings))


@pytest.fixture
def data_dir(tmp_path: Path, corpus_factory: Callable[..., Corpus], embedder: MiniLMEmbedding,
             monkeypatch: pytest.MonkeyPatch) -> Path:
    corpus_factory(data_dir=tmp_path / "data", articles=fixture_articles()).close()
    monkeypatch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
    return tmp_path / "data"


def test_digest_json_since(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings({"SITREP_DATA_DIR": str(data_dir), "SITREP_ANSWER_MODE": "extractive"})
    assert run(settings, "digest", "--since", "2020-10-15T12:00", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    # All four were ingested just now, so all are new however old their publication date.
    assert (data["articles"], data["outlets"], data["empty"]) == (4, 3, False)
    assert data["since"].startswith("2020-10-15T12:00") and data["channel"] is None
    assert {c["source"] for c in data["citations"]} == {"Kabul Ledger", "Frontier Wire", "Relief Monitor"}
    assert "posted" not in data


def test_digest_text_and_post(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SlackApiServer() as slack:
        settings = load_settings({"SITREP_DATA_DIR": str(data_dir), "SITREP_ANSWER_MODE": "extractive",
                                  "SLACK_BOT_TOKEN": slack.token, "SLACK_API_URL": slack.url,
                                  "SITREP_DIGEST_CHANNEL": "CDIGEST"})
        assert run(settings, "digest", "--since", "2020-10-14", "--post") == 0
        (call,) = slack.calls_to("chat.postMessage")
    out = capsys.readouterr().out
    assert "**Daily digest" in out and "Sources:" in out and "Posted to CDIGEST" in out
    assert call.params["channel"] == "CDIGEST" and "4 new articles from 3 outlets" in call.params["text"]


def test_digest_bad_input(tmp_path: Path) -> None:
    settings = load_settings({"SITREP_DATA_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match="SITREP_DIGEST_CHANNEL or pass --channel"):
        run(settings, "digest", "--post")
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        run(settings, "digest", "--post", "--channel", "C1")
    with pytest.raises(Exception, match="--since"):
        run(settings, "digest", "--since", "next tuesday")


def test_feeds_add_list_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings({"SITREP_DATA_DIR": str(tmp_path), "SITREP_FEEDS": "https://env.example/rss"})
    assert run(settings, "feeds", "add", "https://helmand-herald.test/feed.xml") == 0
    assert run(settings, "feeds", "add", "https://helmand-herald.test/feed.xml") == 0
    assert run(settings, "feeds", "list", "--json") == 0
    out = capsys.readouterr().out
    assert "Added https://helmand-herald.test/feed.xml" in out and "Already registered" in out
    listed = json.loads(out[out.index("{"):])
    assert [(f["url"], f["origin"]) for f in listed["feeds"]] == [
        ("https://env.example/rss", "env"), ("https://helmand-herald.test/feed.xml", "cli")]
    assert run(settings, "feeds", "remove", "https://helmand-herald.test/feed.xml") == 0
    assert run(settings, "feeds", "remove", "https://helmand-herald.test/feed.xml") == 1
    with pytest.raises(SourceError, match="SITREP_FEEDS"):
        run(settings, "feeds", "remove", "https://env.example/rss")
    with pytest.raises(SourceError, match="not a feed URL"):
        run(settings, "feeds", "add", "ftp://nope")
    capsys.readouterr()
    assert run(settings, "feeds", "list") == 0
    assert capsys.readouterr().out.strip() == "https://env.example/rss  [env]  not polled yet"
