"""Dates through the whole pipeline: ingest warnings, ``date_source`` on dense and lexical hits, date filters
after a declared order or an upgrade changed a stored date (SQLite and Chroma, no re-embedding), stats, and
per-feed date orders."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from feedparser.datetimes import _parse_date as feedparser_date

from bot.cli.main import main
from bot.digest.scheduler import FeedPoller
from bot.feeds.registry import FeedRegistry
from retrieval.corpus import Corpus
from retrieval.documents import Article, SearchHit
from retrieval.statedb import STATE_DB_NAME, state_location
from tests.httpfixtures import LOCAL_FETCH, LocalHTTPServer, Route

from conftest import use_database

pytestmark = pytest.mark.both_engines  # every store test here runs on SQLite and on PostgreSQL

# (record id, the date as the source printed it, the UTC date sitrep must store or None, a word only its text has)
RECORDS = [
    ("slash", "2022/10/04", "2022-10-04T00:00:00+00:00", "pomegranate"),
    ("named", "Oct 4, 2022", "2022-10-04T00:00:00+00:00", "saffron"),
    ("ambiguous", "04/10/2022", None, "lapis"),
    ("solar", "۱۳۹۹/۰۷/۲۴", "2020-10-15T00:00:00+00:00", "carpet"),
    ("afghan", "۲۴ میزان ۱۳۹۹", "2020-10-15T00:00:00+00:00", "pistachio"),
    ("zoned", "4 October 2022 10:30 AM ET", "2022-10-04T14:30:00+00:00", "almond"),
    ("dateless", None, None, "apricot"),
    ("future", "2031-05-01", None, "mulberry"),
]
UNKNOWN = {rid for rid, _, expected, _ in RECORDS if expected is None}


def write_records(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for rid, raw, _, word in RECORDS:
            record = {"id": rid, "title": f"Traders report on {word}", "url": f"https://bazaar.test/{rid}",
                      "source": "Bazaar Times" if rid != "dateless" else "Undated Daily",
                      "text": f"Merchants in Herat said the {word} harvest was the largest in years. "
                              f"Prices for {word} fell at the city market as trucks arrived from the districts."}
            if raw is not None:
                record["published"] = raw
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def hit_for(corpus: Corpus, word: str, mode: str, **window: datetime) -> SearchHit | None:
    hits = corpus.search(f"{word} harvest", k=3, mode=mode, recency=False, **window)
    return next((h for h in hits if word in h.text), None)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: object, database_url: str | None) -> Path:
    monkeypatch.setenv("SITREP_DATA_DIR", str(tmp_path / "data"))
    use_database(monkeypatch, database_url)
    monkeypatch.chdir(tmp_path)
    for name in ("OPENAI_API_KEY", "SLACK_BOT_TOKEN", "CHROMA_HOST", "SITREP_FEEDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
    return tmp_path / "data"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_warns_about_each_unknown_date_and_hits_say_what_their_date_is(
        env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        corpus_factory: Callable[..., Corpus]) -> None:
    records = write_records(tmp_path / "bazaar.jsonl")
    before = datetime.now(UTC).replace(microsecond=0)
    code, out, _ = cli(capsys, "ingest", str(records), "--json")
    after = datetime.now(UTC) + timedelta(seconds=1)
    report = json.loads(out)
    assert code == 0 and report["added"] == len(RECORDS) and report["failed"] == []
    warned = {w["source"].rsplit("#", 1)[1]: w["warning"] for w in report["warnings"]}
    assert set(warned) == UNKNOWN
    assert warned["ambiguous"].startswith("publication date '04/10/2022' could be 4 October or 10 April")
    assert warned["dateless"] == "no publication date given; dated by its ingestion time instead"
    assert "after the time it was ingested" in warned["future"]

    code, out, _ = cli(capsys, "search", "--json", "pistachio harvest", "-k", "1")
    (first,) = json.loads(out)["results"]
    assert (first["published"], first["date_source"]) == ("2020-10-15T00:00:00+00:00", "published")

    corpus = corpus_factory(data_dir=env)
    for rid, _, expected, word in RECORDS:
        for mode in ("dense", "lexical"):
            hit = hit_for(corpus, word, mode)
            assert hit is not None, (rid, mode)
            if expected is None:
                # The ingestion time stands in, and says so.
                assert hit.date_source == "ingested" and hit.published is not None, (rid, mode)
                assert before <= datetime.fromisoformat(hit.published) <= after
            else:
                assert (hit.published, hit.date_source) == (expected, "published"), (rid, mode)

    code, out, _ = cli(capsys, "stats", "--json")
    stats = json.loads(out)
    assert (stats["dated_by_publication"], stats["dated_by_ingestion"]) == (len(RECORDS) - 3, 3)
    assert stats["outlets_lacking_dates"] == [{"source": "Bazaar Times", "ingested": 2, "documents": 7},
                                              {"source": "Undated Daily", "ingested": 1, "documents": 1}]
    assert stats["documents"] == len(RECORDS)  # the contract's keys are all still there
    code, out, _ = cli(capsys, "stats")
    assert "dated: 5 by publication date, 3 by ingestion time" in out
    assert "Bazaar Times: 2 of 7 without a publication date" in out


def test_a_declared_order_redates_stored_articles_without_embedding_again(
        tmp_path: Path, corpus_factory: Callable[..., Corpus], monkeypatch: pytest.MonkeyPatch) -> None:
    records = write_records(tmp_path / "bazaar.jsonl")
    corpus = corpus_factory()
    first = corpus.ingest([str(records)])
    assert first.added == len(RECORDS) and not first.redated
    stand_in = datetime.fromisoformat(hit_for(corpus, "lapis", "dense").published)  # type: ignore[union-attr,arg-type]

    monkeypatch.setattr(corpus.embedder, "embed", lambda texts: pytest.fail("re-embedded"))
    again = corpus.ingest([str(records)], date_order="dmy")
    assert (again.added, again.updated, again.unchanged) == (0, 0, len(RECORDS))
    (moved,) = again.redated
    assert moved.source.endswith("#ambiguous") and (moved.before, moved.after) == (None, "2022-10-04T00:00:00+00:00")
    assert again.to_json()["redated"] == 1

    monkeypatch.undo()
    october = {"since": datetime(2022, 10, 4, tzinfo=UTC), "until": datetime(2022, 10, 4, 23, 59, tzinfo=UTC)}
    around_ingest = {"since": stand_in - timedelta(minutes=1), "until": stand_in + timedelta(minutes=1)}
    for mode in ("dense", "lexical"):  # Chroma's metadata and the lexical index both moved
        hit = hit_for(corpus, "lapis", mode, **october)
        assert hit is not None and (hit.published, hit.date_source) == ("2022-10-04T00:00:00+00:00", "published")
        assert hit_for(corpus, "lapis", mode, **around_ingest) is None
    assert corpus.ingest([str(records)], date_order="dmy").redated == []  # nothing left to change


def _sitrep_0_1_date(raw: str | None) -> str | None:
    """What sitrep 0.1 stored: ISO, then RFC 2822, then feedparser's fallback (which fills in today's month)."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        try:
            moment = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            parsed = feedparser_date(raw)
            if parsed is None or not 1900 <= parsed.tm_year <= 2200:
                return None
            moment = datetime(*parsed[:6])
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat(timespec="seconds")


