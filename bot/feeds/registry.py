"""The feeds ``sitrep serve`` polls: ``SITREP_FEEDS`` plus ``sitrep feeds add``, with per-feed HTTP state.

Each feed keeps its ETag / Last-Modified (sent back so an unchanged feed costs a 304), its last status,
and a failure count: a failing feed is retried after poll interval × 2^(failures − 1), at most
``MAX_BACKOFF``, and a success resets it. The links already ingested from a feed are remembered so the
loader need not fetch their pages again.

Several ``sitrep serve`` replicas share one registry (PostgreSQL), so a poll is leased: :meth:`FeedRegistry.claim`
takes a due feed with one conditional UPDATE (due, and no live lease), which on either engine only one
replica can win; recording the poll's outcome moves ``next_check`` on and ends the lease. A replica that
dies mid-poll leaves a lease that another takes when it runs out (``lease_until``), or at once when the
poller can tell its owner is gone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.settings import FeedSettings
from retrieval.date_store import add_column
from retrieval.errors import SourceError
from retrieval.statedb import Connection, Location, Migration, connection, engine, migrate, register, with_retry

MAX_BACKOFF = timedelta(hours=6)
KNOWN_LINKS_PER_FEED = 5000
# How long a poll may run before another replica may take the feed over: far above a poll's usual seconds
# (a feed of new entries fetches and embeds each page), so a slow poll is not repeated by a second replica.
DEFAULT_LEASE = timedelta(minutes=10)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds_registry (
    url           TEXT PRIMARY KEY,
    added_by_cli  INTEGER NOT NULL DEFAULT 0,
    added_at      TEXT NOT NULL,
    title         TEXT,
    etag          TEXT,
    last_modified TEXT,
    last_status   TEXT,
    last_error    TEXT,
    last_checked  TEXT,
    failures      INTEGER NOT NULL DEFAULT 0,
    next_check    TEXT
);
CREATE TABLE IF NOT EXISTS feeds_seen_links (
    feed_url TEXT NOT NULL,
    link     TEXT NOT NULL,
    seen_at  TEXT NOT NULL,
    PRIMARY KEY (feed_url, link)
);
"""


def _added_columns(conn: Connection) -> None:
    # ``date_order`` was added unversioned by earlier releases, so each column is added only when missing.
    for name in ("date_order", "claimed_by", "lease_until"):
        if engine(conn) == "postgresql":
            conn.execute(f"ALTER TABLE feeds_registry ADD COLUMN IF NOT EXISTS {name} TEXT")
        else:
            add_column(conn, "feeds_registry", name, "TEXT")  # type: ignore[arg-type]


FEEDS = register("feeds", [
    Migration(1, _SCHEMA, "the feed registry and the links seen"),
    Migration(2, _added_columns, "a feed's date order, and the lease of a poll in progress"),
])


_URL = re.compile(r"^https?://[^\s/]+\S*$")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class FeedState:
    """A registered feed and how its last fetch went. ``origin`` is "env", "cli" or "env+cli"."""

    url: str
    origin: str
    title: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    last_status: str | None = None  # "ok" | "not_modified" | "error"
    last_error: str | None = None
    last_checked: str | None = None
    failures: int = 0
    next_check: str | None = None
    date_order: str | None = None  # how the feed writes numeric dates: "dmy", "mdy" or undeclared
    claimed_by: str | None = None  # the poller polling it now (or that died polling it)
    lease_until: str | None = None  # when another poller may take it over

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "origin": self.origin,
            "title": self.title,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "last_checked": self.last_checked,
            "failures": self.failures,
            "next_check": self.next_check,
            "date_order": self.date_order,
        }


def check_feed_url(url: str) -> str:
    """The URL stripped, or SourceError when it is not an http(s) URL."""
    url = url.strip()
    if not _URL.match(url):
        raise SourceError(url, f"{url!r} is not a feed URL; give an http:// or https:// address.")
    return url


