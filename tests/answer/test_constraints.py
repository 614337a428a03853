"""The names, places and times a question gives must be in the evidence together (bot/answer/constraints.py), in
both answer modes; otherwise the reply says the sources don't cover the combination, with what they say
about each."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.bench_conversations import DEFAULT_DATA, articles, run_questions
from bot.answer.constraints import Constraint, check, covers, required
from bot.answer.engine import Engine
from bot.answer.llm import LLMClient
from bot.settings import Settings
from retrieval.corpus import Corpus
from retrieval.documents import SearchHit
from retrieval.embeddings import MiniLMEmbedding
from tests.answer.test_engine_windows import built_corpus
from tests.openai_server import OpenAIServer, Reply

HOLDOUT = DEFAULT_DATA.parent / "holdout.json"


def hit(text: str, title: str = "", published: str | None = "2022-10-31T00:00:00+00:00", n: int = 0) -> SearchHit:
    return SearchHit(rank=n, score=1.0, chunk_id=f"c{n}", doc_id=f"d{n}", title=title, source="Test",
                     url=f"https://t.test/{n}", published=published, text=text)


# -- reading and matching constraints -------------------------------------------------------------------------

def test_required_reads_names_possessives_titles_and_times() -> None:
    assert [c.text for c in required("What did Rishi Sunak say about Itaewon?")] == ["Rishi Sunak", "Itaewon"]
    assert [c.text for c in required("What is Sunak's government preparing?")] == ["Sunak"]
    assert [c.text for c in required("What did President Yoon say?")] == ["President Yoon"]
    assert required("what did the President say?") == []  # a title alone is a role, not a name
    assert [(c.text, c.what) for c in required("How many died in Itaewon in 2022?")] == [
        ("Itaewon", "name"), ("2022", "year")]
    assert required("what did rishi sunak say?") == []  # no capitals to read names from: nothing is required


@pytest.mark.parametrize(
    ("name", "text", "title", "expected"),
    [
        ("UN", "The United Nations expressed its condolences.", "", True),
        ("UN", "UNAMA said civilians had been killed.", "", True),
        ("United Nations", "The UN said aid was arriving.", "", True),
        ("UK", "Food prices in Britain rose at the fastest rate since 1980.", "", True),
        ("US", "Core inflation in the United States rose to 6.6%.", "", True),
        ("President Yoon", "Yoon Suk-yeol declared a week of mourning.", "", True),
        ("Rishi Sunak", "Sunak said there was no prosperity without climate action.", "", True),
        ("Joe Biden", "Hunter Biden's laptop was in the news again.", "", False),
        ("Sunak", "Rishi Sunak's government is preparing a budget.", "", True),
        ("itaewon", "The ITAEWON district was crowded.", "", True),
        ("Itaewon", "The toll rose to 156.", "Itaewon toll reaches 156", True),
        ("Itaewon", "US consumer prices rose 8.2%.", "US inflation", False),
    ],
)
def test_covers_allows_the_ways_news_names_the_same_thing(name: str, text: str, title: str, expected: bool) -> None:
    assert covers(Constraint(name, "name"), hit(text, title)) is expected


def test_a_year_is_covered_by_the_text_or_the_articles_date() -> None:
    year = Constraint("2021", "year", year=2021)
    assert covers(year, hit("In 2021 the toll was lower.", published="2022-10-31"))
    assert covers(year, hit("The toll was lower.", published="2021-05-01T00:00:00+00:00"))
    assert not covers(year, hit("The toll was lower.", published="2022-10-31T00:00:00+00:00"))


def test_check_keeps_only_passages_naming_everything_together() -> None:
    both = hit("Sunak sent condolences to Seoul after the Itaewon crush.", n=1)
    sunak = hit("Rishi Sunak will consider attending Cop27.", n=2)
    itaewon = hit("The Itaewon toll rose to 156.", n=3)
    result = check("What did Rishi Sunak say about Itaewon?", [sunak, both, itaewon])
    assert result.together == [both] and not result.combination_missing
    result = check("What did Rishi Sunak say about Itaewon?", [sunak, itaewon])
    assert result.together == [] and result.combination_missing
    assert result.each == {"Rishi Sunak": [sunak], "Itaewon": [itaewon]}


# -- the engine on the look-alike store ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedding) -> Iterator[Corpus]:
    data = json.loads(DEFAULT_DATA.read_text(encoding="utf-8"))
    holdout = json.loads(HOLDOUT.read_text(encoding="utf-8"))
    with built_corpus(tmp_path_factory.mktemp("constraints"), embedder,
                      articles=[*articles(data), *articles(holdout)]) as corpus:
        yield corpus


@pytest.mark.parametrize("path", [DEFAULT_DATA, HOLDOUT], ids=["tuning", "holdout"])
def test_multi_topic_questions_name_no_one_they_did_not_ask_about(store: Corpus, tmp_path: Path, path: Path) -> None:
    engine = Engine(Settings(data_dir=tmp_path, answer_mode="extractive").llm, store)
    results = run_questions(engine, json.loads(path.read_text(encoding="utf-8")))
    assert [(r.ask, r.wrong_names) for r in results if r.wrong_names] == []
    assert [r.ask for r in results if r.expect == "answer" and r.got != "answer"] == []  # no false abstention
    assert [r.ask for r in results if r.expect == "gap" and r.got != "gap"] == []


def test_the_sources_not_covering_a_combination_is_said_with_what_they_say_about_each(
        store: Corpus, tmp_path: Path) -> None:
    answer = Engine(Settings(data_dir=tmp_path, answer_mode="extractive").llm, store).ask(
        "What did Rishi Sunak say about Itaewon?")
    first, *each = answer.answer.splitlines()
    assert first == "The ingested articles don't cover Rishi Sunak and Itaewon together. What they say about each:"
    assert re.fullmatch(r"• Rishi Sunak: .*Sunak.* \[1\]", each[0])
    assert re.fullmatch(r"• Itaewon: .*Itaewon.* \[2\]", each[1])
    assert not answer.abstained and [c.n for c in answer.citations] == [1, 2]
    assert "Sunak" in answer.citations[0].quote and "Itaewon" in answer.citations[1].quote


def test_llm_mode_sends_only_passages_naming_everything_and_skips_the_model_for_a_missing_combination(
        store: Corpus, tmp_path: Path) -> None:
    with OpenAIServer() as server:
        settings = Settings(data_dir=tmp_path, openai_api_key="sk-test", openai_base_url=server.base_url,
                            llm_model="test-model", answer_mode="llm", llm_max_retries=0)
        engine = Engine(settings.llm, store, llm=LLMClient(settings.llm))
        server.push(Reply(respond=lambda request: "Inflation rose to 10.1% [{}].".format(
            re.search(r'<source id="(\d+)"[^>]*>\n[^<]*10\.1%', request.content("user")).group(1))))
        answer = engine.ask("What is the inflation rate in the UK?")
        gap = engine.ask("What did Marcos say about Itaewon?")
        requests = server.chat_requests()
    assert answer.mode == "llm" and "10.1%" in answer.answer
    (request,) = requests  # the combination nobody covers never reached the model
    sources = request.content("user")
    assert "10.1%" in sources and "8.2%" not in sources and "6.6%" not in sources  # no US passage sent
    assert gap.answer.startswith("The ingested articles don't cover Marcos and Itaewon together.")
