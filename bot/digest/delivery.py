"""Posting a digest exactly once per (channel, slot) across restarts, crashes and concurrent processes.

A slot is the local date of a scheduled digest (``2020-10-16``) or ``manual:<minute>`` for one an admin
asked for. Before posting, a process *claims* the slot: a row inserted in its own transaction under the
primary key (channel, slot), so of two processes exactly one wins. After posting it records the Slack
``ts`` and the digest's story facts (the next digest compares its figures with them).

A claim whose owner died (same host and PID namespace, process gone) or that is older than ``stale_after`` is
taken over; a replica on another host is never judged by a pid, only by the claim's age. The claim is one
transaction under the state database's write lock, on SQLite and PostgreSQL alike, so of N replicas racing
for a slot exactly one wins. The dead owner may have posted just before dying, so the taker first looks in
the channel's history for a message carrying this slot's metadata key and, if found, records it instead of
posting again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from bot.answer.stories import StoryCorpus
from bot.digest.build import Digest, StorySummarizer, build_digest
from retrieval.statedb import Connection, Location, Migration, connection, migrate, register, with_retry

if TYPE_CHECKING:
    from bot.answer.engine import Engine

log = logging.getLogger(__name__)
T = TypeVar("T")

METADATA_EVENT = "sitrep_digest"
DEFAULT_STALE_AFTER = timedelta(minutes=15)
FIRST_WINDOW = timedelta(hours=24)  # what the first digest of a channel covers
_MAX_RETRY_DELAY = timedelta(hours=1)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS digest_deliveries (
    channel    TEXT NOT NULL,
    slot       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('claimed', 'posted', 'skipped', 'failed')),
    owner      TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    retry_at   TEXT,
    error      TEXT,
    posted_at  TEXT,
    ts         TEXT,
    since      TEXT,
    until      TEXT,
    state      TEXT,
    PRIMARY KEY (channel, slot)
);
CREATE INDEX IF NOT EXISTS digest_deliveries_posted ON digest_deliveries (channel, status, posted_at);
"""
DELIVERIES = register("digest", [Migration(1, _SCHEMA, "digest deliveries and their claims")])


# Owner ids created by this process and not yet closed: a claim by one of our own ids that is not in
# this set belongs to an earlier incarnation that had our pid (e.g. pid 1 in a restarted container).
_LIVE_OWNERS: set[str] = set()
_LIVE_LOCK = threading.Lock()


