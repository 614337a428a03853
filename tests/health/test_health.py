"""``GET /healthz``'s report (bot.health): the state database on both engines, Chroma, the cache and the deadline."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest
from slack_signing import (  # noqa: F401 - fixtures
    BotHarness,
    make_harness_fixture,
    shared_corpus_fixture,
    slack_fixture,
)

from bot.feeds.registry import FEEDS, FeedRegistry
from bot.health import HealthMonitor, chroma_health, database_health
from retrieval.errors import StoreError
from retrieval.statedb import Location, connection


class FakeStore:
    def __init__(self, count: int = 42, host: str | None = None, error: Exception | None = None) -> None:
        self.name, self.host, self._count, self.error = "sitrep_chunks", host, count, error

    def count(self) -> int:
        if self.error:
            raise self.error
        return self._count


def _opened(location: Location) -> Location:
    from datetime import timedelta

    FeedRegistry(location, poll_interval=timedelta(minutes=15))  # one component's tables, migrated
    return location


def test_database_report_on_each_engine(state_location: Location) -> None:
    report = database_health(_opened(state_location))
    engine = "postgresql" if isinstance(state_location, str) else "sqlite"
    assert (report["engine"], report["reachable"], report["ok"], report["schema_ok"]) == (engine, True, True, True)
    assert report["schema"]["feeds"] == FEEDS.version == report["expected"]["feeds"]
    assert ("server_version" in report) == (engine == "postgresql")


def test_a_schema_migrated_past_this_release_is_unhealthy(state_location: Location) -> None:
    _opened(state_location)
    with connection(state_location) as conn:
        conn.execute("UPDATE schema_versions SET version = ? WHERE component = 'feeds'", (FEEDS.version + 1,))
    report = database_health(state_location)
    assert (report["reachable"], report["ok"]) == (True, False)
    assert "feeds" in report["error"]


def test_an_empty_database_is_unhealthy(tmp_path: Any) -> None:
    report = database_health(tmp_path / "state.db")
    assert (report["reachable"], report["ok"], report["error"]) == (True, False, "no sitrep schema in this database")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_postgresql_is_reported_in_time_without_its_password() -> None:
    url = f"postgresql://sitrep:hunter2@127.0.0.1:{_closed_port()}/sitrep"
    monitor = HealthMonitor.for_state(url, FakeStore, timeout=0.5)
    report = monitor.report()
    assert report["ok"] is False and report["chroma"]["ok"] is True
    assert report["database"]["reachable"] is False  # the pool tries for 10 s; the report waits 0.5 s
    assert report["database"]["error"] == "no answer within 0.5 s"
    direct = database_health(url)  # the check itself, waited for: the cause, without the password
    assert (direct["engine"], direct["reachable"], direct["ok"]) == ("postgresql", False, False)
    assert "hunter2" not in str(report) + str(direct) and "PostgreSQL" in direct["error"]


def test_chroma_report() -> None:
    assert chroma_health(FakeStore(7)) == {"mode": "embedded", "collection": "sitrep_chunks", "reachable": True,
                                           "ok": True, "count": 7}
    down = chroma_health(FakeStore(host="chroma.internal", error=StoreError("Cannot reach the Chroma server")))
    assert (down["mode"], down["reachable"], down["ok"]) == ("server", False, False)
    assert "Cannot reach the Chroma server" in down["error"]


def test_reports_are_cached_and_a_hung_check_is_neither_waited_for_nor_started_twice() -> None:
    now = [100.0]
    calls: list[str] = []
    release = threading.Event()

    def hung() -> dict[str, Any]:
        calls.append("hung")
        release.wait(10)
        return {"ok": True}

    def quick() -> dict[str, Any]:
        calls.append("quick")
        return {"ok": True}

    monitor = HealthMonitor({"database": hung, "chroma": quick}, ttl=2.0, timeout=0.2, clock=lambda: now[0])
    first = monitor.report()
    assert first["ok"] is False and first["database"]["error"] == "no answer within 0.2 s"
    assert monitor.report() is first  # within the ttl: no new check
    now[0] += 2.5
    assert monitor.report()["ok"] is False
    assert calls.count("hung") == 1 and calls.count("quick") == 2  # the hung one is waited on, not restarted
    release.set()
    now[0] += 2.5
    assert monitor.report()["ok"] is True


def test_healthz_answers_503_when_chroma_fails(make_harness: Callable[..., BotHarness],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    h = make_harness()
    healthy = h.http.get(h.server.url + "/healthz")
    assert healthy.status_code == 200
    body = healthy.json()
    assert (body["ok"], body["busy"], body["waiting"]) == (True, 0, 0)
    assert body["database"]["engine"] == "sqlite" and body["chroma"]["count"] > 0

    def down() -> int:
        raise StoreError("Cannot reach the Chroma server at chroma:8000: connection refused.")

    monkeypatch.setattr(h.bot.corpus.store, "count", down)
    sick = make_harness()  # a new app: a report of its own, not the first one's cached for 2 s
    response = sick.http.get(sick.server.url + "/healthz")
    assert response.status_code == 503
    assert response.json()["chroma"]["reachable"] is False and response.json()["database"]["ok"] is True


def test_the_chroma_check_follows_a_reindex_made_by_another_process(
        corpus_factory: Callable[..., Any]) -> None:
    from retrieval.corpus import Corpus
    from retrieval.statedb import state_location

    from conftest import fixture_articles

    bot = corpus_factory(articles=fixture_articles())
    monitor = HealthMonitor.for_state(state_location(bot.config.data_dir, bot.config.database_url),
                                      lambda: bot.store, ttl=0)
    assert monitor.report()["chroma"]["collection"] == "sitrep_chunks"
    Corpus.open(bot.config, writes_only=True).reindex()  # `sitrep reindex` beside the running bot
    chroma = monitor.report()["chroma"]
    assert chroma["ok"] is True and chroma["collection"] == "sitrep_chunks-g1"
    assert chroma["count"] == bot.stats().chunks
