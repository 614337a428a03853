"""Feed polls are leased, so N replicas sharing one registry fetch each feed once per poll interval.

Every test runs on both engines (``state_location``): a SQLite file, then a PostgreSQL schema. Pollers are
separate :class:`FeedPoller` objects with their own registry and connections, as replicas would be.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.digest.delivery import new_owner
from bot.digest.scheduler import FeedPoller
from bot.feeds.registry import DEFAULT_LEASE, FeedRegistry
from retrieval.loaders import FeedFetch
from retrieval.statedb import Location

from httpfixtures import LOCAL_FETCH

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
POLL = timedelta(minutes=15)
FEEDS = [f"https://feed{i}.example/rss" for i in range(6)]


class CountingFetch:
    """A feed fetch that answers 304 and counts the fetches of each URL (thread-safe)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, url: str, **kwargs: Any) -> FeedFetch:
        with self._lock:
            self.calls[url] += 1
        return FeedFetch("not_modified")


class NoIngest:
    def ingest_articles(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a 304 ingests nothing")


def _poller(location: Location, fetch: Any, feeds: list[str] = FEEDS) -> FeedPoller:
    registry = FeedRegistry(location, env_feeds=feeds, poll_interval=POLL)
    return FeedPoller(registry, NoIngest(), LOCAL_FETCH, fetch=fetch)


def _race(pollers: list[FeedPoller], now: datetime) -> None:
    barrier = threading.Barrier(len(pollers))

    def tick(poller: FeedPoller) -> None:
        barrier.wait()
        poller.tick(now)

    threads = [threading.Thread(target=tick, args=(p,)) for p in pollers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


def test_replicas_ticking_together_poll_each_feed_once_per_interval(state_location: Location) -> None:
    fetch = CountingFetch()
    pollers = [_poller(state_location, fetch) for _ in range(4)]
    for interval in range(3):
        start = NOW + interval * POLL
        # Every replica ticks several times within the interval (every 20 s in `sitrep serve`).
        for offset in (timedelta(0), timedelta(seconds=20), timedelta(minutes=7)):
            _race(pollers, start + offset)
        assert fetch.calls == Counter({url: interval + 1 for url in FEEDS}), f"interval {interval}"
    states = pollers[0].registry.feeds()
    assert all(s.claimed_by is None and s.lease_until is None for s in states)  # every lease ended


def test_claim_is_won_once_and_ends_with_the_poll(state_location: Location) -> None:
    registry = FeedRegistry(state_location, env_feeds=FEEDS[:1], poll_interval=POLL)
    (feed,) = registry.due(NOW)
    first = registry.claim(feed, "replica-a:1:x", NOW)
    assert first is not None and first.claimed_by == "replica-a:1:x"
    assert first.lease_until == (NOW + DEFAULT_LEASE).isoformat()
    assert registry.claim(feed, "replica-b:2:y", NOW) is None  # leased to a
    registry.record_success(feed.url, NOW, status="ok", etag='"v1"', last_modified=None, title="Feed")
    assert registry.claim(feed, "replica-b:2:y", NOW + timedelta(minutes=1)) is None  # polled: not due
    again = registry.claim(feed, "replica-b:2:y", NOW + POLL)
    assert again is not None and again.etag == '"v1"'  # the claim hands back the current validators


def test_a_replica_dying_mid_poll_leaves_the_feed_to_another_after_the_lease(state_location: Location) -> None:
    def killed(url: str, **kwargs: Any) -> FeedFetch:
        raise KeyboardInterrupt("SIGKILL in the middle of the poll")

    dying = _poller(state_location, killed, FEEDS[:1])
    dying.owner = "another-host:4242:t"  # on another machine: only the lease's end frees the feed
    with pytest.raises(KeyboardInterrupt):
        dying.tick(NOW)
    fetch = CountingFetch()
    survivor = _poller(state_location, fetch, FEEDS[:1])
    assert survivor.tick(NOW + DEFAULT_LEASE - timedelta(seconds=1)) == []
    assert [p.status for p in survivor.tick(NOW + DEFAULT_LEASE)] == ["not_modified"]
    assert fetch.calls == Counter({FEEDS[0]: 1})


def test_a_lease_of_a_poller_known_dead_is_taken_at_once(state_location: Location) -> None:
    registry = FeedRegistry(state_location, env_feeds=FEEDS[:1], poll_interval=POLL)
    gone = _poller(state_location, CountingFetch(), FEEDS[:1])
    (feed,) = registry.due(NOW)
    assert registry.claim(feed, gone.owner, NOW) is not None  # claimed, then the process stopped
    gone.close()
    fetch = CountingFetch()
    restarted = _poller(state_location, fetch, FEEDS[:1])
    assert [p.url for p in restarted.tick(NOW + timedelta(seconds=20))] == FEEDS[:1]
    live = new_owner()  # a live owner in this process is not taken over
    later = NOW + 2 * POLL
    (feed,) = registry.due(later)
    assert registry.claim(feed, live, later) is not None
    assert restarted.tick(later) == []
