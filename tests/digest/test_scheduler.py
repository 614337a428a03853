"""The jobs of ``sitrep serve`` driven by a controllable clock: digest timing, DST, catch-up, crashes,
concurrent runners, feed polling against a local HTTP server, and the APScheduler wiring."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from slack_sdk import WebClient

from bot.answer.engine import Engine
from bot.digest.delivery import DeliveryOutcome, DeliveryStore, DigestService
from bot.digest.schedule import DigestSchedule
from bot.digest.scheduler import DigestRunner, FeedPoller, start_scheduler
from bot.feeds.registry import FeedRegistry
from bot.settings import load_settings
from retrieval.corpus import Corpus, CorpusConfig
from retrieval.embeddings import MiniLMEmbedding

from conftest import fixture_articles
from httpfixtures import LOCAL_FETCH, LocalHTTPServer, Route, closed_port_url
from slack_api_server import SlackApiServer

LONDON = ZoneInfo("Europe/London")
SCHEDULE = DigestSchedule("C1", time(8, 0), "Europe/London")
Kind = DeliveryOutcome.Kind


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)  # type: ignore[misc]


@pytest.fixture(scope="module")
def news(tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedding) -> Iterator[Corpus]:
    """The fixture articles (published 14-16 Oct 2020); read-only, shared by this module's tests."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
        corpus = Corpus.open(CorpusConfig(data_dir=tmp_path_factory.mktemp("scheduler-news")))
    corpus.ingest_articles(fixture_articles())
    yield corpus
    corpus.close()


@pytest.fixture
def slack() -> Iterator[SlackApiServer]:
    with SlackApiServer() as server:
        yield server


def _engine(corpus: Corpus) -> Engine:
    return Engine(load_settings({"SITREP_ANSWER_MODE": "extractive"}).llm, corpus)


def _runner(tmp_path: Path | str, corpus: Corpus, slack: SlackApiServer, *, max_late_hours: float = 6.0,
            post_empty: bool = True, schedules: list[DigestSchedule] | None = None) -> DigestRunner:
    """A runner on ``tmp_path``'s state.db, or on the state database at a ``postgresql://`` URL."""
    engine = _engine(corpus)
    location = tmp_path if isinstance(tmp_path, str) else tmp_path / "state.db"
    service = DigestService(DeliveryStore(location), corpus, engine.summarize_passages, engine.mode)
    return DigestRunner(service, WebClient(token=slack.token, base_url=slack.url), schedules or [SCHEDULE],
                        max_late=timedelta(hours=max_late_hours), post_empty=post_empty)


