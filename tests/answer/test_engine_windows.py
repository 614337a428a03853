"""Reading questions: time windows on the engine's clock, summary requests, synonyms in the relevance gate,
abstention messages, and the question embedded once per search."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

import bot.answer.extractive
import bot.answer.support
import bot.answer.words
import bot.digest.build
from bot.answer.engine import Engine
from bot.answer.rewrite import parse_question, summary_topic
from bot.answer.words import concepts
from bot.settings import Settings
from retrieval.corpus import Corpus, CorpusConfig
from retrieval.documents import Article
from retrieval.embeddings import MiniLMEmbedding
from tests.answer.test_engine_llm import source_id
from tests.answer.test_extractive import assert_markers_map
from tests.conftest import fixture_articles
from tests.openai_server import OpenAIServer, Reply, Request

from conftest import FIXTURES

NOW = datetime(2020, 10, 16, 12, 0, tzinfo=UTC)  # Friday; the newest fixture article is from 07:00 that day
NAWA_MD = FIXTURES / "loaders" / "mixed" / "nawa-crash.md"


@contextmanager
def built_corpus(data_dir: Path, embedder: MiniLMEmbedding, articles: Sequence[Article] = (),
                 files: Sequence[Path] = ()) -> Iterator[Corpus]:
    """A corpus built once per module (the engine only reads it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
        corpus = Corpus.open(CorpusConfig(data_dir=data_dir))
    try:
        if articles:
            corpus.ingest_articles(list(articles))
        if files:
            corpus.ingest([str(f) for f in files])
        yield corpus
    finally:
        corpus.close()


@pytest.fixture(scope="module")
def news(tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedding) -> Iterator[Corpus]:
    with built_corpus(tmp_path_factory.mktemp("news"), embedder, fixture_articles()) as corpus:
        yield corpus


@pytest.fixture(scope="module")
def nawa(tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedding) -> Iterator[Corpus]:
    """Only the undated Markdown report without an outlet: "... collided in Nawa ..., killing nine people"."""
    with built_corpus(tmp_path_factory.mktemp("nawa"), embedder, files=[NAWA_MD]) as corpus:
        yield corpus


def engine_at(corpus: Corpus, tmp_path: Path, now: datetime = NOW, **settings: object) -> Engine:
    values: dict[str, object] = {"data_dir": tmp_path, "answer_mode": "extractive", **settings}
    return Engine(Settings(**values).llm, corpus, clock=lambda: now)  # type: ignore[arg-type]


# -- reading the question ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("question", "text", "since", "until", "label"),
    [
        ("What happened in the last 24 hours?", "What happened?", NOW - timedelta(hours=24), None,
         "in the last 24 hours"),
        ("How many families fled Lashkargah over the past 3 days?", "How many families fled Lashkargah?",
         NOW - timedelta(days=3), None, "in the past 3 days"),
        ("Since yesterday, what did NATO say?", "what did NATO say?", datetime(2020, 10, 15, tzinfo=UTC), None,
         "since yesterday"),
        ("What happened yesterday?", "What happened?", datetime(2020, 10, 15, tzinfo=UTC),
         datetime(2020, 10, 16, tzinfo=UTC), "yesterday"),
        ("Casualties today, with sources", "Casualties", datetime(2020, 10, 16, tzinfo=UTC), None, "today"),
        ("Fighting in Nad Ali this week", "Fighting in Nad Ali", datetime(2020, 10, 12, tzinfo=UTC), None,
         "this week"),
        ("Any news in the last hour?", "Any news?", NOW - timedelta(hours=1), None, "in the last hour"),
        ("What is today's death toll?", "What is death toll?", datetime(2020, 10, 16, tzinfo=UTC), None, "today"),
        ("the last two weeks in Helmand", "in Helmand", NOW - timedelta(weeks=2), None, "in the last two weeks"),
    ],
)
def test_time_phrases_become_a_window_and_leave_the_query(question: str, text: str, since: datetime,
                                                          until: datetime | None, label: str) -> None:
    query, window = parse_question(question, NOW)
    assert query == text
    assert window is not None and (window.since, window.until, window.label) == (since, until, label)


@pytest.mark.parametrize("question", ["What was the last straw for the talks?", "The past decade of war in Helmand",
                                      "How many people died in the crash?", "Who spoke in the last days of the talks?",
                                      "Fighting in the last 99999999999 days"])
def test_questions_without_a_time_phrase_are_left_alone(question: str) -> None:
    assert parse_question(question, NOW) == (question, None)


@pytest.mark.parametrize(
    ("question", "topic"),
    [("Summarize the situation in Helmand", "Helmand"), ("What's the situation in Lashkargah?", "Lashkargah"),
     ("What happened?", ""), ("What happened in Nawa?", "Nawa"), ("Give me an update on the helicopter crash",
                                                                  "the helicopter crash"),
     ("Can you give me a quick overview of the fighting around Lashkargah?", "the fighting around Lashkargah"),
     ("What's the latest?", ""), ("What happened to the helicopters?", None),
     ("What happened at the hospital in Nawa?", None), ("What is the latest death toll?", None),
     ("How many people died?", None)],
)
def test_summary_requests_and_their_topic(question: str, topic: str | None) -> None:
    assert summary_topic(question) == topic


