"""Plain-text and Markdown articles: titles, outlets, dates and links from the text itself, through the loaders,
ingest, the digest and a summary."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.answer.engine import Engine
from bot.digest.build import build_digest
from bot.settings import load_settings
from retrieval.corpus import Corpus
from retrieval.documents import Article, LoadFailure
from retrieval.loaders import iter_sources
from retrieval.loaders.plaintext import lead_headline, name_title, read_metadata
from retrieval.text import content_hash
from tests.httpfixtures import LOCAL_FETCH, LocalHTTPServer, Route

# Written like the pasted wire copy users ingest: no heading, one paragraph per line, a long lead.
LEAD = ("The US peace envoy Zalmay Khalilzad on Thursday urged the Taliban to remain committed to the "
        "implementation of the US-Taliban peace agreement, warning that the rising level of violence in the "
        "country is threatening peace.")
PASTED = (f"{LEAD}\n"
          "Khalilzad said the two sides had agreed to re-set their actions and reduce the number of operations.\n"
          "Clashes between government forces and the Taliban in Lashkargah, the capital of Helmand, have entered "
          "their sixth day.\n"
          "Thousands of families have been displaced because of the fighting in recent days.\n")


def load_one(path: Path, **kwargs: object) -> Article:
    [item] = iter_sources([str(path)], **kwargs)  # type: ignore[arg-type]
    assert isinstance(item, Article), item
    return item


# ---------------------------------------------------------------- titles


def test_pasted_article_with_a_machine_file_name_gets_a_headline_from_its_lead(tmp_path: Path) -> None:
    path = tmp_path / "000_4b1c9e2f7a6d3e10.txt"
    path.write_text(PASTED, encoding="utf-8")
    article = load_one(path)
    assert article.title == ("The US peace envoy Zalmay Khalilzad on Thursday urged the Taliban to remain committed "
                             "to the implementation of the US-Taliban peace agreement")
    assert (article.source, article.published, article.text) == ("", None, PASTED.strip("\n"))


@pytest.mark.parametrize(("text", "title"), [
    ("# Two helicopters collide in Nawa\n\nNine people died.", "Two helicopters collide in Nawa"),
    ("Two helicopters collide in Nawa\n===\n\nNine people died.", "Two helicopters collide in Nawa"),
    ("Two helicopters collide in Nawa\n\nNine people died.", "Two helicopters collide in Nawa"),
    ("Two helicopters collide in Nawa\nNine people died.", "Two helicopters collide in Nawa"),
    ("**Is peace in Doha still possible?**\n\nTalks stalled.", "Is peace in Doha still possible?"),
    ("Title: Two helicopters collide in Nawa\n\nNine people died.", "Two helicopters collide in Nawa"),
    ("Headline: Nine dead in Nawa\nDate: 2020-10-14\n\nNine people died.", "Nine dead in Nawa"),
    # Not headlines: a sentence, a hard-wrapped line, a single word, the only line.
    ("Nine people died in Nawa.\nThe ministry said so.", ""),
    ("Fighting continued on the outskirts of Lashkargah on Tuesday as Taliban\nfighters attacked checkpoints.", ""),
    ("UPDATE\n\nNine people died.", ""),
    ("Helmand Clashes (Update 2)\n\nNine people died.", "Helmand Clashes (Update 2)"),
    ("Helmand Clashes (Live)\n\nNine people died.", "Helmand Clashes (Live)"),
    ("Two helicopters collide in Nawa", ""),
    ("Intro paragraph that is a sentence.\n\n## Background\n\nMore.", ""),
])
def test_title_forms(text: str, title: str) -> None:
    assert read_metadata(text).title == title


@pytest.mark.parametrize(("body", "headline"), [
    ("Nine people died when two helicopters collided in Nawa. The ministry said so.",
     "Nine people died when two helicopters collided in Nawa"),
    ("KABUL, 14 October 2020 (Reuters) - Nine people died in Nawa, officials said.",
     "Nine people died in Nawa, officials said"),
    # Long, no clause break in range: cut at a word, never after "the", with an ellipsis.
    ("Afghan army helicopters evacuating wounded soldiers from the district centre of Nawa in Helmand province "
     "collided in the early hours of Wednesday killing nine people on board.",
     "Afghan army helicopters evacuating wounded soldiers from the district centre of Nawa in Helmand province…"),
    ("Fighting continued on the outskirts of Lashkargah on Tuesday as Taliban\nfighters attacked checkpoints.\n\n"
     "More.", "Fighting continued on the outskirts of Lashkargah on Tuesday as Taliban fighters attacked checkpoints"),
])
def test_lead_headline(body: str, headline: str) -> None:
    assert lead_headline(body) == headline


@pytest.mark.parametrize(("name", "title"), [
    ("Helmand clashes update", "Helmand clashes update"),
    ("Ocha flash 2", "Ocha flash 2"),
    ("000 dea670cdc552c457", ""),
    ("story", ""),
    ("1602677400 helmand", ""),
])
def test_file_names_as_titles(name: str, title: str) -> None:
    assert name_title(name) == title


def test_a_headline_in_the_text_beats_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "helmand-notes.txt"
    path.write_text("Taliban push into Lashkargah as thousands flee\n\nFighting reached the city on Monday.\n")
    assert load_one(path).title == "Taliban push into Lashkargah as thousands flee"
    untitled = tmp_path / "helmand-notes-2.txt"
    untitled.write_text("Fighting reached the city on Monday.\n")
    assert load_one(untitled).title == "Helmand notes 2"


# ---------------------------------------------------------------- outlets, dates, links


@pytest.mark.parametrize(("text", "outlet", "published"), [
    ("Published: 14 Oct 2020 09:30 GMT\nSource: Kabul Ledger\n\nNine died.", "Kabul Ledger",
     datetime(2020, 10, 14, 9, 30, tzinfo=UTC)),
    ("Date: 2020-10-14T09:30:00+04:30\nOutlet: Frontier Wire\n\nNine died.", "Frontier Wire",
     datetime(2020, 10, 14, 5, 0, tzinfo=UTC)),
    ("**Publisher:** Relief Monitor\n**Posted:** Wed, 14 Oct 2020 09:30:00 +0000\n\nNine died.", "Relief Monitor",
     datetime(2020, 10, 14, 9, 30, tzinfo=UTC)),
    ("Updated: 2020-10-15\nPublished: 2020-10-14\n\nNine died.", "", datetime(2020, 10, 14, tzinfo=UTC)),
    ("Updated: 2020-10-15\n\nNine died.", "", datetime(2020, 10, 15, tzinfo=UTC)),
    ("---\ntitle: Nawa crash\ndate: 2020-10-14\nsource: \"Frontier Wire\"\n---\n\nNine died.", "Frontier Wire",
     datetime(2020, 10, 14, tzinfo=UTC)),
    ("KABUL, 14 October 2020 (Reuters) - Two helicopters collided in Nawa.", "Reuters",
     datetime(2020, 10, 14, tzinfo=UTC)),
    ("LASHKARGAH (AP) — Fighting continued on Tuesday.", "AP", None),
    ("BERLIN (dpa) - Talks resumed.", "dpa", None),
    ("Helmand Clashes (Live)\n\nNine died.", "", None),
    ("Lashkar Gah, Afghanistan, 2020-10-13 — Fighting continued on Tuesday.", "", datetime(2020, 10, 13, tzinfo=UTC)),
    ("# Nine dead in Nawa\n\n*Lashkargah, 14 October 2020*\n\nNine died.", "", datetime(2020, 10, 14, tzinfo=UTC)),
    ("Nine dead in Nawa\n14 October 2020\nBy Jane Doe\n\nNine died.", "", datetime(2020, 10, 14, tzinfo=UTC)),
    ("Nine dead in Nawa\n\nKABUL, 14 October 2020 (Pajhwok) - Nine died.", "Pajhwok",
     datetime(2020, 10, 14, tzinfo=UTC)),
    # Not metadata: no year, a date sitrep cannot read, a long "Source:" sentence, a dateline further down.
    ("KABUL, Oct 14 (Reuters) - Nine died.", "", None),
    ("Date: to be confirmed\n\nNine died.", "", None),
    ("Source: officials in Lashkargah said on Monday that the road to Kandahar was closed again after an attack.\n",
     "", None),
    ("Nine died in Nawa.\nKABUL, 14 October 2020 (Reuters) - A second report.", "", None),
])
def test_outlet_and_date_forms(text: str, outlet: str, published: datetime | None) -> None:
    meta = read_metadata(text)
    assert (meta.outlet, meta.published) == (outlet, published)


def test_metadata_lines_leave_the_text_and_the_story_stays() -> None:
    text = ("Taliban push into Lashkargah\nPublished: 2020-10-14\nSource: Kabul Ledger\nBy Jane Doe\n"
            "URL: https://kabul-ledger.example/lashkargah?utm_source=x\n\n"
            "KABUL, 14 October 2020 (Reuters) - Fighting reached the city.\nDate: this line is part of the story.\n")
    meta = read_metadata(text)
    assert meta.body == ("Taliban push into Lashkargah\n\nKABUL, 14 October 2020 (Reuters) - Fighting reached the "
                         "city.\nDate: this line is part of the story.")
    assert (meta.title, meta.outlet, meta.url) == ("Taliban push into Lashkargah", "Kabul Ledger",
                                                  "https://kabul-ledger.example/lashkargah")


def test_file_with_header_lines(tmp_path: Path) -> None:
    path = tmp_path / "ledger.md"
    path.write_text("# Nine dead in Nawa\n\nPublished: 2020-10-14T09:30:00Z\nSource: https://kabul-ledger.example/n\n\n"
                    "Two helicopters collided in Nawa.\n", encoding="utf-8")
    article = load_one(path)
    assert (article.title, article.source, article.url, article.published) == (
        "Nine dead in Nawa", "kabul-ledger.example", "https://kabul-ledger.example/n",
        datetime(2020, 10, 14, 9, 30, tzinfo=UTC))
    assert load_one(path, source_name="Desk").source == "Desk"  # --source-name wins


def test_only_header_lines_is_a_clear_failure(tmp_path: Path) -> None:
    path = tmp_path / "stub.txt"
    path.write_text("Title: Nine dead in Nawa\nPublished: 2020-10-14\n")
    [failure] = iter_sources([str(path)])
    assert isinstance(failure, LoadFailure)
    assert failure.error == f"{path} has header lines but no article text"


def test_plain_text_url_reads_its_header_lines() -> None:
    body = "Nine dead in Nawa\nPublished: 2020-10-14\n\nTwo helicopters collided in Nawa, officials said.\n"
    with LocalHTTPServer({"/n/123.txt": Route(body, content_type="text/plain; charset=utf-8")}) as server:
        [article] = iter_sources([server.url("/n/123.txt")], options=LOCAL_FETCH)
    assert isinstance(article, Article)
    assert (article.title, article.published, article.url) == (
        "Nine dead in Nawa", datetime(2020, 10, 14, tzinfo=UTC), server.url("/n/123.txt"))
    assert article.source == "127.0.0.1"  # the site, as for any fetched page without an outlet


# ---------------------------------------------------------------- through ingest, the digest and a summary


def test_text_file_through_ingest_digest_and_summary(tmp_path: Path, corpus_factory: Callable[..., Corpus]
                                                     ) -> None:
    path = tmp_path / "000_4b1c9e2f7a6d3e10.txt"
    path.write_text("KABUL, 15 October 2020 (Pajhwok) - " + PASTED, encoding="utf-8")
    corpus = corpus_factory()
    report = corpus.ingest([str(path)])
    assert report.added == 1 and not report.failed
    engine = Engine(load_settings({"SITREP_ANSWER_MODE": "extractive"}).llm, corpus)
    digest = build_digest(corpus, engine.summarize_passages, since=datetime(2020, 10, 15, tzinfo=UTC),
                          until=datetime(2020, 10, 16, tzinfo=UTC), timezone="UTC")
    [story] = digest.stories
    assert story.lines and all(re.match(r"- 15 Oct 2020 — .+ (\[\d+\])+$", line) for line in story.lines)
    for citation in digest.citations:
        assert citation.title.startswith("The US peace envoy Zalmay Khalilzad")
        assert (citation.source, citation.published) == ("Pajhwok", "2020-10-15T00:00:00+00:00")
    summary = engine.summarize("Khalilzad")
    assert summary.citations and "unknown date" not in summary.answer
    assert {c.source for c in summary.citations} == {"Pajhwok"}


def test_content_hash_folds_case_quotes_dashes_and_spaces_and_never_changes() -> None:
    # Stored documents are keyed by this hash: a different value for the same text would ingest every
    # stored article again as a new version.
    curly = "“Nine killed” — Helmand’s ‘Nawa’ crash\n\nOfficials   said\tTHE toll – 9 – may rise."
    plain = "\"nine killed\" - helmand's 'nawa' crash officials said the toll - 9 - may rise."
    assert content_hash(curly) == content_hash(plain) == (
        "441e348293ce5764ec2f07ab05370d72513612e9b0039bfce97974bab72c4329")
    assert content_hash(curly) != content_hash(curly.replace("9", "19"))