def make_old_store(corpus: Corpus, data_dir: Path) -> dict[str, str | None]:
    """Turn a store into one sitrep 0.1 wrote: its dates, and no date columns. Returns rid -> stored date."""
    conn = sqlite3.connect(data_dir / STATE_DB_NAME)
    old = {}
    for rid, raw, _, _ in RECORDS:
        doc_id, first_seen = conn.execute("SELECT doc_id, first_seen_ts FROM documents WHERE url = ?",
                                          (f"https://bazaar.test/{rid}",)).fetchone()
        old[rid] = published = _sitrep_0_1_date(raw)
        date_ts = datetime.fromisoformat(published).timestamp() if published else first_seen
        conn.execute("UPDATE documents SET published = ?, date_ts = ? WHERE doc_id = ?", (published, date_ts, doc_id))
        conn.execute("UPDATE sources SET published = ? WHERE doc_id = ?", (published, doc_id))
        conn.execute("UPDATE chunks SET date_ts = ? WHERE doc_id = ?", (date_ts, doc_id))
        ids = [r[0] for r in conn.execute("SELECT chunk_id FROM chunks WHERE doc_id = ?", (doc_id,))]
        conn.executemany("UPDATE lex_docs SET date_ts = ? WHERE chunk_id = ?", [(date_ts, i) for i in ids])
        corpus.store.update_metadata(ids, [{"date_ts": date_ts, "published": published or ""}] * len(ids))
    for column in ("published_raw", "date_order", "date_parser"):
        conn.execute(f"ALTER TABLE documents DROP COLUMN {column}")
    conn.execute("DELETE FROM meta WHERE key = 'date_parser'")
    conn.execute("DROP TABLE schema_versions")  # sitrep 0.1 kept no schema versions
    conn.commit()
    conn.close()
    return old