def _run_clock(runner: DigestRunner, start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """Tick from ``start`` to ``end``; the times at which a digest was posted."""
    posted, now = [], start
    while now <= end:
        if any(o.kind is Kind.POSTED for o in runner.tick(now)):
            posted.append(now)
        now += step
    return posted


def test_fires_at_local_time_every_day_across_the_dst_change(tmp_path: Path, news: Corpus,
                                                             slack: SlackApiServer) -> None:
    # London leaves BST on Sunday 25 Oct 2020: 08:00 local is 07:00 UTC before and 08:00 UTC after.
    runner = _runner(tmp_path, news, slack)
    start = london(2020, 10, 23, 7, 50)
    posted = _run_clock(runner, start, start + timedelta(days=4), timedelta(minutes=5))
    assert [p.astimezone(UTC).strftime("%d %H:%M") for p in posted] == ["23 07:00", "24 07:00", "25 08:00",
                                                                        "26 08:00"]
    assert {p.astimezone(LONDON).strftime("%H:%M") for p in posted} == {"08:00"}
    assert len(slack.calls_to("chat.postMessage")) == 4


def test_digest_reaching_slack_has_citations_and_dates(tmp_path: Path, news: Corpus,
                                                       slack: SlackApiServer) -> None:
    runner = _runner(tmp_path, news, slack)
    (outcome,) = runner.tick(london(2020, 10, 16, 8, 0))
    assert outcome.kind is Kind.POSTED
    (call,) = slack.calls_to("chat.postMessage")
    texts = [b["text"]["text"] for b in call.params["blocks"] if isinstance(b.get("text"), dict)]
    body, sources = texts[0], texts[-1]
    assert body.startswith("*Daily digest — Fri 16 Oct 2020*")
    assert "2 new articles from 2 outlets since Thu 15 Oct 2020, 08:00 BST" in body
    assert "• 16 Oct 2020 — " in body and "• 15 Oct 2020 — " in body and "[1]" in body and "[2]" in body
    assert sources.startswith("*Sources*\n[1] <https://")
    assert "Relief Monitor, 16 Oct 2020" in sources and "Kabul Ledger, 15 Oct 2020" in sources
    record = runner.service.store.get("C1", "2020-10-16")
    assert record is not None and record.ts == call_ts(slack)


def call_ts(slack: SlackApiServer) -> str:
    (message,) = [m for msgs in slack._threads.values() for m in msgs]
    return str(message["ts"])


def test_catch_up_after_downtime_and_too_late(tmp_path: Path, news: Corpus, slack: SlackApiServer) -> None:
    runner = _runner(tmp_path, news, slack, max_late_hours=6)
    # Down over 08:00, back at 13:30: 5.5 hours late, within the limit, so it posts on start-up.
    (outcome,) = runner.tick(london(2020, 10, 16, 13, 30))
    assert outcome.kind is Kind.POSTED
    assert runner.tick(london(2020, 10, 16, 13, 31)) == []

    late = _runner(tmp_path / "other", news, slack, max_late_hours=6, schedules=[DigestSchedule("C2", time(8, 0),
                                                                                              "Europe/London")])
    # Back at 14:01: more than 6 hours late, so that day's digest is skipped; the next day's posts on time.
    posted = _run_clock(late, london(2020, 10, 16, 14, 1), london(2020, 10, 17, 9, 0), timedelta(minutes=10))
    assert [p.strftime("%d %H:%M") for p in posted] == ["17 08:01"]


def test_restart_after_crash_mid_post_does_not_post_twice(tmp_path: Path, news: Corpus,
                                                          slack: SlackApiServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    first = _runner(tmp_path, news, slack)

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("SIGKILL between the post and its record")

    monkeypatch.setattr(first.service.store, "mark_posted", killed)
    with pytest.raises(KeyboardInterrupt):
        first.tick(london(2020, 10, 16, 8, 0))
    first.close()  # the process is gone
    assert len(slack.calls_to("chat.postMessage")) == 1

    restarted = _runner(tmp_path, news, slack)
    (outcome,) = restarted.tick(london(2020, 10, 16, 8, 1))
    assert outcome.kind is Kind.RECOVERED
    assert restarted.tick(london(2020, 10, 16, 8, 2)) == []
    assert len(slack.calls_to("chat.postMessage")) == 1


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_replicas_on_one_state_db_build_and_post_once(tmp_path: Path, news: Corpus, slack: SlackApiServer,
                                                      request: pytest.FixtureRequest, engine: str) -> None:
    location = request.getfixturevalue("pg_url") if engine == "postgresql" else tmp_path
    runners = [_runner(location, news, slack) for _ in range(3)]
    builds: list[str] = []
    for runner in runners:
        build = runner.service.build
        runner.service.build = lambda *a, build=build, **k: builds.append("built") or build(*a, **k)  # type: ignore[method-assign]
    barrier = threading.Barrier(len(runners))
    outcomes: list[list[DeliveryOutcome]] = []

    def run(runner: DigestRunner) -> None:
        barrier.wait()
        for minute in range(3):  # replicas tick every 20 s: several ticks over the slot
            outcomes.append(runner.tick(london(2020, 10, 16, 8, minute)))

    threads = [threading.Thread(target=run, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(o.kind.value for batch in outcomes for o in batch) == ["posted"]
    assert builds == ["built"]  # the slot is claimed before the digest is built: one replica summarises
    assert len(slack.calls_to("chat.postMessage")) == 1


def test_a_digest_that_cannot_be_built_is_retried_by_any_replica(tmp_path: Path, news: Corpus,
                                                                 slack: SlackApiServer,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    broken, healthy = _runner(tmp_path, news, slack), _runner(tmp_path, news, slack)

    def unreachable(*args: object, **kwargs: object) -> None:
        raise ConnectionError("LLM server unreachable")

    monkeypatch.setattr(broken.service, "build", unreachable)
    assert broken.tick(london(2020, 10, 16, 8, 0)) == []
    record = broken.service.store.get("C1", "2020-10-16")
    assert record is not None and record.status == "failed" and "not built" in (record.error or "")
    assert healthy.tick(london(2020, 10, 16, 8, 0, 30)) == []  # backing off, not stuck behind a live claim
    assert [o.kind for o in healthy.tick(london(2020, 10, 16, 8, 1))] == [Kind.POSTED]


def test_empty_day_posts_a_short_note_or_nothing(tmp_path: Path, news: Corpus, slack: SlackApiServer) -> None:
    channels = [DigestSchedule("CPOST", time(8, 0), "UTC"), DigestSchedule("CQUIET", time(8, 0), "UTC")]
    noisy = _runner(tmp_path, news, slack, schedules=channels[:1], post_empty=True)
    quiet = _runner(tmp_path, news, slack, schedules=channels[1:], post_empty=False)
    day = datetime(2020, 11, 2, 8, 0, tzinfo=UTC)  # nothing was published or ingested in the day before
    assert [o.kind for o in noisy.tick(day)] == [Kind.POSTED]
    assert [o.kind for o in quiet.tick(day)] == [Kind.NOT_POSTED]
    assert quiet.tick(day + timedelta(minutes=1)) == []  # decided once, not rebuilt every tick
    (call,) = slack.calls_to("chat.postMessage")
    assert call.params["channel"] == "CPOST"
    assert call.params["text"] == "No new articles since Sun 1 Nov 2020, 08:00 UTC."


def test_one_failing_channel_does_not_stop_the_others(tmp_path: Path, news: Corpus,
                                                      slack: SlackApiServer) -> None:
    schedules = [DigestSchedule("CGONE", time(8, 0), "UTC"), DigestSchedule("COK", time(8, 0), "UTC")]
    runner = _runner(tmp_path, news, slack, schedules=schedules)
    slack.fail("chat.postMessage", error="channel_not_found")
    kinds = [o.kind for o in runner.tick(datetime(2020, 10, 16, 8, 0, tzinfo=UTC))]
    assert kinds == [Kind.FAILED, Kind.POSTED]


# -- feeds ---------------------------------------------------------------------------------------------

def rss(base: str, *items: tuple[str, str, str]) -> str:
    entries = "".join(
        f"<item><title>{title}</title><link>{base}{path}</link><guid>{base}{path}</guid><pubDate>{date}</pubDate>"
        f"</item>" for title, path, date in items
    )
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Helmand Herald</title>'
            f"<link>{base}/</link><description>News</description>{entries}</channel></rss>")


def page(title: str, body: str) -> Route:
    paragraphs = "".join(f"<p>{p}</p>" for p in body.split("\n"))
    html = (f"<html><head><title>{title}</title><meta property='og:site_name' content='Helmand Herald'></head>"
            f"<body><article><h1>{title}</h1>{paragraphs}</article></body></html>")
    return Route(html)


CRASH = ("Two helicopters crash in Nawa", "/news/crash", "Wed, 14 Oct 2020 09:00:00 GMT")
DISPLACED = ("Families flee Lashkargah", "/news/displaced", "Fri, 16 Oct 2020 07:00:00 GMT")
CRASH_TEXT = ("Two Afghan army helicopters crashed in Nawa district of Helmand province on Wednesday morning, "
              "killing nine people on board, the Ministry of Defense said in a statement.\n"
              "The helicopters were evacuating wounded soldiers from the district centre when they collided.")
DISPLACED_TEXT = ("More than 5,600 families have fled their homes around Lashkargah since the Taliban "
                  "offensive began last week, aid agencies said on Friday.\n"
                  "Most of the displaced families are sheltering with relatives inside the provincial capital.")
POLL = timedelta(minutes=15)
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def feed_server() -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer() as server:
        server.route(CRASH[1], page(CRASH[0], CRASH_TEXT))
        server.route(DISPLACED[1], page(DISPLACED[0], DISPLACED_TEXT))
        yield server


def _poller(tmp_path: Path, corpus: Corpus, feeds: list[str]) -> FeedPoller:
    registry = FeedRegistry(tmp_path / "state.db", env_feeds=feeds, poll_interval=POLL)
    return FeedPoller(registry, corpus, replace(LOCAL_FETCH, timeout=5))


def test_polling_ingests_new_items_and_honours_etag(tmp_path: Path, corpus_factory: Callable[..., Corpus],
                                                    feed_server: LocalHTTPServer) -> None:
    corpus = corpus_factory()
    base = feed_server.base_url
    url = feed_server.route("/feed.xml", Route(rss(base, CRASH), content_type="application/rss+xml", etag='"v1"'))
    poller = _poller(tmp_path, corpus, [url])

    (first,) = poller.tick(T0)
    assert (first.status, first.added) == ("ok", 1)
    assert [d.title for d in corpus.documents(by="first_seen")] == [CRASH[0]]
    assert poller.tick(T0 + POLL - timedelta(seconds=1)) == []  # not due yet

    (unchanged,) = poller.tick(T0 + POLL)
    assert (unchanged.status, unchanged.added) == ("not_modified", 0)
    assert feed_server.requests_to("/feed.xml")[-1].headers["if-none-match"] == '"v1"'

    feed_server.route("/feed.xml", Route(rss(base, DISPLACED, CRASH), content_type="application/rss+xml",
                                         etag='"v2"'))
    (changed,) = poller.tick(T0 + 2 * POLL)
    assert (changed.status, changed.added) == ("ok", 1)
    assert sorted(d.title for d in corpus.documents(by="first_seen")) == sorted([CRASH[0], DISPLACED[0]])
    assert len(feed_server.requests_to(CRASH[1])) == 1  # a known item is not fetched again
    assert corpus.stats().documents == 2


def test_polling_honours_last_modified(tmp_path: Path, corpus_factory: Callable[..., Corpus],
                                       feed_server: LocalHTTPServer) -> None:
    corpus = corpus_factory()
    stamp = "Fri, 16 Oct 2020 07:00:00 GMT"
    url = feed_server.route("/atom", Route(rss(feed_server.base_url, CRASH), content_type="application/rss+xml",
                                           last_modified=stamp))
    poller = _poller(tmp_path, corpus, [url])
    assert [p.status for p in poller.tick(T0)] == ["ok"]
    assert [p.status for p in poller.tick(T0 + POLL)] == ["not_modified"]
    assert feed_server.requests_to("/atom")[-1].headers["if-modified-since"] == stamp


def test_broken_feeds_back_off_without_stopping_others(tmp_path: Path, corpus_factory: Callable[..., Corpus],
                                                       feed_server: LocalHTTPServer) -> None:
    corpus = corpus_factory()
    base = feed_server.base_url
    broken = [
        feed_server.route("/500", Route("oops", status=500, content_type="text/plain")),
        feed_server.route("/html", Route("<html><body><p>Not a feed at all</p></body></html>")),
        feed_server.route("/garbage", Route(b"\x00\xff\xfe{not: xml, at all", content_type="application/rss+xml")),
        closed_port_url("/feed"),
    ]
    good = feed_server.route("/good.xml", Route(rss(base, DISPLACED), content_type="application/rss+xml"))
    poller = _poller(tmp_path, corpus, [*broken, good])

    polls = {p.url: p for p in poller.tick(T0)}
    assert [polls[u].status for u in broken] == ["error"] * 4
    assert all(polls[u].error for u in broken)
    assert (polls[good].status, polls[good].added) == ("ok", 1)

    # Backoff: after the first failure a broken feed waits one poll interval, after the second two.
    assert sorted(p.url for p in poller.tick(T0 + POLL)) == sorted([*broken, good])
    assert [p.url for p in poller.tick(T0 + 2 * POLL)] == [good]
    assert sorted(p.url for p in poller.tick(T0 + 3 * POLL)) == sorted([*broken, good])
    states = {f.url: f for f in poller.registry.feeds()}
    assert [states[u].failures for u in broken] == [3, 3, 3, 3]
    assert states[broken[0]].next_check == (T0 + 7 * POLL).isoformat()
    assert states[good].failures == 0 and states[good].last_status in ("ok", "not_modified")


# -- APScheduler wiring ----------------------------------------------------------------------------------

def test_start_scheduler_posts_a_due_digest_and_polls_feeds(tmp_path: Path, corpus_factory: Callable[..., Corpus],
                                                            slack: SlackApiServer,
                                                            feed_server: LocalHTTPServer) -> None:
    feed = feed_server.route("/feed.xml", Route(rss(feed_server.base_url, DISPLACED),
                                                content_type="application/rss+xml"))
    settings = load_settings({
        "SITREP_DATA_DIR": str(tmp_path / "data"), "SITREP_ANSWER_MODE": "extractive",
        "SITREP_DIGEST_CHANNEL": "CDIGEST", "SITREP_DIGEST_TIME": "08:00", "SITREP_TIMEZONE": "Europe/London",
        "SITREP_FEEDS": feed, "SLACK_API_URL": slack.url,
    })
    corpus = corpus_factory(data_dir=settings.data_dir, articles=fixture_articles(), fetch=LOCAL_FETCH)
    client = WebClient(token=slack.token, base_url=slack.url)
    handle = start_scheduler(settings, corpus, _engine(corpus), client, clock=lambda: london(2020, 10, 16, 8, 0, 30))
    try:
        (call,) = slack.wait_for("chat.postMessage", timeout=60)
        assert call.params["channel"] == "CDIGEST"
        deadline = threading.Event()
        for _ in range(600):
            if corpus.stats().documents == len(fixture_articles()) + 1:
                break
            deadline.wait(0.1)
        assert corpus.stats().documents == len(fixture_articles()) + 1
    finally:
        handle.shutdown()
    assert len(slack.calls_to("chat.postMessage")) == 1
