"""Figure questions: the exact figures, newest first, each dated; earlier ones beside; vague ones only alone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bot.answer.engine import Engine
from bot.answer.figures import Target, figures_line, target_of, with_figures
from bot.answer.results import Answer, Citation
from bot.settings import load_settings
from retrieval.corpus import Corpus, CorpusConfig
from retrieval.documents import SearchHit
from retrieval.embeddings import MiniLMEmbedding
from tests.fixtures_news import week_articles


def hit(text: str, published: str, source: str = "Harbour Times", url: str = "", n: int = 1, title: str = "News"
        ) -> SearchHit:
    return SearchHit(rank=n, score=0.0, chunk_id=f"c{n}", doc_id=f"d{n}", title=title, source=source,
                     url=url or f"https://example.test/{n}", published=published, text=text)


@pytest.mark.parametrize(("question", "target"), [
    ("What is the latest death toll in the Itaewon crush?", Target("event", "killed")),
    ("How many people died in the Velmora bridge collapse?", Target("event", "killed")),
    ("How many children were injured?", Target("event", "injured", frozenset({"children"}))),
    ("How many residents have been displaced by the floods?", Target("event", "displaced")),
    ("How many casualties were there?", Target("event", "casualties")),
    ("How many hot dogs did Joey Chestnut eat?", Target("count", nouns=frozenset({"hot", "dog"}))),
    ("How many months was her detention extended?", Target("count", nouns=frozenset({"month"}))),
    ("What percentage of US adults disapprove?", Target("percent")),
    ("How much did the bidder pay?", Target("money")),
    ("What was the magnitude of the quake?", Target("magnitude")),
    ("What did the mayor say about the bridge?", None),
    ("Who won the regional cup?", None),
])
def test_what_a_question_asks_for(question: str, target: Target | None) -> None:
    assert target_of(question) == target


def test_exact_figures_newest_first_and_vague_ones_left_out() -> None:
    hits = [
        hit("More than 150 people died in the Itaewon crowd crush, officials said.", "2022-10-30T08:00:00+00:00",
            "Wire A", n=1),
        hit("The number of dead climbed to 154 on Monday, the interior ministry said.", "2022-10-31T09:00:00+00:00",
            "CNN", n=2, title="Itaewon crush: death toll rises"),  # the passage names the place in its title only
        hit("Seoul mourned the 156 victims of the Itaewon crush as the toll rose to 156.",
            "2022-11-01T07:00:00+00:00", "CNN", n=3),
        hit("Divers recovered three more bodies on Tuesday in Itaewon.", "2022-11-01T08:00:00+00:00", "Wire B", n=4),
    ]
    line, shown = figures_line("What is the latest death toll in the Itaewon crush?", hits)
    assert [f.text for f in shown] == ["156", "154"]
    assert line == "Latest figures, newest first: 156 (CNN, 1 Nov 2022) {0}; 154 earlier (CNN, 31 Oct 2022) {1}."


def test_only_vague_figures_are_shown_when_no_exact_one() -> None:
    hits = [hit("More than 40 people are feared dead after the bridge fell.", "2024-03-04T15:00:00+00:00")]
    line, shown = figures_line("How many people died when the bridge fell?", hits)
    assert [f.text for f in shown] == ["More than 40"] and "More than 40 (Harbour Times, 4 Mar 2024)" in line


def test_conflicting_figures_of_one_day_are_side_by_side() -> None:
    hits = [hit("Floods displaced 1,500 residents in the valley.", "2024-03-06T05:00:00+00:00", "Coastal Wire", n=1),
            hit("About 2,000 residents were displaced in the valley, and 1,400 residents were displaced by the "
                "floods, officials said.", "2024-03-06T09:00:00+00:00", "Daily Current", n=2)]
    line, shown = figures_line("How many residents were displaced by the floods?", hits)
    assert [f.text for f in shown] == ["1,400", "1,500"]
    assert "1,500 also reported (Coastal Wire, 6 Mar 2024)" in line


def test_figures_of_another_place_are_left_out() -> None:
    hits = [hit("The toll in Velmora rose to 44.", "2024-03-06T07:00:00+00:00", n=1),
            hit("In Saren, 12 people were killed in a fire.", "2024-03-07T07:00:00+00:00", n=2)]
    _, shown = figures_line("What is the death toll in Velmora?", hits)
    assert [f.text for f in shown] == ["44"]


def test_the_figures_follow_the_answer_one_number_per_article() -> None:
    older = hit("The number of dead climbed to 154 on Monday in Itaewon.", "2022-10-31T09:00:00+00:00", "CNN", n=1)
    newer = hit("Itaewon: the toll rose to 156, officials said.", "2022-11-01T07:00:00+00:00", "CNN", n=2)
    answer = Answer(question="q", answer="The number of dead climbed to 154 on Monday in Itaewon. [1]",
                    citations=[Citation.from_hit(1, older, "The number of dead climbed to 154 on Monday in Itaewon.")])
    figured = with_figures(answer, "What is the latest death toll in Itaewon?", [older, newer])
    body, line = figured.answer.split("\n")
    assert body == answer.answer
    assert line == "Latest figures, newest first: 156 (CNN, 1 Nov 2022) [2]; 154 earlier (CNN, 31 Oct 2022) [1]."
    assert [(c.n, c.url) for c in figured.citations] == [(1, older.url), (2, newer.url)]
    assert figured.citations[1].quote == "Itaewon: the toll rose to 156, officials said."
    assert figured.as_of == "2022-11-01T07:00:00+00:00"
    assert with_figures(answer, "What did the mayor say?", [older, newer]) == answer


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedding) -> Iterator[Corpus]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
        corpus = Corpus.open(CorpusConfig(data_dir=tmp_path_factory.mktemp("figures-week")))
    corpus.ingest_articles(week_articles())
    yield corpus
    corpus.close()


def test_engine_gives_the_latest_toll_first(week: Corpus) -> None:
    engine = Engine(load_settings({"SITREP_ANSWER_MODE": "extractive"}).llm, week,
                    clock=lambda: datetime(2024, 3, 6, 12, tzinfo=UTC))
    answer = engine.ask("What is the latest death toll in the Velmora bridge collapse?")
    line = answer.answer.split("\n")[-1]
    assert re.fullmatch(r"Latest figures, newest first: 44 \(Daily Current, 6 Mar 2024\) \[\d\]; 41 earlier \(Harbour "
                        r"Times, 5 Mar 2024\) \[\d\]; 38 earlier \(Harbour Times, 4 Mar 2024\) \[\d\]\.", line), line
    assert "More than 40" not in line
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)}
    assert markers == {c.n for c in answer.citations} == set(range(1, len(answer.citations) + 1))
    assert len({c.url for c in answer.citations}) == len(answer.citations)
    for citation in answer.citations:
        chunk = next(h for h in week.document_chunks(citation.doc_id) if h.chunk_id == citation.chunk_id)
        assert citation.quote in chunk.text
    injured = engine.ask("How many people were injured in the Velmora bridge collapse?")
    # the answer quotes the only figure already: no line repeats it
    assert "At least 60 people were injured" in injured.answer and "Latest figure" not in injured.answer
    # as of 5 March the newest toll was 41
    replay = engine.at(datetime(2024, 3, 5, 12, tzinfo=UTC))
    earlier = replay.ask("How many people died in the Velmora bridge collapse?")
    assert re.search(r"\nLatest figures, newest first: 41 \(Harbour Times, 5 Mar 2024\) \[\d\]; 38 earlier",
                     earlier.answer)
    stream = engine.ask_stream("What is the latest death toll in the Velmora bridge collapse?")
    assert "".join(stream) == stream.result().answer == answer.answer