@pytest.fixture
def old_store(tmp_path: Path, corpus_factory: Callable[..., Corpus]) -> Iterator[tuple[Path, dict[str, str | None]]]:
    records = write_records(tmp_path / "bazaar.jsonl")
    data_dir = tmp_path / "old"
    corpus = corpus_factory(data_dir=data_dir)
    corpus.ingest([str(records)])
    old = make_old_store(corpus, data_dir)
    corpus.close()
    yield data_dir, old


@pytest.mark.sqlite_only  # an old store is a SQLite file
def test_an_old_store_gets_its_dates_read_again_on_the_next_ingest(
        old_store: tuple[Path, dict[str, str | None]], tmp_path: Path, corpus_factory: Callable[..., Corpus]) -> None:
    data_dir, old = old_store
    assert old["slash"] is not None and old["slash"].endswith("-01T00:00:00+00:00")  # sitrep 0.1's invented date
    note = tmp_path / "note.txt"
    note.write_text("The council in Kunduz said the bridge repair would finish before winter.", encoding="utf-8")

    corpus = corpus_factory(data_dir=data_dir)
    report = corpus.ingest([str(note)])
    expected = {rid: value for rid, _, value, _ in RECORDS}
    moved = {r.source.rsplit("#", 1)[1]: (r.before, r.after) for r in report.redated}
    assert moved == {rid: (old[rid], expected[rid]) for rid in expected if old[rid] != expected[rid]}
    assert {"slash", "named", "solar", "afghan", "zoned", "future"} <= set(moved)
    for rid, _, value, word in RECORDS:
        for mode in ("dense", "lexical"):
            hit = hit_for(corpus, word, mode)
            assert hit is not None and hit.date_source == ("published" if value else "ingested"), (rid, mode)
            if value:
                assert hit.published == value
                window = datetime.fromisoformat(value)
                assert hit_for(corpus, word, mode, since=window, until=window + timedelta(hours=1)) is not None
    assert corpus.ingest([str(note)]).redated == []  # read once per parser version


@pytest.mark.sqlite_only  # an old store is a SQLite file
def test_reindex_dates_repairs_an_old_store_from_the_command_line(
        old_store: tuple[Path, dict[str, str | None]], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, embedder: object) -> None:
    data_dir, _ = old_store
    monkeypatch.setenv("SITREP_DATA_DIR", str(data_dir))
    monkeypatch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
    code, out, _ = cli(capsys, "reindex", "--dates", "--json")
    result = json.loads(out)
    assert code == 0 and result["checked"] == len(RECORDS) and result["redated"] >= 6
    assert {"to": "2022-10-04T00:00:00+00:00", "date_source": "published"}.items() <= next(
        r for r in result["redated_documents"] if r["source"].endswith("#slash")).items()
    assert [w["source"].rsplit("#", 1)[1] for w in result["warnings"]] == ["future"]
    code, out, _ = cli(capsys, "reindex", "--dates")
    assert code == 0 and out.startswith(f"checked {len(RECORDS)} document date(s), changed 0")


@pytest.mark.sqlite_only  # an old store is a SQLite file
def test_an_invented_date_whose_source_is_gone_becomes_unknown(
        old_store: tuple[Path, dict[str, str | None]], tmp_path: Path, corpus_factory: Callable[..., Corpus]) -> None:
    data_dir, old = old_store
    (tmp_path / "bazaar.jsonl").unlink()  # the raw values can no longer be read
    corpus = corpus_factory(data_dir=data_dir)
    repair = corpus.repair_dates()
    moved = {r.source.rsplit("#", 1)[1]: r.after for r in repair.redated}
    # sitrep 0.1 put these on the 1st of the month it ran in; nothing can say the real day now.
    assert moved == {"slash": None}
    assert "looks invented by an older sitrep" in repair.warnings[0].warning
    # ISO and RFC dates sitrep 0.1 read right are kept, but counted as unverified.
    assert repair.unverified == sum(1 for rid, value in old.items() if value and rid != "slash")
    assert hit_for(corpus, "saffron", "lexical") is not None


