"""What the Slack bot remembers between requests, in the state database (SQLite, or PostgreSQL shared by
several ``sitrep serve`` replicas).

- ``slack_events``: every event received, by ``event_id``, so Slack's retries are dropped; and, while it is
  being handled, the event itself as a durable *job* leased to one replica (:mod:`bot.slack.jobs`): its body,
  the replica that owns it and until when, and the ts of the reply's first message once one is posted. The
  insert that records the job is the one that de-duplicates it, and it happens before Slack's request is
  acknowledged, so an acknowledged event is never lost: when its replica dies, the lease runs out and another
  replica takes the job over (``FOR UPDATE SKIP LOCKED`` on PostgreSQL).
- ``slack_messages``: ``(channel, ts)`` of messages already being answered, and by which event. Slack sends
  both ``app_mention`` and ``message`` (different event ids) for one message that mentions the bot in a thread
  it follows; claiming the message itself makes sure only one of them is answered.
- ``slack_threads``: threads the bot has answered in, so a follow-up there is answered without a mention.
- ``slack_answers`` / ``slack_feedback``: what was answered, and the 👍/👎 and reasons people gave.
- ``slack_removals``: an admin's ``remove <url>`` waiting for their confirmation (kept an hour).

Questions, answers, thread marks and feedback are kept ``SITREP_RETENTION_DAYS`` (:meth:`SlackState.purge`,
run by ``sitrep serve`` at start and every hour); :meth:`SlackState.forget_user` deletes one person's.

Claims are ``INSERT OR IGNORE``: the first claimer wins, atomically, across threads, processes and replicas.

On SQLite one connection serves every thread, under a lock; on PostgreSQL each statement borrows a pooled
connection, so a replica's threads do not queue behind one another. Another process (an ingest, a second
``sitrep serve``) may hold SQLite's write lock. A statement waits
``busy_timeout`` seconds for it and is then retried (``retrieval.statedb.with_retry``, ``retries`` attempts
with backoff); past that budget it fails with a :class:`~retrieval.errors.StoreError` a user can act on.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from bot.answer.results import Answer
from bot.render.slack import FEEDBACK_REASONS
from retrieval.errors import StoreError
from retrieval.statedb import (
    Connection,
    DatabaseError,
    Location,
    Migration,
    connect,
    connection,
    describe,
    engine,
    is_postgres,
    migrate,
    register,
    transaction,
    with_retry,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

EVENT_TTL_SECONDS = 24 * 3600  # Slack retries within minutes; a day is plenty and keeps the table small
THREAD_TTL_SECONDS = 30 * 24 * 3600  # follow-ups in a month-old thread are still answered
REMOVAL_TTL_SECONDS = 3600  # an admin's removal request waits this long for their confirmation
DEFAULT_RETENTION_DAYS = 90
PURGE_INTERVAL_SECONDS = 600.0


_SCHEMA = """
CREATE TABLE IF NOT EXISTS slack_events (
    event_id TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS slack_messages (
    channel TEXT NOT NULL,
    ts TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (channel, ts)
);
CREATE TABLE IF NOT EXISTS slack_threads (
    channel TEXT NOT NULL,
    thread_ts TEXT NOT NULL,
    answered_at REAL NOT NULL,
    PRIMARY KEY (channel, thread_ts)
);
CREATE TABLE IF NOT EXISTS slack_answers (
    answer_id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    thread_ts TEXT,
    "user" TEXT,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL,
    mode TEXT NOT NULL,
    abstained INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS slack_feedback (
    answer_id TEXT NOT NULL,
    "user" TEXT NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    reason TEXT,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (answer_id, "user")
);
CREATE TABLE IF NOT EXISTS slack_removals (
    request_id TEXT PRIMARY KEY,
    "user" TEXT NOT NULL,
    channel TEXT NOT NULL,
    doc_ids TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS slack_events_seen ON slack_events (seen_at);
CREATE INDEX IF NOT EXISTS slack_messages_seen ON slack_messages (seen_at);
CREATE INDEX IF NOT EXISTS slack_answers_created ON slack_answers (created);
CREATE INDEX IF NOT EXISTS slack_answers_user ON slack_answers ("user");
CREATE INDEX IF NOT EXISTS slack_feedback_updated ON slack_feedback (updated);
CREATE INDEX IF NOT EXISTS slack_feedback_user ON slack_feedback ("user");
"""
# Events become durable jobs. Rows from before are done (state's default); REAL and INTEGER are translated
# for PostgreSQL in ALTER TABLE as in CREATE TABLE.
_JOBS = """
ALTER TABLE slack_events ADD COLUMN state TEXT NOT NULL DEFAULT 'done';
ALTER TABLE slack_events ADD COLUMN body TEXT;
ALTER TABLE slack_events ADD COLUMN owner TEXT;
ALTER TABLE slack_events ADD COLUMN lease_until REAL NOT NULL DEFAULT 0;
ALTER TABLE slack_events ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE slack_events ADD COLUMN reply_ts TEXT;
ALTER TABLE slack_messages ADD COLUMN event_id TEXT;
CREATE INDEX IF NOT EXISTS slack_events_pending ON slack_events (state, lease_until);
"""
SLACK = register("slack", [
    Migration(1, _SCHEMA, "events, messages, threads, answers, feedback, removals"),
    Migration(2, _JOBS, "events as leased jobs (body, owner, lease, reply ts); message claims name their event"),
])



@dataclass(frozen=True)
class LeasedJob:
    """A pending event taken over from a replica whose lease ran out."""

    event_id: str
    body: str
    reply_ts: str | None  # the first message of a reply already posted: update it rather than post again
    attempts: int


@dataclass(frozen=True)
class FeedbackRow:
    """One person's feedback on one answer."""

    answer_id: str
    user: str
    rating: str  # "up" | "down"
    reason: str | None
    question: str
    answer: str
    citations: list[dict[str, object]]


@dataclass(frozen=True)
class PendingRemoval:
    """An admin's removal request, shown to them with confirm/cancel buttons."""

    request_id: str
    user: str
    channel: str
    doc_ids: list[str]


class SlackState:
    """The Slack bot's tables in the state database. Safe to share between threads."""

    def __init__(
        self,
        location: Location,
        clock: Callable[[], float] = time.time,
        *,
        busy_timeout: float = 30.0,
        retries: int = 5,
        retry_delay: float = 0.2,
        retention_days: float = DEFAULT_RETENTION_DAYS,
    ) -> None:
        self._location = location
        self.retention_seconds = retention_days * 86400
        # SQLite: one connection for every thread, under the lock. PostgreSQL: a pooled one per statement.
        self._conn: Connection | None = None if is_postgres(location) else connect(location)
        self._lock = threading.Lock()
        self._clock = clock
        self._retries = retries
        self._retry_delay = retry_delay
        # Roughly how long a statement may wait for another process's lock before giving up.
        self._budget = busy_timeout * retries + retry_delay * (2 ** max(retries - 1, 0) - 1)
        self._last_purge = 0.0
        try:
            if self._conn is not None:
                self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
                migrate(self._conn, SLACK)
            else:
                with connection(location) as conn:
                    migrate(conn, SLACK)
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(cls, location: Location, retention_days: float = DEFAULT_RETENTION_DAYS) -> SlackState:
        """Open the state database at ``location`` (a SQLite file or a PostgreSQL URL)."""
        return cls(location, retention_days=retention_days)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()

    def _run(self, statement: Callable[[Connection], T]) -> T:
        """Run a statement, retried while the database is locked; StoreError past the budget."""
        try:
            if self._conn is None:
                return with_retry(lambda: self._pooled(statement), attempts=self._retries, delay=self._retry_delay)
            with self._lock:
                conn = self._conn
                return with_retry(lambda: statement(conn), attempts=self._retries, delay=self._retry_delay)
        except DatabaseError as exc:
            log.error("slack.state.failed location=%s error=%s", describe(self._location), exc)
            raise StoreError(self._describe(exc)) from exc

    def _pooled(self, statement: Callable[[Connection], T]) -> T:
        with connection(self._location) as conn:
            return statement(conn)

    def _describe(self, exc: Exception) -> str:
        message = str(exc).lower()
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message):
            return (f"sitrep's state database stayed locked by another process for over {round(self._budget, 1):g} "
                    "seconds; try again in a minute, and check for a stuck sitrep process.")
        if self._conn is None:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return (f"sitrep's state database failed ({first}); check SITREP_DATABASE_URL and that PostgreSQL "
                    "is running.")
        return f"sitrep's state database failed ({exc}); check the disk and SITREP_DATA_DIR."

    def _write(self, sql: str, params: Sequence[object]) -> int:
        """Run one write statement; return the number of rows it changed."""
        return self._run(lambda conn: conn.execute(sql, params).rowcount)

    def _read(self, sql: str, params: Sequence[object]) -> list[sqlite3.Row]:
        return self._run(lambda conn: list(conn.execute(sql, params).fetchall()))

    def _deletes(self, statements: Sequence[tuple[str, str, Sequence[object]]]) -> dict[str, int]:
        """Run ``(name, DELETE statement, params)`` in one transaction; rows deleted by name."""

        def txn(conn: Connection) -> dict[str, int]:
            with transaction(conn) as c:
                return {name: c.execute(sql, params).rowcount for name, sql, params in statements}

        return self._run(txn)

    # -- de-duplication -------------------------------------------------------------------------------

    def claim_event(self, event_id: str, body: str | None = None, owner: str | None = None,
                    lease_seconds: float = 0.0) -> bool:
        """True the first time ``event_id`` is seen (within the expiry window), False for a repeat.

        With ``body`` the event is recorded, in the same insert, as a pending job leased to ``owner`` for
        ``lease_seconds``; without, as done (nothing to take over)."""
        return event_id in self.claim_events([(event_id, body)], owner, lease_seconds)

    def claim_events(self, events: Sequence[tuple[str, str | None]], owner: str | None = None,
                     lease_seconds: float = 0.0) -> set[str]:
        """:meth:`claim_event` for several ``(event_id, body)`` at once, in one statement (events arriving
        together cost one commit); returns the ids seen for the first time. Of one id given twice, the first
        counts."""
        self._maybe_purge()
        now = self._clock()
        rows: dict[str, tuple[object, ...]] = {}
        for event_id, body in events:
            rows.setdefault(event_id, (event_id, now, "done" if body is None else "pending", body, owner,
                                       now + lease_seconds))
        if not rows:
            return set()
        values = ", ".join(["(?, ?, ?, ?, ?, ?, 1)"] * len(rows))
        sql = ("INSERT OR IGNORE INTO slack_events (event_id, seen_at, state, body, owner, lease_until, attempts) "
               f"VALUES {values} RETURNING event_id")
        params = [value for row in rows.values() for value in row]
        return {row[0] for row in self._run(lambda conn: conn.execute(sql, params).fetchall())}

    def claim_message(self, channel: str, ts: str, event_id: str | None = None) -> bool:
        """True for the first claim of the message ``(channel, ts)``; later claims (other events) get False.

        A claim made for ``event_id`` is the same event's again when its job is taken over: True."""
        self._maybe_purge()
        if self._write(
            "INSERT OR IGNORE INTO slack_messages (channel, ts, seen_at, event_id) VALUES (?, ?, ?, ?)",
            (channel, ts, self._clock(), event_id),
        ) == 1:
            return True
        if event_id is None:
            return False
        rows = self._read("SELECT event_id FROM slack_messages WHERE channel = ? AND ts = ?", (channel, ts))
        return bool(rows) and rows[0]["event_id"] == event_id

    # -- jobs: events leased to one replica until done ------------------------------------------------

    def renew_leases(self, owner: str, lease_seconds: float) -> int:
        """Extend every pending job ``owner`` holds by ``lease_seconds`` from now; returns how many."""
        return self._write(
            "UPDATE slack_events SET lease_until = ? WHERE state = 'pending' AND owner = ?",
            (self._clock() + lease_seconds, owner),
        )

    def release_leases(self, owner: str) -> int:
        """``owner`` is stopping: its pending jobs may be taken over at once."""
        return self._write(
            "UPDATE slack_events SET lease_until = 0 WHERE state = 'pending' AND owner = ?", (owner,)
        )

    def take_expired_jobs(self, owner: str, lease_seconds: float, *, limit: int, max_attempts: int,
                          max_age: float) -> list[LeasedJob]:
        """Take up to ``limit`` pending jobs whose lease ran out (their replica died), oldest first, leasing
        them to ``owner``. Jobs tried ``max_attempts`` times or older than ``max_age`` seconds are left alone.

        One statement: on PostgreSQL its rows are locked ``FOR UPDATE SKIP LOCKED``, so replicas taking at
        the same moment get different jobs; SQLite runs it as one write transaction."""
        now = self._clock()
        due = ("state = 'pending' AND lease_until < ? AND attempts < ? AND seen_at >= ?")
        params = (now, max_attempts, now - max_age)
        if not self._read(f"SELECT 1 FROM slack_events WHERE {due} LIMIT 1", params):
            return []  # the usual case: a read, not a write, every tick

        def take(conn: Connection) -> list[LeasedJob]:
            lock = " FOR UPDATE SKIP LOCKED" if engine(conn) == "postgresql" else ""
            # The pick is a CTE, evaluated once: a subquery in WHERE may be rescanned per row, each scan
            # skipping different locked rows, and take more than ``limit``.
            rows = conn.execute(
                f"WITH picked AS (SELECT event_id FROM slack_events WHERE {due} "
                f"ORDER BY seen_at, event_id LIMIT ?{lock}) "
                "UPDATE slack_events SET owner = ?, lease_until = ?, attempts = attempts + 1 "
                f"WHERE {due} AND event_id IN (SELECT event_id FROM picked) "
                "RETURNING event_id, body, reply_ts, attempts",
                (*params, limit, owner, now + lease_seconds, *params),
            ).fetchall()
            return [LeasedJob(r["event_id"], r["body"], r["reply_ts"], int(r["attempts"])) for r in rows]

        return self._run(take)

    def record_reply(self, event_id: str, reply_ts: str) -> None:
        """The first message of the job's reply is posted: a takeover updates it instead of posting again."""
        self._write("UPDATE slack_events SET reply_ts = ? WHERE event_id = ?", (reply_ts, event_id))

    def finish_job(self, event_id: str, owner: str) -> bool:
        """The job is handled: done, and its body (the person's message) dropped. False when ``owner`` no
        longer held it (its lease ran out and another replica took it)."""
        return self._write(
            "UPDATE slack_events SET state = 'done', body = NULL, lease_until = 0 "
            "WHERE event_id = ? AND state = 'pending' AND owner = ?", (event_id, owner),
        ) == 1

    def pending_jobs(self) -> int:
        """Jobs recorded and not done (on every replica)."""
        return int(self._read("SELECT COUNT(*) FROM slack_events WHERE state = 'pending'", ())[0][0])

    def purge(self) -> dict[str, int]:
        """Delete what is past its time: event ids and message claims (a day), thread marks (30 days),
        removal requests (an hour), and questions, answers and feedback (the retention period, which
        also caps the others). Returns the rows deleted per table."""
        now = self._clock()
        keep = self.retention_seconds
        counts = self._deletes([
            ("events", "DELETE FROM slack_events WHERE seen_at < ?", (now - min(EVENT_TTL_SECONDS, keep),)),
            ("messages", "DELETE FROM slack_messages WHERE seen_at < ?", (now - min(EVENT_TTL_SECONDS, keep),)),
            ("threads", "DELETE FROM slack_threads WHERE answered_at < ?", (now - min(THREAD_TTL_SECONDS, keep),)),
            ("removals", "DELETE FROM slack_removals WHERE created < ?", (now - REMOVAL_TTL_SECONDS,)),
            ("answers", "DELETE FROM slack_answers WHERE created < ?", (now - keep,)),
            ("feedback", "DELETE FROM slack_feedback WHERE updated < ?", (now - keep,)),
        ])
        self._last_purge = now
        return counts

    def forget_user(self, user: str) -> dict[str, int]:
        """Delete one person's records: the questions they asked with the answers (and everyone's feedback
        on those answers, which keeps a copy of the question), the marks of threads they asked in, the
        feedback they gave, and their pending removal requests. Returns the rows deleted per kind."""
        theirs = "SELECT answer_id FROM slack_answers WHERE \"user\" = ?"
        return self._deletes([
            ("threads", "DELETE FROM slack_threads WHERE (channel, thread_ts) IN "
                        "(SELECT channel, thread_ts FROM slack_answers WHERE \"user\" = ?)", (user,)),
            ("feedback_on_their_answers", f"DELETE FROM slack_feedback WHERE answer_id IN ({theirs}) AND \"user\" != ?",
             (user, user)),
            ("feedback", "DELETE FROM slack_feedback WHERE \"user\" = ?", (user,)),
            ("answers", "DELETE FROM slack_answers WHERE \"user\" = ?", (user,)),
            ("removals", "DELETE FROM slack_removals WHERE \"user\" = ?", (user,)),
        ])

    def _maybe_purge(self) -> None:
        if self._clock() - self._last_purge >= PURGE_INTERVAL_SECONDS:
            self.purge()

    # -- threads --------------------------------------------------------------------------------------

    def mark_thread(self, channel: str, thread_ts: str) -> None:
        """Remember that the bot answered in this thread."""
        self._write(
            "INSERT INTO slack_threads (channel, thread_ts, answered_at) VALUES (?, ?, ?) "
            "ON CONFLICT (channel, thread_ts) DO UPDATE SET answered_at = excluded.answered_at",
            (channel, thread_ts, self._clock()),
        )

    def is_bot_thread(self, channel: str, thread_ts: str) -> bool:
        """Whether the bot has answered in this thread."""
        rows = self._read(
            "SELECT 1 FROM slack_threads WHERE channel = ? AND thread_ts = ?", (channel, thread_ts)
        )
        return bool(rows)

    # -- answers and feedback -------------------------------------------------------------------------

    def save_answer(
        self, answer_id: str, answer: Answer, *, channel: str, thread_ts: str | None, user: str | None
    ) -> None:
        """Keep what was answered, so feedback on it can be stored with the question and citations."""
        self._write(
            "INSERT INTO slack_answers (answer_id, channel, thread_ts, \"user\", question, answer, "
            "citations, mode, abstained, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (answer_id) DO UPDATE SET question = excluded.question, answer = excluded.answer, "
            "citations = excluded.citations, mode = excluded.mode, abstained = excluded.abstained",
            (
                answer_id,
                channel,
                thread_ts,
                user,
                answer.topic if answer.topic is not None else answer.question,
                answer.answer,
                json.dumps([c.to_json() for c in answer.citations], ensure_ascii=False),
                answer.mode,
                int(answer.abstained),
                self._clock(),
            ),
        )

    def record_rating(self, answer_id: str, user: str, rating: str) -> bool:
        """Store a 👍 (``"up"``) or 👎 (``"down"``); False when the answer is unknown."""
        if rating not in ("up", "down"):
            raise ValueError(f"rating must be 'up' or 'down', not {rating!r}")
        now = self._clock()
        changed = self._write(
            "INSERT INTO slack_feedback (answer_id, \"user\", rating, reason, question, answer, citations, created, "
            "updated) SELECT answer_id, ?, ?, NULL, question, answer, citations, ?, ? FROM slack_answers "
            "WHERE answer_id = ? "
            "ON CONFLICT (answer_id, \"user\") DO UPDATE SET rating = excluded.rating, updated = excluded.updated",
            (user, rating, now, now, answer_id),
        )
        if not changed:
            log.warning("feedback for unknown answer answer_id=%s", answer_id)
        return changed > 0

    def record_reason(self, answer_id: str, user: str, reason: str) -> bool:
        """Attach a reason to this user's rating of the answer; False when there is no rating yet."""
        if reason not in FEEDBACK_REASONS:
            raise ValueError(f"unknown feedback reason {reason!r}")
        return self._write(
            "UPDATE slack_feedback SET reason = ?, updated = ? WHERE answer_id = ? AND \"user\" = ?",
            (reason, self._clock(), answer_id, user),
        ) > 0

    def feedback(self, answer_id: str | None = None) -> list[FeedbackRow]:
        """Stored feedback, oldest first (for one answer, or all)."""
        sql = "SELECT * FROM slack_feedback"
        params: tuple[object, ...] = ()
        if answer_id is not None:
            sql += " WHERE answer_id = ?"
            params = (answer_id,)
        rows = self._read(sql + " ORDER BY created", params)
        return [
            FeedbackRow(
                answer_id=row["answer_id"],
                user=row["user"],
                rating=row["rating"],
                reason=row["reason"],
                question=row["question"],
                answer=row["answer"],
                citations=json.loads(row["citations"]),
            )
            for row in rows
        ]

    # -- admin removals awaiting confirmation ---------------------------------------------------------

    def save_removal(self, request_id: str, user: str, channel: str, doc_ids: Sequence[str]) -> None:
        """Keep a removal request until its admin confirms or cancels it (or it expires)."""
        self._write(
            "INSERT INTO slack_removals (request_id, \"user\", channel, doc_ids, created) VALUES (?, ?, ?, ?, ?)",
            (request_id, user, channel, json.dumps(list(doc_ids)), self._clock()),
        )

    def removal(self, request_id: str) -> PendingRemoval | None:
        """The pending request, or None when it is unknown, done, cancelled or expired."""
        rows = self._read(
            "SELECT request_id, \"user\", channel, doc_ids FROM slack_removals WHERE request_id = ? AND created >= ?",
            (request_id, self._clock() - REMOVAL_TTL_SECONDS),
        )
        if not rows:
            return None
        row = rows[0]
        return PendingRemoval(row["request_id"], row["user"], row["channel"], json.loads(row["doc_ids"]))

    def take_removal(self, request_id: str) -> bool:
        """Claim a pending request for confirming or cancelling: True for exactly one caller."""
        return self._write("DELETE FROM slack_removals WHERE request_id = ?", (request_id,)) == 1
