"""The feed registry: add/list/remove, SITREP_FEEDS, HTTP validators, backoff, remembered links, and the
leases that let several replicas poll each feed once per interval. Every test runs on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.feeds.registry import _SCHEMA, FEEDS, MAX_BACKOFF, FeedRegistry
from retrieval.errors import SourceError
from retrieval.statedb import Location, connection, run_script, stored_versions, transaction

NOW = datetime(2020, 10, 16, 8, 0, tzinfo=UTC)
POLL = timedelta(minutes=15)


def _registry(location: Location, env: tuple[str, ...] = ()) -> FeedRegistry:
    return FeedRegistry(location, env_feeds=env, poll_interval=POLL)


def test_add_list_remove_persist(state_location: Location) -> None:
    registry = _registry(state_location, env=("https://env.example/rss",))
    assert registry.add(" https://a.example/feed.xml ", NOW) is True
    assert registry.add("https://a.example/feed.xml", NOW) is False
    reopened = _registry(state_location, env=("https://env.example/rss",))
    assert [(f.url, f.origin) for f in reopened.feeds()] == [
        ("https://env.example/rss", "env"),
        ("https://a.example/feed.xml", "cli"),
    ]
    assert reopened.remove("https://a.example/feed.xml") is True
    assert reopened.remove("https://a.example/feed.xml") is False
    assert [f.url for f in _registry(state_location).feeds()] == []


def test_env_feed_cannot_be_removed_and_bad_urls_are_refused(state_location: Location) -> None:
    registry = _registry(state_location, env=("https://env.example/rss",))
    with pytest.raises(SourceError, match="SITREP_FEEDS"):
        registry.remove("https://env.example/rss")
    for bad in ("ftp://x.example/feed", "not a url", ""):
        with pytest.raises(SourceError, match="http"):
            registry.add(bad, NOW)
    assert registry.add("https://env.example/rss", NOW) is True
    assert [f.origin for f in registry.feeds()] == ["env+cli"]


def test_success_keeps_validators_and_schedules_next_poll(state_location: Location) -> None:
    registry = _registry(state_location)
    registry.add("https://a.example/feed", NOW)
    assert [f.url for f in registry.due(NOW)] == ["https://a.example/feed"]
    registry.record_success("https://a.example/feed", NOW, status="ok", etag='"v1"',
                            last_modified="Fri, 16 Oct 2020 07:00:00 GMT", title="Helmand news")
    assert registry.due(NOW + POLL - timedelta(seconds=1)) == []
    # A 304 carries no new validators: the old ones are kept.
    registry.record_success("https://a.example/feed", NOW + POLL, status="not_modified", etag=None,
                            last_modified=None, title=None)
    (state,) = registry.feeds()
    assert (state.etag, state.last_modified, state.title) == ('"v1"', "Fri, 16 Oct 2020 07:00:00 GMT", "Helmand news")
    assert state.last_status == "not_modified"


def test_failures_back_off_exponentially_and_success_resets(state_location: Location) -> None:
    registry = _registry(state_location)
    url = "https://broken.example/feed"
    registry.add(url, NOW)
    delays = [registry.record_failure(url, NOW, "HTTP 500") - NOW for _ in range(8)]
    assert delays[:4] == [POLL, POLL * 2, POLL * 4, POLL * 8]
    assert delays[-1] == MAX_BACKOFF
    (state,) = registry.feeds()
    assert (state.failures, state.last_status, state.last_error) == (8, "error", "HTTP 500")
    assert registry.due(NOW + MAX_BACKOFF - timedelta(seconds=1)) == []
    registry.record_success(url, NOW + MAX_BACKOFF, status="ok", etag=None, last_modified=None, title=None)
    assert registry.feeds()[0].failures == 0


def test_known_links_are_remembered_per_feed(state_location: Location) -> None:
    registry = _registry(state_location)
    registry.remember_links("https://a.example/feed", ["https://a.example/1", "https://a.example/2", ""], NOW)
    registry.remember_links("https://b.example/feed", ["https://b.example/1"], NOW)
    assert registry.known_links("https://a.example/feed") == {"https://a.example/1", "https://a.example/2"}
    registry.add("https://a.example/feed", NOW)
    registry.remove("https://a.example/feed")
    assert registry.known_links("https://a.example/feed") == set()
    assert registry.known_links("https://b.example/feed") == {"https://b.example/1"}


@pytest.mark.parametrize("had_date_order", [True, False])
def test_a_version_1_registry_gains_the_lease_columns(state_location: Location, had_date_order: bool) -> None:
    """Releases before leases: feeds schema v1, with ``date_order`` added unversioned by some of them."""
    with connection(state_location) as conn, transaction(conn):
        run_script(conn, _SCHEMA)
        conn.execute("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT "
                     "NULL, migrated_at TEXT NOT NULL)")
        conn.execute("INSERT INTO schema_versions VALUES ('feeds', 1, '2026-01-01T00:00:00+00:00')")
        if had_date_order:
            conn.execute("ALTER TABLE feeds_registry ADD COLUMN date_order TEXT")
        conn.execute("INSERT INTO feeds_registry (url, added_by_cli, added_at) VALUES ('https://a.example/feed', 1, "
                     "'2026-01-01T00:00:00+00:00')")
    registry = _registry(state_location)
    with connection(state_location) as conn:
        assert stored_versions(conn)["feeds"] == FEEDS.version == 2
    (feed,) = registry.due(NOW)
    claimed = registry.claim(feed, "replica:1:t", NOW)
    assert claimed is not None and (claimed.url, claimed.origin, claimed.date_order) == (feed.url, "cli", None)
