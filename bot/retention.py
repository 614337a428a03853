"""Keeping stored questions, answers, thread marks and feedback no longer than ``SITREP_RETENTION_DAYS``.

``sitrep serve`` purges once at start (so a lowered setting takes effect at the next start) and then every
``PURGE_EVERY`` on the scheduler it already runs; the Slack state also purges as it records new events.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.slack.state import SlackState
from retrieval.errors import StoreError

log = logging.getLogger(__name__)

PURGE_EVERY = timedelta(hours=1)


def purge_expired(state: SlackState) -> dict[str, int] | None:
    """Delete what is past its retention and log the counts; None (logged) when the database failed."""
    try:
        counts = state.purge()
    except StoreError as exc:  # the next run tries again; serving goes on
        log.warning("retention.purge_failed error=%s", exc)
        return None
    log.info("retention.purged days=%g %s", state.retention_seconds / 86400,
             " ".join(f"{name}={n}" for name, n in counts.items()))
    return counts


def start_retention(scheduler: BaseScheduler, state: SlackState) -> dict[str, int] | None:
    """Purge now, and every ``PURGE_EVERY`` on ``scheduler``. Returns the counts of the first purge."""
    counts = purge_expired(state)
    scheduler.add_job(lambda: purge_expired(state), IntervalTrigger(seconds=PURGE_EVERY.total_seconds()),
                      id="sitrep-retention", name="retention purge")
    return counts
