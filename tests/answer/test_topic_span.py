"""A topic and a time span from free text, for ``/summarize`` and ``sitrep summarize``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.answer.topic_span import parse_topic_span
from bot.cli.main import main
from retrieval.corpus import Corpus
from retrieval.embeddings import MiniLMEmbedding
from retrieval.errors import QueryError

from conftest import fixture_articles

NOW = datetime(2020, 10, 15, 12, 0, tzinfo=UTC)  # a Thursday; 16:30 in Kabul
KABUL = ZoneInfo("Asia/Kabul")  # UTC+04:30
KABUL_MIDNIGHT_15 = datetime(2020, 10, 14, 19, 30, tzinfo=UTC)


@pytest.mark.parametrize(("text", "topic", "since"), [
    # The examples.
    ("Helmand this week", "Helmand", KABUL_MIDNIGHT_15 - timedelta(days=3)),  # since Monday 00:00 in Kabul
    ("last 3 days Kandahar", "Kandahar", NOW - timedelta(days=3)),
    ("Kandahar since 2020-10-14", "Kandahar", KABUL_MIDNIGHT_15 - timedelta(days=1)),
    ("24h Lashkargah", "Lashkargah", NOW - timedelta(hours=24)),
    # Spans at the start, in the middle, at the end, with the words that join them.
    ("Helmand 24h", "Helmand", NOW - timedelta(hours=24)),
    ("What happened in Helmand in the last 24 hours?", "What happened in Helmand", NOW - timedelta(hours=24)),
    ("news from Helmand over the past week", "news from Helmand", NOW - timedelta(weeks=1)),
    ("Helmand last week", "Helmand", NOW - timedelta(weeks=1)),
    ("Nawa crash past few days", "Nawa crash", NOW - timedelta(days=3)),
    ("Helmand past month", "Helmand", NOW - timedelta(days=30)),
    ("Route 1 last 2 days", "Route 1", NOW - timedelta(days=2)),
    ("Kandahar 3 days", "Kandahar", NOW - timedelta(days=3)),
    ("Helmand 3 days ago", "Helmand", NOW - timedelta(days=3)),
    ("7d", None, NOW - timedelta(days=7)),
    ("in the last 12h fighting in Nad Ali", "fighting in Nad Ali", NOW - timedelta(hours=12)),
    # Calendar words, in the team's zone.
    ("Helmand today", "Helmand", KABUL_MIDNIGHT_15),
    ("Helmand yesterday", "Helmand", KABUL_MIDNIGHT_15 - timedelta(days=1)),
    ("Kabul this morning", "Kabul", KABUL_MIDNIGHT_15),
    ("Helmand since Monday", "Helmand", KABUL_MIDNIGHT_15 - timedelta(days=3)),
    ("Helmand since Thursday", "Helmand", KABUL_MIDNIGHT_15 - timedelta(days=7)),  # today is Thursday: last week's
    ("Helmand this month", "Helmand", datetime(2020, 9, 30, 19, 30, tzinfo=UTC)),
    ("fighting in Helmand 2020-10-01", "fighting in Helmand", datetime(2020, 9, 30, 19, 30, tzinfo=UTC)),
    ("Helmand from 2020-10-10", "Helmand", datetime(2020, 10, 9, 19, 30, tzinfo=UTC)),
    ("Helmand since 2020-10-14T08:00", "Helmand", datetime(2020, 10, 14, 8, 0, tzinfo=UTC)),
    # --since keeps its WHEN meaning (UTC for a bare date).
    ("--since 2020-10-14 Nawa", "Nawa", datetime(2020, 10, 14, tzinfo=UTC)),
    # No span: the whole text is the topic, numbers included.
    ("Nawa helicopter crash", "Nawa helicopter crash", None),
    ("Helmand 2020", "Helmand 2020", None),
    ("3 days of fighting in Kandahar", "3 days of fighting in Kandahar", None),
    ("Helmand since the offensive", "Helmand since the offensive", None),
    ("", None, None),
])
def test_topic_and_span(text: str, topic: str | None, since: datetime | None) -> None:
    parsed = parse_topic_span(text, now=NOW, tz=KABUL)
    assert (parsed.topic, parsed.since) == (topic, since)


def test_calendar_words_follow_the_time_zone() -> None:
    assert parse_topic_span("today", now=NOW).since == datetime(2020, 10, 15, tzinfo=UTC)
    # Sunday 25 Oct 2020, after the clocks went back: the week began on Monday at 00:00 BST (UTC+1).
    london = parse_topic_span("this week", now=datetime(2020, 10, 25, 12, tzinfo=UTC), tz=ZoneInfo("Europe/London"))
    assert london.since == datetime(2020, 10, 18, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "message"), [
    ("Helmand 24h this week", "'24h' and 'this week' are both time spans; give one"),
    ("Helmand 2020-13-45", "since '2020-13-45' is not a date"),
    ("Helmand since 2030-01-01", "'since 2030-01-01' is in the future; nothing has been published since then"),
    ("Helmand --since soon", "--since 'soon' is not a date"),
])
def test_bad_spans_are_clear_errors(text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_topic_span(text, now=NOW, tz=KABUL)


# ---------------------------------------------------------------- the CLI and Slack use it


@pytest.fixture
def data_dir(tmp_path: Path, corpus_factory: Callable[..., Corpus], embedder: MiniLMEmbedding,
             monkeypatch: pytest.MonkeyPatch) -> Path:
    corpus_factory(data_dir=tmp_path / "data", articles=fixture_articles()).close()
    monkeypatch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
    monkeypatch.setenv("SITREP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SITREP_ANSWER_MODE", "extractive")
    monkeypatch.chdir(tmp_path)  # no stray .env
    return tmp_path / "data"


def test_cli_summarize_reads_the_span_in_the_topic(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summarize", "Helmand", "since", "2020-10-16", "--json"]) == 0
    windowed = json.loads(capsys.readouterr().out)
    assert windowed["topic"] == "Helmand"
    assert windowed["citations"] and all(c["published"] >= "2020-10-16" for c in windowed["citations"])
    assert main(["summarize", "Helmand", "--json"]) == 0
    everything = json.loads(capsys.readouterr().out)
    assert min(c["published"] for c in everything["citations"]) < "2020-10-16"


def test_cli_summarize_refuses_two_spans(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summarize", "Helmand", "since", "2020-10-16", "--since", "7d"]) == 2
    assert "Give the time span once: --since 7d and 'since 2020-10-16' in the topic." in capsys.readouterr().err
