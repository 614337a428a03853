"""The feed registry: add/list/remove, SITREP_FEEDS, HTTP validators, backoff and remembered links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.feeds.registry import MAX_BACKOFF, FeedRegistry
from retrieval.errors import SourceError

NOW = datetime(2020, 10, 16, 8, 0, tzinfo=UTC)
POLL = timedelta(minutes=15)


def _registry(tmp_path: Path, env: tuple[str, ...] = ()) -> FeedRegistry:
    return FeedRegistry(tmp_path / "state.db", env_feeds=env, poll_interval=POLL)


def test_add_list_remove_persist(tmp_path: Path) -> None:
    registry = _registry(tmp_path, env=("https://env.example/rss",))
    assert registry.add(" https://a.example/feed.xml ", NOW) is True
    assert registry.add("https://a.example/feed.xml", NOW) is False
    reopened = _registry(tmp_path, env=("https://env.example/rss",))
    assert [(f.url, f.origin) for f in reopened.feeds()] == [
        ("https://env.example/rss", "env"),
        ("https://a.example/feed.xml", "cli"),
    ]
    assert reopened.remove("https://a.example/feed.xml") is True
    assert reopened.remove("https://a.example/feed.xml") is False
    assert [f.url for f in _registry(tmp_path).feeds()] == []


def test_env_feed_cannot_be_removed_and_bad_urls_are_refused(tmp_path: Path) -> None:
    registry = _registry(tmp_path, env=("https://env.example/rss",))
    with pytest.raises(SourceError, match="SITREP_FEEDS"):
        registry.remove("https://env.example/rss")
    for bad in ("ftp://x.example/feed", "not a url", ""):
        with pytest.raises(SourceError, match="http"):
            registry.add(bad, NOW)
    assert registry.add("https://env.example/rss", NOW) is True
    assert [f.origin for f in registry.feeds()] == ["env+cli"]


def test_success_keeps_validators_and_schedules_next_poll(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
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


def test_failures_back_off_exponentially_and_success_resets(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
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


def test_known_links_are_remembered_per_feed(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    registry.remember_links("https://a.example/feed", ["https://a.example/1", "https://a.example/2", ""], NOW)
    registry.remember_links("https://b.example/feed", ["https://b.example/1"], NOW)
    assert registry.known_links("https://a.example/feed") == {"https://a.example/1", "https://a.example/2"}
    registry.add("https://a.example/feed", NOW)
    registry.remove("https://a.example/feed")
    assert registry.known_links("https://a.example/feed") == set()
    assert registry.known_links("https://b.example/feed") == {"https://b.example/1"}