class FeedRegistry:
    """Feeds and their fetch state in the state database (a connection per call: thread-safe)."""

    def __init__(self, path: Location, *, env_feeds: Iterable[str] = (), poll_interval: timedelta,
                 lease: timedelta = DEFAULT_LEASE) -> None:
        self.path = path
        self.env_feeds = tuple(dict.fromkeys(u.strip() for u in env_feeds if u.strip()))
        self.poll_interval = poll_interval
        self.lease = lease
        with connection(self.path) as conn:
            migrate(conn, FEEDS)

    @classmethod
    def open(cls, location: Location, settings: FeedSettings) -> FeedRegistry:
        """The registry in the state database at ``location``, with SITREP_FEEDS and its poll interval."""
        return cls(location, env_feeds=settings.feeds,
                   poll_interval=timedelta(minutes=settings.poll_minutes))


    def _execute(self, sql: str, params: tuple[Any, ...]) -> int:
        with connection(self.path) as conn:
            return with_retry(lambda: conn.execute(sql, params).rowcount)

    def add(self, url: str, now: datetime) -> bool:
        """Register ``url``; False when ``sitrep feeds add`` had already added it."""
        url = check_feed_url(url)
        inserted = self._execute(
            "INSERT OR IGNORE INTO feeds_registry (url, added_by_cli, added_at) VALUES (?, 1, ?)", (url, _iso(now))
        )
        if inserted:
            return True
        return self._execute("UPDATE feeds_registry SET added_by_cli = 1 WHERE url = ? AND added_by_cli = 0",
                             (url,)) == 1

    def set_date_order(self, url: str, order: str | None) -> None:
        """Declare how feed ``url`` writes numeric dates (``dmy``/``mdy``; None: undeclared)."""
        self._upsert(url.strip(), datetime.now(UTC))
        self._execute("UPDATE feeds_registry SET date_order = ? WHERE url = ?", (order, url.strip()))

    def remove(self, url: str) -> bool:
        """Unregister a feed added with ``sitrep feeds add``; False when it was not registered.

        A feed listed in SITREP_FEEDS cannot be removed here (it would come back on the next start).
        """
        url = url.strip()
        if url in self.env_feeds:
            raise SourceError(url, f"{url} is listed in SITREP_FEEDS; remove it from that setting instead.")
        removed = self._execute("DELETE FROM feeds_registry WHERE url = ? AND added_by_cli = 1", (url,))
        self._execute("DELETE FROM feeds_seen_links WHERE feed_url = ?", (url,))
        return removed == 1

    def feeds(self) -> list[FeedState]:
        """Every active feed (SITREP_FEEDS first, then those added on the command line)."""
        with connection(self.path) as conn:
            rows = {row["url"]: row for row in conn.execute("SELECT * FROM feeds_registry")}
        states = []
        for url in self.env_feeds:
            row = rows.get(url)
            origin = "env+cli" if row is not None and row["added_by_cli"] else "env"
            states.append(_state(url, origin, row))
        states.extend(
            _state(url, "cli", row) for url, row in sorted(rows.items())
            if row["added_by_cli"] and url not in self.env_feeds
        )
        return states

    def due(self, now: datetime) -> list[FeedState]:
        """The active feeds whose next check is at or before ``now``."""
        stamp = _iso(now)
        return [f for f in self.feeds() if f.next_check is None or f.next_check <= stamp]

    def claim(self, feed: FeedState, owner: str, now: datetime, *, take_from: str | None = None) -> FeedState | None:
        """Lease ``feed``'s poll to ``owner`` until ``now`` + lease; None when it is not due or leased to another.

        One conditional UPDATE decides, so of several replicas claiming at once exactly one wins (PostgreSQL
        re-checks the condition on the row the winner committed). ``take_from`` names a lease holder known to
        be dead, whose lease is taken at once. Returns the feed's current state (validators included).
        """
        self._upsert(feed.url, now)  # SITREP_FEEDS entries get their row on first use
        stamp = _iso(now)
        with connection(self.path) as conn:
            rows = with_retry(lambda: conn.execute(
                "UPDATE feeds_registry SET claimed_by = ?, lease_until = ? WHERE url = ? "
                "AND (next_check IS NULL OR next_check <= ?) AND (lease_until IS NULL OR lease_until <= ? "
                "OR claimed_by = ?) RETURNING *",
                (owner, _iso(now + self.lease), feed.url, stamp, stamp, take_from),
            ).fetchall())
        return _state(feed.url, feed.origin, rows[0]) if rows else None

    def record_success(
        self, url: str, now: datetime, *, status: str, etag: str | None, last_modified: str | None,
        title: str | None, entry_problems: str | None = None,
    ) -> None:
        """A fetch answered (``status`` "ok" or "not_modified"): reset failures, schedule the next poll, end the lease.

        ``entry_problems`` says which entries could not be ingested (e.g. links the fetch guard refused);
        it is kept as the feed's ``last_error`` while the feed itself counts as working.
        """
        self._upsert(url, now)
        self._execute(
            "UPDATE feeds_registry SET etag = COALESCE(?, etag), last_modified = COALESCE(?, last_modified), "
            "title = COALESCE(?, title), last_status = ?, last_error = ?, last_checked = ?, failures = 0, "
            "next_check = ?, claimed_by = NULL, lease_until = NULL WHERE url = ?",
            (etag, last_modified, title or None, status, entry_problems and entry_problems[:500], _iso(now),
             _iso(now + self.poll_interval), url),
        )

    def record_failure(self, url: str, now: datetime, error: str) -> datetime:
        """A fetch failed: count it, back off exponentially, end the lease. Returns the next attempt's time."""
        self._upsert(url, now)
        with connection(self.path) as conn:
            row = conn.execute("SELECT failures FROM feeds_registry WHERE url = ?", (url,)).fetchone()
        failures = (row["failures"] if row else 0) + 1
        delay = min(self.poll_interval * 2 ** (failures - 1), max(MAX_BACKOFF, self.poll_interval))
        next_check = now + delay
        self._execute(
            "UPDATE feeds_registry SET last_status = 'error', last_error = ?, last_checked = ?, failures = ?, "
            "next_check = ?, claimed_by = NULL, lease_until = NULL WHERE url = ?",
            (error[:500], _iso(now), failures, _iso(next_check), url),
        )
        return next_check

    def known_links(self, url: str) -> set[str]:
        """Article links already ingested from feed ``url``."""
        with connection(self.path) as conn:
            return {r["link"] for r in conn.execute("SELECT link FROM feeds_seen_links WHERE feed_url = ?", (url,))}

    def remember_links(self, url: str, links: Iterable[str], now: datetime) -> None:
        """Remember ingested links of feed ``url``, keeping the newest ``KNOWN_LINKS_PER_FEED``."""
        rows = [(url, link, _iso(now)) for link in links if link]
        if not rows:
            return
        with connection(self.path) as conn:
            # Autocommit per statement: an interrupted call leaves at worst links to fetch again.
            with_retry(lambda: conn.executemany(
                "INSERT INTO feeds_seen_links (feed_url, link, seen_at) VALUES (?, ?, ?) "
                "ON CONFLICT (feed_url, link) DO UPDATE SET seen_at = excluded.seen_at",
                rows,
            ))
            with_retry(lambda: conn.execute(
                "DELETE FROM feeds_seen_links WHERE feed_url = ? AND link NOT IN (SELECT link FROM "
                "feeds_seen_links WHERE feed_url = ? ORDER BY seen_at DESC LIMIT ?)",
                (url, url, KNOWN_LINKS_PER_FEED),
            ))

    def _upsert(self, url: str, now: datetime) -> None:
        # SITREP_FEEDS entries get their row on first use.
        self._execute("INSERT OR IGNORE INTO feeds_registry (url, added_at) VALUES (?, ?)", (url, _iso(now)))


def _state(url: str, origin: str, row: Any) -> FeedState:
    if row is None:
        return FeedState(url=url, origin=origin)
    return FeedState(
        url=url,
        origin=origin,
        title=row["title"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        last_checked=row["last_checked"],
        failures=row["failures"],
        next_check=row["next_check"],
        date_order=row["date_order"],
        claimed_by=row["claimed_by"],
        lease_until=row["lease_until"],
    )
