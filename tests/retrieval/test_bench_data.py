"""The RealTime QA loader behind bench/bench_retrieval.py, on a one-week fixture in tests/fixtures/realtimeqa/."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.bench_retrieval import quality
from bench.realtimeqa import find_weeks, load_benchmark, outlet
from retrieval.corpus import Corpus
from retrieval.errors import SourceError

from conftest import FIXTURES

FIXTURE = FIXTURES / "realtimeqa"
NAWA = "https://kabul-ledger.test/2020/10/14/nawa-helicopters"
NATO = "https://www.frontier-wire.test/nato-taliban-violence"
TOLL = "https://www.frontier-wire.test/helicopter-toll-disputed"
DOHA = "https://relief-monitor.test/doha-talks-explainer"


def test_articles_are_one_per_url_with_the_best_text_and_merged_metadata() -> None:
    bench = load_benchmark([FIXTURE])
    assert bench.weeks == ["20201016"]
    by_url = {a.url: a for a in bench.articles}
    # Records without text anywhere (the gold "update" link, the Lashkargah story) are not articles.
    assert set(by_url) == {NAWA, NATO, TOLL, DOHA}
    nawa = by_url[NAWA]
    # The gold text beats the search result's ad-wall scrape of the same URL; the title comes from the latter.
    assert nawa.text.startswith("Two Afghan National Army MI-17 helicopters")
    assert nawa.title == "Two army helicopters crash in Helmand's Nawa district - Kabul Ledger"
    assert nawa.published == datetime(2020, 10, 14, tzinfo=UTC)
    assert nawa.source == "kabul-ledger.test" and nawa.source_key == NAWA
    # Two search results for one URL: the longer text wins, the first title found is kept.
    assert "between eight and fifteen" in by_url[TOLL].text
    assert by_url[TOLL].title == "Helicopter collision toll disputed"
    assert by_url[NATO].title == "" and by_url[NATO].source == "frontier-wire.test"
    assert by_url[DOHA].published is None


def test_questions_need_a_gold_article_with_text() -> None:
    bench = load_benchmark([FIXTURE])
    by_id = {q.question_id: q for q in bench.questions}
    assert set(by_id) == {"20201016_0", "20201016_1"}
    assert bench.skipped_questions == 1  # the Lashkargah question's gold article has only whitespace
    assert by_id["20201016_0"].gold_urls == {NAWA, NAWA + "-update"}
    assert by_id["20201016_1"].question.startswith("Which NATO official")
    assert by_id["20201016_1"].question_date == datetime(2020, 10, 16, tzinfo=UTC)


def test_weeks_from_several_folders_and_week_selection(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    for kind in ("qa", "gold", "gcs"):
        shutil.copy(FIXTURE / f"20201016_{kind}.jsonl", other / f"20201023_{kind}.jsonl")
    both = load_benchmark([FIXTURE, other])
    assert both.weeks == ["20201016", "20201023"]
    assert len(both.articles) == 4  # still one article per URL
    assert len(both.questions) == 4
    assert load_benchmark([FIXTURE, other], weeks=["20201023"]).weeks == ["20201023"]
    with pytest.raises(SourceError, match="20201030"):
        load_benchmark([FIXTURE], weeks=["20201030"])


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a folder"):
        find_weeks(tmp_path / "missing")
    with pytest.raises(SourceError, match="No RealTime QA week files"):
        load_benchmark([tmp_path])
    shutil.copy(FIXTURE / "20201016_qa.jsonl", tmp_path)
    with pytest.raises(SourceError, match=r"20201016_gold\.jsonl is missing"):
        load_benchmark([tmp_path])
    shutil.copy(FIXTURE / "20201016_gcs.jsonl", tmp_path)
    lines = (FIXTURE / "20201016_gold.jsonl").read_text().splitlines()
    (tmp_path / "20201016_gold.jsonl").write_text("\n".join([lines[0], "{broken", *lines[1:]]))
    with pytest.raises(SourceError, match="line 2"):
        load_benchmark([tmp_path])


def test_outlet_is_the_domain() -> None:
    assert outlet("https://www.cnn.com/2022/06/12/x.html") == "cnn.com"
    assert outlet("https://e.newsletters.cnn.com/a") == "e.newsletters.cnn.com"
    assert outlet("not a url") == ""


def test_benchmark_questions_find_their_gold_articles(corpus_factory: Callable[..., Corpus]) -> None:
    bench = load_benchmark([FIXTURE])
    corpus = corpus_factory(articles=bench.articles)
    results = quality(corpus, bench)
    assert set(results) == {"dense", "lexical", "rrf", "hybrid"}
    for scores in results.values():
        assert scores["n"] == 2
    assert results["hybrid"]["hits@1"] == 1.0