def _iso(moment: datetime) -> str:
    # One fixed UTC format, so ISO strings in the table compare correctly as text.
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _process_space() -> str:
    """Where this process's pid means something: its hostname, plus a digest of the kernel boot and PID namespace.

    Replicas on different machines (or in containers on host networking) can share a hostname without seeing
    each other's processes; only an owner from the same boot and PID namespace is judged by its pid.
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # not Linux: the hostname alone, as before
        return socket.gethostname()
    return f"{socket.gethostname()}~{hashlib.sha256(f'{boot}/{namespace}'.encode()).hexdigest()[:10]}"


_SPACE = _process_space()


def new_owner() -> str:
    """A claim-owner id ``host:pid:token`` for one runner; release it with :func:`close_owner`."""
    owner = f"{_SPACE}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    with _LIVE_LOCK:
        _LIVE_OWNERS.add(owner)
    return owner


def close_owner(owner: str) -> None:
    """Mark ``owner`` as gone: its unfinished claims may be taken over at once."""
    with _LIVE_LOCK:
        _LIVE_OWNERS.discard(owner)


def owner_is_dead(owner: str) -> bool:
    """True when ``owner`` certainly no longer runs (same host and PID namespace, and its process or runner is gone).

    Owners elsewhere (other replicas) are never judged dead here; their claims expire after ``stale_after``.
    """
    host, _, rest = owner.partition(":")
    pid_text, _, _token = rest.partition(":")
    if host != _SPACE or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        with _LIVE_LOCK:
            return owner not in _LIVE_OWNERS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by another user
        return False
    return False


@dataclass(frozen=True)
class DeliveryRecord:
    """One row of ``digest_deliveries``."""

    channel: str
    slot: str
    status: str
    owner: str
    claimed_at: str
    attempts: int
    retry_at: str | None
    error: str | None
    posted_at: str | None
    ts: str | None
    since: str | None
    until: str | None
    state: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: Any) -> DeliveryRecord:
        data = dict(row)
        data["state"] = json.loads(data["state"]) if data["state"] else None
        return cls(**data)


@dataclass(frozen=True)
class Claim:
    """A won claim. ``previous`` is the row taken over (a crashed or failed attempt), if any."""

    channel: str
    slot: str
    owner: str
    previous: DeliveryRecord | None


class DeliveryStore:
    """The ``digest_deliveries`` table in the state database. Safe to share between threads."""

    def __init__(self, path: Location, *, stale_after: timedelta = DEFAULT_STALE_AFTER) -> None:
        self.path = path
        self.stale_after = stale_after
        with connection(self.path) as conn:
            migrate(conn, DELIVERIES)

    def _write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in one BEGIN IMMEDIATE transaction (retried while the database is busy)."""

        def attempt() -> T:
            with connection(self.path) as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return result

        return with_retry(attempt)

    def get(self, channel: str, slot: str) -> DeliveryRecord | None:
        """The row for (channel, slot), if any."""
        with connection(self.path) as conn:
            row = conn.execute(
                "SELECT * FROM digest_deliveries WHERE channel = ? AND slot = ?", (channel, slot)
            ).fetchone()
        return DeliveryRecord.from_row(row) if row else None

    def previous(self, channel: str) -> DeliveryRecord | None:
        """The most recently posted digest of ``channel``."""
        with connection(self.path) as conn:
            row = conn.execute(
                "SELECT * FROM digest_deliveries WHERE channel = ? AND status = 'posted' "
                "ORDER BY posted_at DESC LIMIT 1",
                (channel,),
            ).fetchone()
        return DeliveryRecord.from_row(row) if row else None

    def claimable(self, record: DeliveryRecord | None, now: datetime) -> bool:
        """Whether a claim on a slot in this state would be granted at ``now``."""
        if record is None:
            return True
        if record.status in ("posted", "skipped"):
            return False
        if record.status == "failed":
            return record.retry_at is None or record.retry_at <= _iso(now)
        return record.claimed_at <= _iso(now - self.stale_after) or owner_is_dead(record.owner)

    def claim(self, channel: str, slot: str, owner: str, now: datetime) -> Claim | None:
        """Claim (channel, slot) for ``owner``; None when it is posted or someone else holds it."""

        def txn(conn: Connection) -> Claim | None:
            row = conn.execute(
                "SELECT * FROM digest_deliveries WHERE channel = ? AND slot = ?", (channel, slot)
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO digest_deliveries (channel, slot, status, owner, claimed_at) "
                    "VALUES (?, ?, 'claimed', ?, ?)",
                    (channel, slot, owner, _iso(now)),
                )
                return Claim(channel, slot, owner, None)
            previous = DeliveryRecord.from_row(row)
            if not self.claimable(previous, now):
                return None
            conn.execute(
                "UPDATE digest_deliveries SET status = 'claimed', owner = ?, claimed_at = ? "
                "WHERE channel = ? AND slot = ?",
                (owner, _iso(now), channel, slot),
            )
            return Claim(channel, slot, owner, previous)

        return self._write(txn)

    def mark_posted(self, claim: Claim, *, ts: str | None, now: datetime, digest: Digest) -> None:
        """Record the posted message (``ts``) and the digest's facts, the next digest's comparison base.

        ``ts=None`` records an empty digest that was deliberately not posted (status ``skipped``).
        """
        status = "posted" if ts is not None else "skipped"
        state = json.dumps(digest.state(), ensure_ascii=False)

        def txn(conn: Connection) -> int:
            return conn.execute(
                "UPDATE digest_deliveries SET status = ?, posted_at = ?, ts = ?, since = ?, until = ?, state = ?, "
                "error = NULL WHERE channel = ? AND slot = ? AND owner = ?",
                (status, _iso(now), ts, _iso(digest.since), _iso(digest.until), state, claim.channel, claim.slot,
                 claim.owner),
            ).rowcount

        if self._write(txn) != 1:
            log.warning("digest claim was taken over before it was recorded channel=%s slot=%s status=%s",
                        claim.channel, claim.slot, status)

    def mark_failed(self, claim: Claim, *, now: datetime, error: str) -> datetime:
        """Record a failed post; returns when the next attempt may claim the slot (exponential backoff)."""
        attempts = (claim.previous.attempts if claim.previous else 0) + 1
        retry_at = now + min(timedelta(minutes=2 ** (attempts - 1)), _MAX_RETRY_DELAY)

        def txn(conn: Connection) -> None:
            conn.execute(
                "UPDATE digest_deliveries SET status = 'failed', attempts = ?, retry_at = ?, error = ? "
                "WHERE channel = ? AND slot = ? AND owner = ?",
                (attempts, _iso(retry_at), error[:500], claim.channel, claim.slot, claim.owner),
            )

        self._write(txn)
        return retry_at


