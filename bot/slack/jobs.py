"""Durable Slack work shared by replicas: every event is a job in the state database, leased to the replica
that handles it, so an acknowledged event is answered exactly once even when a replica dies.

The life of an event:

1. **Recorded, then acknowledged.** The insert that de-duplicates the event (``slack_events``, keyed by
   ``event_id``) stores its body as a pending job leased to this replica (:meth:`JobLeases.record`); only then
   is Slack's request acknowledged. A retry of the event (on any replica) finds the row and is acknowledged and
   dropped: the job is already durable.
2. **Handled here.** Bolt dispatches the event on this replica. A listener that queues an answer *adopts* the
   job (:meth:`Job.adopt`); the worker finishes it when the reply is posted. A listener that only decides (a
   message not for the bot, a notice) leaves it, and the job is finished when dispatch returns
   (:meth:`JobLeases.settle`).
3. **Leased while it runs.** A background thread renews the leases of every job this replica holds, so an LLM
   answer may take minutes. The reply's first message ts is stored as soon as it is posted
   (:meth:`JobLeases.reply_posted`).
4. **Taken over when its replica dies.** The same thread takes pending jobs whose lease ran out (``FOR UPDATE
   SKIP LOCKED`` on PostgreSQL) and dispatches them again here; the answer then updates the message the dead
   replica posted, if it got that far, instead of posting a second one: the ts recorded on the job, or, when
   the replica died between Slack's reply and that record, the message in the thread whose metadata names the
   event (:data:`REPLY_EVENT_TYPE`, found by :meth:`bot.slack.core.SlackCore.find_reply`). A job taken over
   ``MAX_ATTEMPTS`` times (say, one that crashes its process) is left alone.

On SQLite (one process) the same table makes answering survive a ``kill -9``: a restarted ``sitrep serve``
takes over what its previous run had acknowledged.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.slack.state import LeasedJob, SlackState
from retrieval.errors import StoreError

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # the first delivery and two takeovers
MAX_AGE_SECONDS = 3600.0  # a question older than this is not answered any more (its replica died long ago)
TAKE_LIMIT = 16  # jobs taken over per tick, so one replica does not grab a dead one's whole backlog at once
REPLY_EVENT_TYPE = "sitrep_reply"  # message metadata on a reply's first message: {"event_id": …}


@dataclass
class Job:
    """An event this replica handles."""

    event_id: str
    reply_ts: str | None = None  # the first message of a reply posted (by a previous owner, or by us)
    adopted: bool = False  # a worker finishes it; otherwise it is finished when dispatch returns
    taken_over: bool = False  # another replica had it first (and may have posted a reply it did not record)

    def adopt(self) -> None:
        """A listener queued the work that finishes this job."""
        self.adopted = True

    def metadata(self) -> dict[str, object]:
        """Message metadata naming this job's event, put on the reply's first message."""
        return {"event_type": REPLY_EVENT_TYPE, "event_payload": {"event_id": self.event_id}}


Redispatch = Callable[[LeasedJob, Job], None]


class JobLeases:
    """The jobs one replica holds: recording, lease renewal, takeover of expired ones, and finishing."""

    def __init__(self, state: SlackState, lease_seconds: float = 30.0, poll_seconds: float = 1.0) -> None:
        self.state = state
        self.lease_seconds = lease_seconds
        self.poll_seconds = min(poll_seconds, lease_seconds / 4)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._held: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the jobs of this replica ---------------------------------------------------------------------

    def record(self, events: Sequence[tuple[str, str]]) -> list[Job | None]:
        """Record ``(event_id, body)`` events as jobs leased to this replica, in one statement; for each, its
        job, or None when it was recorded before (a retry). StoreError when the database cannot be written."""
        first = self.state.claim_events(events, self.owner, self.lease_seconds)
        jobs: list[Job | None] = []
        for event_id, _ in events:
            jobs.append(self._hold(Job(event_id)) if event_id in first else None)
            first.discard(event_id)  # the same id twice in one batch: the first delivery counts
        return jobs

    def held(self, event_id: object) -> Job | None:
        """The job this replica holds for ``event_id``, if any."""
        with self._lock:
            return self._held.get(str(event_id)) if event_id else None

    def settle(self, event_id: object) -> None:
        """Dispatch of the event returned: finish its job unless a listener adopted it."""
        job = self.held(event_id)
        if job is not None and not job.adopted:
            self.finish(job)

    def reply_posted(self, job: Job, ts: str) -> None:
        """The reply's first message exists: a takeover must update it, not post another."""
        if job.reply_ts == ts:
            return
        job.reply_ts = ts
        try:
            self.state.record_reply(job.event_id, ts)
        except StoreError as exc:
            log.warning("slack.job.reply_not_recorded event_id=%s error=%s", job.event_id, exc)

    def finish(self, job: Job) -> None:
        """The job is handled (answered, or its failure reported): done for every replica."""
        with self._lock:
            self._held.pop(job.event_id, None)
        try:
            if not self.state.finish_job(job.event_id, self.owner):
                log.warning("slack.job.lost_lease event_id=%s", job.event_id)
        except StoreError as exc:
            # Left pending: once the lease runs out another replica answers it again (updating our reply).
            log.error("slack.job.not_finished event_id=%s error=%s", job.event_id, exc)

    def _hold(self, job: Job) -> Job:
        with self._lock:
            self._held[job.event_id] = job
        return job

    # -- the background thread: renew, take over ------------------------------------------------------

    def start(self, redispatch: Redispatch) -> None:
        """Renew this replica's leases and take over expired jobs (handing each to ``redispatch``)."""
        self._thread = threading.Thread(target=self._loop, args=(redispatch,), name="sitrep-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and give up the leases still held, so another replica takes them over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        with self._lock:
            held = bool(self._held)
            self._held.clear()
        if held:
            try:
                self.state.release_leases(self.owner)
            except StoreError as exc:
                log.warning("slack.job.release_failed error=%s", exc)

    def _loop(self, redispatch: Redispatch) -> None:
        renew_every = self.lease_seconds / 3
        since_renewal = 0.0
        while not self._stop.wait(self.poll_seconds):
            since_renewal += self.poll_seconds
            try:
                if since_renewal >= renew_every:
                    since_renewal = 0.0
                    self.renew()
                self.take_over(redispatch)
            except StoreError as exc:
                log.warning("slack.jobs.tick_failed error=%s", exc)
            except Exception:  # the thread must outlive any one failure
                log.exception("slack.jobs.tick_crashed")

    def renew(self) -> None:
        """Extend the lease of every job this replica holds."""
        with self._lock:
            if not self._held:
                return
        self.state.renew_leases(self.owner, self.lease_seconds)

    def take_over(self, redispatch: Redispatch) -> int:
        """Take jobs whose replica died (lease expired) and hand them to ``redispatch``; returns how many."""
        taken = self.state.take_expired_jobs(self.owner, self.lease_seconds, limit=TAKE_LIMIT,
                                             max_attempts=MAX_ATTEMPTS, max_age=MAX_AGE_SECONDS)
        for leased in taken:
            log.info("slack.job.taken_over event_id=%s attempt=%d reply_posted=%s", leased.event_id,
                     leased.attempts, leased.reply_ts is not None)
            redispatch(leased, self._hold(Job(leased.event_id, reply_ts=leased.reply_ts, taken_over=True)))
        return len(taken)