# -- the engine on the suggested prompts ------------------------------------------------------------------

# A story of a summary without a topic: "- **Title** (2 articles, 2 outlets; 16 Oct 2020): sentence [1]"
STORY_LINE = r"- \*\*.+\*\* \(\d+ articles?, \d+ outlets?; 1\d Oct 2020\): .+\[\d+\]$"


def test_what_happened_in_the_last_24_hours_summarizes_that_window(news: Corpus, tmp_path: Path) -> None:
    question = "What happened in the last 24 hours?"
    answer = engine_at(news, tmp_path).ask(question)
    assert not answer.abstained and answer.question == question and answer.topic is None
    assert "question" in answer.to_json() and "topic" not in answer.to_json()
    cutoff = NOW - timedelta(hours=24)
    assert answer.citations and all(datetime.fromisoformat(c.published or "") >= cutoff for c in answer.citations)
    assert {c.source for c in answer.citations} == {"Relief Monitor", "Kabul Ledger"}
    head, *stories = answer.answer.split("\n")
    assert re.match(r"(?:All \d stories|The \d biggest of \d stories) published in the last 24 hours, by articles and "
                    r"outlets: \d of \d articles covered\.$", head), head
    assert stories and all(re.match(STORY_LINE, line) for line in stories)
    assert_markers_map(answer)


def test_an_empty_window_is_said_and_the_newest_coverage_before_it_answers(news: Corpus, tmp_path: Path) -> None:
    later = engine_at(news, tmp_path, now=datetime(2020, 10, 20, 9, tzinfo=UTC))
    answer = later.ask("What happened in the last 24 hours?")
    assert not answer.abstained and answer.citations
    first, *rest = answer.answer.split("\n")
    assert first == "Nothing was published in the last 24 hours. The newest coverage, from 16 Oct 2020:"
    assert rest[0].startswith("All ") and rest[1:] and all(re.match(STORY_LINE, line) for line in rest[1:])
    assert_markers_map(answer)
    # NATO spoke on the 15th: covered since yesterday on the 16th; on the 17th the window has other news only,
    # so the answer says so and comes from the coverage before it, dated.
    question = "What did NATO say since yesterday?"
    on_time = engine_at(news, tmp_path).ask(question)
    assert not on_time.abstained and "NATO remains committed" in on_time.answer
    assert not on_time.answer.startswith("Nothing")
    assert [c.published for c in on_time.citations] == ["2020-10-15T18:00:00+00:00"]
    too_late = engine_at(news, tmp_path, now=datetime(2020, 10, 17, 12, tzinfo=UTC)).ask(question)
    assert not too_late.abstained and "NATO remains committed" in too_late.answer
    assert too_late.answer.startswith("Nothing published since yesterday covers this. The newest coverage, from ")
    # Nothing relevant at all, in the window or before it: still a plain abstention.
    off_topic = later.ask("Who won the 2018 World Cup this week?")
    assert off_topic.abstained and off_topic.citations == []


def test_summarize_the_situation_in_helmand(news: Corpus, tmp_path: Path) -> None:
    question = "Summarize the situation in Helmand"
    answer = engine_at(news, tmp_path).ask(question)
    assert not answer.abstained and answer.question == question and answer.topic is None
    assert "Helmand" in answer.answer and len(answer.answer.split("\n")) >= 2
    assert all(line.startswith("- 2020-10-1") for line in answer.answer.split("\n"))
    assert_markers_map(answer)


def test_latest_casualty_figures_come_with_their_sources(news: Corpus, tmp_path: Path) -> None:
    answer = engine_at(news, tmp_path).ask("Latest casualty figures, with sources")
    assert not answer.abstained
    assert "nine" in answer.answer and "fifteen" in answer.answer  # both tolls, each with its outlet
    assert {"Kabul Ledger", "Frontier Wire"} <= {c.source for c in answer.citations}
    assert "had been killed and injured" not in answer.answer  # a casualty sentence without a count
    assert_markers_map(answer)


def test_summary_of_a_topic_since_a_date(news: Corpus, tmp_path: Path) -> None:
    engine = engine_at(news, tmp_path)
    everything = engine.summarize("Helmand")
    windowed = engine.summarize("Helmand", since=datetime(2020, 10, 1, tzinfo=UTC))
    assert not everything.abstained and not windowed.abstained
    assert [c.chunk_id for c in windowed.citations] == [c.chunk_id for c in everything.citations]