@dataclass(frozen=True)
class DeliveryOutcome:
    """What :func:`deliver` did."""

    class Kind(Enum):
        POSTED = "posted"  # this call posted the digest
        RECOVERED = "recovered"  # a crashed owner had posted it; recorded, not posted again
        NOT_POSTED = "not_posted"  # empty, and empty digests are not posted (recorded as skipped)
        SKIPPED = "skipped"  # posted or being posted by someone else
        FAILED = "failed"  # Slack refused or was unreachable; will be retried

    kind: Kind
    ts: str | None = None
    error: str | None = None


def slot_key(channel: str, slot: str) -> str:
    """The key stored in a digest message's metadata, to recognise it in the channel history."""
    return f"{channel}/{slot}"


def deliver(
    store: DeliveryStore, client: WebClient, channel: str, slot: str, digest: Digest, owner: str, now: datetime,
    *, post_empty: bool = True,
) -> DeliveryOutcome:
    """Post ``digest`` to ``channel`` for ``slot`` unless that slot was already posted: exactly once."""
    claim = store.claim(channel, slot, owner, now)
    if claim is None:
        log.info("digest already posted or claimed channel=%s slot=%s", channel, slot)
        return DeliveryOutcome(DeliveryOutcome.Kind.SKIPPED)
    return post_claimed(store, client, claim, digest, now, post_empty=post_empty)


def post_claimed(
    store: DeliveryStore, client: WebClient, claim: Claim, digest: Digest, now: datetime, *, post_empty: bool = True,
) -> DeliveryOutcome:
    """Post ``digest`` for a slot this process has claimed, and record the outcome on the claim.

    A claim taken over from an interrupted attempt first looks for that attempt's message in the channel.
    """
    channel, slot = claim.channel, claim.slot
    held = store.get(channel, slot)
    if held is None or (held.owner, held.status) != (claim.owner, "claimed"):
        # Taken over while the digest was being built (a build slower than ``stale_after``): the taker posts it.
        log.warning("digest claim was taken over before posting channel=%s slot=%s", channel, slot)
        return DeliveryOutcome(DeliveryOutcome.Kind.SKIPPED)
    if digest.empty and not post_empty:
        store.mark_posted(claim, ts=None, now=now, digest=digest)
        log.info("digest empty, not posted channel=%s slot=%s", channel, slot)
        return DeliveryOutcome(DeliveryOutcome.Kind.NOT_POSTED)
    if claim.previous is not None:
        found = find_posted(client, channel, slot, since=datetime.fromisoformat(claim.previous.claimed_at),
                            headline=digest.headline)
        if found:
            store.mark_posted(claim, ts=found, now=now, digest=digest)
            log.info("digest found already posted by an interrupted run channel=%s slot=%s ts=%s",
                     channel, slot, found)
            return DeliveryOutcome(DeliveryOutcome.Kind.RECOVERED, ts=found)
    try:
        ts = _post(client, channel, digest, slot_key(channel, slot))
    except (SlackClientError, OSError) as exc:
        error = _describe(exc)
        retry_at = store.mark_failed(claim, now=now, error=error)
        log.warning("digest post failed channel=%s slot=%s error=%s retry_at=%s", channel, slot, error,
                    retry_at.isoformat())
        return DeliveryOutcome(DeliveryOutcome.Kind.FAILED, error=error)
    store.mark_posted(claim, ts=ts, now=now, digest=digest)
    log.info("digest posted channel=%s slot=%s ts=%s articles=%d stories=%d", channel, slot, ts,
             digest.article_count, len(digest.stories))
    return DeliveryOutcome(DeliveryOutcome.Kind.POSTED, ts=ts)