def test_a_feed_declares_its_date_order(tmp_path: Path, env: Path, capsys: pytest.CaptureFixture[str],
                                        corpus_factory: Callable[..., Corpus]) -> None:
    def page(word: str) -> Route:
        return Route(f"<html><head><title>{word}</title></head><body><article><h1>{word} prices</h1><p>Traders in "
                     f"Kandahar said {word} prices rose sharply this week as supplies ran short.</p><p>The "
                     f"chamber of commerce expected {word} imports to resume soon.</p></article></body></html>")

    with LocalHTTPServer() as server:
        base = server.base_url
        for word in ("cumin", "barley", "sesame"):
            server.route(f"/{word}", page(word))
        items = "".join(f"<item><title>{w} prices</title><link>{base}/{w}</link><pubDate>{d}</pubDate></item>"
                        for w, d in (("cumin", "04/10/2022"), ("barley", "2022/10/04")))
        feed = server.route("/dmy.xml", Route(f"<rss version='2.0'><channel><title>Kandahar Trade</title>{items}"
                                              "</channel></rss>", content_type="application/rss+xml"))
        other = server.route("/plain.xml", Route(
            f"<rss version='2.0'><channel><title>Plain</title><item><title>sesame prices</title><link>{base}/sesame"
            "</link><pubDate>04/10/2022</pubDate></item></channel></rss>", content_type="application/rss+xml"))
        assert cli(capsys, "feeds", "add", feed, "--date-order", "dmy")[0] == 0
        assert cli(capsys, "feeds", "add", other)[0] == 0
        _, out, _ = cli(capsys, "feeds", "list", "--json")
        assert [(f["url"], f["date_order"]) for f in json.loads(out)["feeds"]] == [(feed, "dmy"), (other, None)]

        corpus = corpus_factory(data_dir=env)
        registry = FeedRegistry(state_location(env, corpus.config.database_url), poll_interval=timedelta(minutes=15))
        FeedPoller(registry, corpus, LOCAL_FETCH).tick(datetime.now(UTC))
    dates = {d.title.split()[0].lower(): d.published for d in corpus.documents(by="first_seen")}
    # Declared day-first; the year-first date needs no declaration (and is not feedparser's "1st of this month").
    assert dates == {"cumin": "2022-10-04T00:00:00+00:00", "barley": "2022-10-04T00:00:00+00:00", "sesame": None}


def test_article_from_a_loader_with_only_a_datetime_is_checked_too(corpus_factory: Callable[..., Corpus]) -> None:
    corpus = corpus_factory()
    future = datetime.now(UTC) + timedelta(days=30)
    report = corpus.ingest_articles([Article(text="A report about the wheat harvest in Balkh province this year.",
                                             source_key="https://balkh.test/wheat", published=future)])
    assert report.added == 1 and "after the time it was ingested" in report.warnings[0].warning
    assert corpus.documents()[0].published is None


def test_records_may_name_their_date_as_exports_do(tmp_path: Path, corpus_factory: Callable[..., Corpus]) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps([{"text": "Floods hit Baghlan province after heavy rain.", "publish_date": "2022/10/04",
                                 "id": "a"},
                                {"text": "Schools reopened in Bamyan province on Monday.", "datePublished": 1664893800,
                                 "id": "b"}]), encoding="utf-8")
    corpus = corpus_factory()
    corpus.ingest([str(path)])
    assert sorted(d.published for d in corpus.documents()) == ["2022-10-04T00:00:00+00:00",
                                                               "2022-10-04T14:30:00+00:00"]


def test_another_raw_date_for_unchanged_text_never_erases_a_known_date(
        corpus_factory: Callable[..., Corpus]) -> None:
    text = "Officials in Ghazni said the road to Kabul reopened after repairs to two bridges."
    page = Article(text=text, source_key="https://ghazni.test/road", kind="url", published_raw="2022-10-04T10:00:00Z")
    corpus = corpus_factory()
    corpus.ingest_articles([page])
    # Next poll the page cannot be fetched: the feed's summary arrives, with a date that cannot be read.
    summary = Article(text="Road reopened.", source_key=page.source_key, kind="feed", published_raw="04/10/2022")
    report = corpus.ingest_articles([summary])
    assert (report.unchanged, report.redated) == (1, [])
    assert corpus.documents()[0].published == "2022-10-04T10:00:00+00:00"
    assert corpus.ingest_articles([summary], date_order="dmy").redated == []  # another value: kept as it was

    undated = Article(text=text.replace("Ghazni", "Wardak"), source_key="https://wardak.test/road",
                      published_raw="04/10/2022")
    corpus.ingest_articles([undated])
    later = corpus.ingest_articles([Article(text=undated.text, source_key=undated.source_key,
                                            published_raw="2022-10-04T08:00:00Z")])
    assert [(r.before, r.after) for r in later.redated] == [(None, "2022-10-04T08:00:00+00:00")]

    copy = corpus.ingest_articles([Article(text=text, source_key="https://mirror.test/road", published_raw="N/A")])
    assert copy.duplicates == 1
    assert copy.warnings[0].warning == ("publication date 'N/A' has the word 'n', which is not part of a date; "
                                        "the document it duplicates keeps its own date")