def test_a_routed_summary_streams_through_the_model(news: Corpus, tmp_path: Path) -> None:
    def summary(request: Request) -> str:
        return f"- 2020-10-16: More than 5,600 families have fled Lashkargah [{source_id(request, 'Relief Monitor')}]."

    with OpenAIServer() as server:
        server.push(Reply(respond=summary, chunk_size=9))
        engine = engine_at(news, tmp_path, openai_api_key="sk-test", openai_base_url=server.base_url,
                           llm_model="test-model", answer_mode="llm", llm_max_retries=0)
        stream = engine.ask_stream("What happened today?")
        deltas = list(stream)
        (request,) = server.chat_requests()
    answer = stream.result()
    assert "Write a brief situation summary of the 1 biggest stories today from the sources" in request.content("user")
    assert "".join(deltas) == answer.answer == (
        "All 1 story published today, by articles and outlets: 1 of 1 article covered.\n"
        "- 2020-10-16: More than 5,600 families have fled Lashkargah [1].")
    assert answer.question == "What happened today?" and answer.topic is None and answer.mode == "llm"
    assert [c.source for c in answer.citations] == ["Relief Monitor"]


# -- synonyms in the relevance gate -----------------------------------------------------------------------

def test_inflections_and_news_synonyms_share_a_concept() -> None:
    assert concepts("died") == concepts("killing") == concepts("deaths") == concepts("dead") == {"die"}
    assert concepts("crash") == concepts("collided") == concepts("collision") == {"crash"}
    assert concepts("wounded") == concepts("injured") == {"wound"}
    assert concepts("fled") == concepts("displaced") == {"flee"}
    assert concepts("nine killed", broader=True) == {"9", "die", "casualty"}


def test_died_is_answered_by_killing(nawa: Corpus, tmp_path: Path) -> None:
    answer = engine_at(nawa, tmp_path).ask("How many people died in the helicopter crash?")
    assert not answer.abstained
    assert "killing nine people" in answer.answer and answer.citations
    assert not answer.answer.startswith("#")  # a Markdown heading is quoted without its marker
    assert all(c.quote in NAWA_MD.read_text(encoding="utf-8") for c in answer.citations)


@pytest.mark.parametrize("question", ["What is the capital of Peru?", "Who won the 2018 World Cup?",
                                      "What is the weather in Kabul?", "How many people died in the earthquake?"])
def test_off_topic_questions_still_abstain(nawa: Corpus, tmp_path: Path, question: str) -> None:
    assert engine_at(nawa, tmp_path).ask(question).abstained


# -- abstention messages ---------------------------------------------------------------------------------

# A note with no date anywhere and no outlet: the ingestion time stands in for its date.
UNDATED_NOTE = Article(
    text="Field teams reported that two army helicopters collided in Nawa district, killing nine people on board.",
    source_key="notes/undated-field-note", title="Field note from Nawa",
)


def test_abstention_without_dates_or_outlets_reads_well(tmp_path: Path, embedder: MiniLMEmbedding) -> None:
    with built_corpus(tmp_path / "data", embedder, [UNDATED_NOTE]) as corpus:
        answer = engine_at(corpus, tmp_path, now=datetime.now(UTC)).ask("What is the capital of Peru?")
    assert answer.answer == (
        "The ingested articles don't cover “What is the capital of Peru?”; "
        "none of the ingested articles carries a publication date."
    )


def test_abstention_names_a_dateline_date(nawa: Corpus, tmp_path: Path) -> None:
    # The Markdown report's dateline ("Lashkargah, 14 October 2020") is its publication date.
    answer = engine_at(nawa, tmp_path).ask("What is the capital of Peru?")
    assert answer.answer.endswith("; the newest article is from 2020-10-14.")


def test_abstention_names_the_newest_dated_article(tmp_path: Path, embedder: MiniLMEmbedding) -> None:
    with built_corpus(tmp_path / "data", embedder, [*fixture_articles(), UNDATED_NOTE], files=[NAWA_MD]) as corpus:
        answer = engine_at(corpus, tmp_path, now=datetime.now(UTC)).ask("What is the capital of Peru?")
    assert answer.answer.endswith("; the newest dated article is from 2020-10-16 (Relief Monitor).")


# -- sharing and cost ------------------------------------------------------------------------------------

def test_number_words_are_defined_once() -> None:
    words = bot.answer.words.NUMBER_WORDS
    assert bot.digest.build.NUMBER_WORDS is bot.answer.extractive.NUMBER_WORDS is words
    assert bot.answer.support.NUMBER_WORDS is words
    assert bot.answer.words.NUMBER_WORDS["nineteen"] == 19
    assert bot.answer.extractive.figures("nineteen civilians were wounded") == {"19"}


def test_the_question_is_embedded_once(news: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    embedded: list[str] = []
    model = news.embedder

    class Recording:
        def embed(self, texts: Sequence[str]) -> np.ndarray:
            embedded.extend(texts)
            return model.embed(texts)  # type: ignore[attr-defined,no-any-return]

    monkeypatch.setattr(news, "embedder", Recording())
    question = "How many families fled Lashkargah?"
    answer = engine_at(news, tmp_path).ask(question)
    assert not answer.abstained and "5,600" in answer.answer
    assert embedded.count(question) == 1