def _post(client: WebClient, channel: str, digest: Digest, key: str) -> str:
    """Post the digest's messages; the first carries the slot key as message metadata. Returns its ts."""
    first_ts = ""
    for i, message in enumerate(digest.messages()):
        extra: dict[str, Any] = {}
        if i == 0:
            extra["metadata"] = {"event_type": METADATA_EVENT, "event_payload": {"key": key}}
        response = client.chat_postMessage(channel=channel, **message.post_kwargs(), **extra)
        first_ts = first_ts or str(response.get("ts") or "")
    return first_ts


def find_posted(client: WebClient, channel: str, slot: str, *, since: datetime, headline: str) -> str | None:
    """The ts of this slot's digest if it is in ``channel`` already (posted after ``since``), else None.

    A message is the digest when its metadata carries the slot key, or, where the metadata did not come
    back (an API proxy that drops it), when a bot posted it and it shows the digest's ``headline``.
    Needs the ``channels:history`` (or ``groups:history``) scope; without it the check is skipped with a
    warning, so a crash in the instant between posting and recording could repeat that one digest.
    """
    key = slot_key(channel, slot)
    oldest = f"{(since - timedelta(minutes=1)).timestamp():.6f}"
    try:
        cursor: str | None = None
        while True:
            page = client.conversations_history(
                channel=channel, oldest=oldest, limit=200, include_all_metadata=True, cursor=cursor
            )
            for message in page.get("messages") or []:
                if _is_digest(message, key, headline):
                    return str(message.get("ts"))
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return None
    except (SlackClientError, OSError) as exc:
        log.warning("cannot check channel history for an interrupted digest channel=%s error=%s; posting",
                    channel, _describe(exc))
        return None


def _is_digest(message: dict[str, Any], key: str, headline: str) -> bool:
    metadata = message.get("metadata")
    if metadata:
        return bool(metadata.get("event_type") == METADATA_EVENT
                    and (metadata.get("event_payload") or {}).get("key") == key)
    return bool(message.get("bot_id")) and headline in str(message.get("text") or "").replace("*", "")


def _describe(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if response is not None and hasattr(response, "get"):
        return str(response.get("error") or exc)
    return f"{type(exc).__name__}: {exc}"


class DigestService:
    """Builds a channel's next digest: since its previous one, compared with it. :func:`deliver` posts it."""

    def __init__(self, store: DeliveryStore, corpus: StoryCorpus, summarize: StorySummarizer, mode: str) -> None:
        self.store = store
        self.corpus = corpus
        self.summarize = summarize
        self.mode = mode

    @classmethod
    def open(cls, location: Location, corpus: StoryCorpus, engine: Engine) -> DigestService:
        """The service on the state database at ``location``, summarising with ``engine``."""
        store = DeliveryStore(location)
        return cls(store, corpus, engine.summarize_passages, engine.mode)

    def build(self, channel: str | None, timezone: str, now: datetime, since: datetime | None = None) -> Digest:
        """The digest of what is new in ``channel`` since its previous digest (first one: the last 24 h).

        ``since`` overrides the start of the window (``sitrep digest --since``); with no channel there is
        no previous digest to start from or compare with.
        """
        previous = self.store.previous(channel) if channel else None
        if since is None:
            since = datetime.fromisoformat(previous.until) if previous and previous.until else now - FIRST_WINDOW
        return build_digest(
            self.corpus, self.summarize, since=since, until=now, timezone=timezone,
            previous_state=previous.state if previous else None, channel=channel, mode=self.mode,
        )
