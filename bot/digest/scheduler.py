"""The jobs inside ``sitrep serve``: feed polling and the daily digests.

The decisions live in :meth:`FeedPoller.tick` and :meth:`DigestRunner.tick`, which take the current
time as an argument, so tests drive them with any clock and never sleep. APScheduler (3.x,
BackgroundScheduler) only calls them: the digest tick at seconds 0, 20 and 40 of every minute (so a
digest set for 08:00 posts within a second or two of it), the feed tick every ``TICK_SECONDS``, and both
once at start-up, which is how a digest missed during downtime is caught up.

Every replica of ``sitrep serve`` runs both jobs on the shared state database; claims make the work happen
once: a digest slot is claimed before its digest is built (:mod:`bot.digest.delivery`), a feed's poll is
leased before it is fetched (:meth:`bot.feeds.registry.FeedRegistry.claim`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk import WebClient

from bot.digest.delivery import (
    DeliveryOutcome,
    DigestService,
    close_owner,
    new_owner,
    owner_is_dead,
    post_claimed,
)
from bot.digest.schedule import DigestSchedule, due_day, load_schedules, next_run, scheduled_at
from bot.feeds.registry import FeedRegistry, FeedState
from bot.settings import Settings
from retrieval.documents import Article, LoadFailure
from retrieval.errors import SitrepError, SourceError
from retrieval.loaders import FeedFetch, FetchOptions, fetch_feed

if TYPE_CHECKING:
    from bot.answer.engine import Engine
    from retrieval.corpus import Corpus

log = logging.getLogger(__name__)

TICK_SECONDS = 20  # how often the jobs look at the clock
MIN_LATE = timedelta(minutes=1)  # a tick can come this late, so a smaller SITREP_DIGEST_MAX_LATE_HOURS is raised
BUILD_RETRY = timedelta(minutes=5)  # after a digest could not be built (e.g. the store was unreachable)

Clock = Callable[[], datetime]
FeedFetcher = Callable[..., FeedFetch]


class Ingests(Protocol):
    def ingest_articles(self, articles: Sequence[Article | LoadFailure], progress: bool = False,
                        date_order: str | None = None) -> Any: ...


@dataclass(frozen=True)
class FeedPoll:
    """What one feed poll did."""

    url: str
    status: str  # "ok" | "not_modified" | "error"
    added: int = 0
    error: str | None = None


class FeedPoller:
    """Polls the due feeds, ingests new entries, and backs off feeds that fail."""

    def __init__(self, registry: FeedRegistry, corpus: Ingests, options: FetchOptions,
                 fetch: FeedFetcher = fetch_feed, owner: str | None = None) -> None:
        self.registry = registry
        self.corpus = corpus
        self.options = options
        self.fetch = fetch
        self.owner = owner or new_owner()

    def tick(self, now: datetime) -> list[FeedPoll]:
        """Poll every feed due at ``now`` whose lease this poller wins. One feed's failure never stops the others.

        Each feed is claimed just before its poll, so replicas ticking together share the due feeds out.
        """
        polls = []
        for feed in self.registry.due(now):
            dead = feed.claimed_by if feed.claimed_by and owner_is_dead(feed.claimed_by) else None
            claimed = self.registry.claim(feed, self.owner, now, take_from=dead)
            if claimed is not None:  # else another replica polls it, or already has
                polls.append(self._poll(claimed, now))
        return polls

    def close(self) -> None:
        """This poller is done: a lease it left behind may be taken over at once."""
        close_owner(self.owner)

    def _poll(self, feed: FeedState, now: datetime) -> FeedPoll:
        url = feed.url
        try:
            result = self.fetch(url, etag=feed.etag, last_modified=feed.last_modified, options=self.options,
                                known_links=self.registry.known_links(url))
            added = self._ingest(url, result, now, feed.date_order) if result.status == "ok" else 0
        except SourceError as exc:
            return self._failed(url, now, str(exc))
        except SitrepError as exc:  # the store, not the feed: still retried with backoff
            return self._failed(url, now, f"ingest failed: {exc}")
        except Exception as exc:  # a bug or an unexpected library error must not stop the other feeds
            log.exception("feed poll crashed url=%s", url)
            return self._failed(url, now, f"{type(exc).__name__}: {exc}")
        self.registry.record_success(url, now, status=result.status, etag=result.etag,
                                     last_modified=result.last_modified, title=result.title,
                                     entry_problems=entry_problems(result.failures))
        log.info("feed polled url=%s status=%s new=%d entry_failures=%d", url, result.status, added,
                 len(result.failures))
        return FeedPoll(url, result.status, added)

    def _ingest(self, url: str, result: FeedFetch, now: datetime, date_order: str | None) -> int:
        if not result.articles and not result.failures:
            return 0
        report = self.corpus.ingest_articles([*result.articles, *result.failures], date_order=date_order)
        for warning in report.warnings:
            log.warning("feed entry warning feed=%s source=%s warning=%s", url, warning.source, warning.warning)
        # Entries that failed are not remembered, so the next poll tries them again; entries refused because
        # they were removed (`sitrep remove`) are, so they are not fetched again.
        failed = {f.source for f in report.failed} - set(report.refused)
        self.registry.remember_links(
            url, [link for a in result.articles if a.source_key not in failed for link in (a.url, a.source_key)],
            now,
        )
        return int(report.added) + int(report.updated)

    def _failed(self, url: str, now: datetime, error: str) -> FeedPoll:
        retry_at = self.registry.record_failure(url, now, error)
        log.warning("feed poll failed url=%s error=%s retry_at=%s", url, error, retry_at.isoformat())
        return FeedPoll(url, "error", error=error)


def entry_problems(failures: Sequence[LoadFailure]) -> str | None:
    """One line for a feed's status about the entries that could not be ingested, or None."""
    if not failures:
        return None
    first = failures[0]
    count = f"{len(failures)} entries" if len(failures) > 1 else "1 entry"
    more = ", the first" if len(failures) > 1 else ""
    return f"{count} not ingested{more}: {first.source}: {first.error}"


class DigestRunner:
    """Posts each schedule's digest once per local date, catching up after downtime within a limit."""

    def __init__(self, service: DigestService, client: WebClient, schedules: Sequence[DigestSchedule], *,
                 max_late: timedelta, post_empty: bool, owner: str | None = None) -> None:
        self.service = service
        self.client = client
        self.schedules = list(schedules)
        self.max_late = max(max_late, MIN_LATE)
        self.post_empty = post_empty
        self.owner = owner or new_owner()
        self._reported: set[tuple[str, str]] = set()  # missed slots already logged
        self._build_retry: dict[str, datetime] = {}

    def tick(self, now: datetime) -> list[DeliveryOutcome]:
        """Post every digest that is due at ``now`` and not posted yet. Each schedule is independent."""
        outcomes = []
        for schedule in self.schedules:
            try:
                outcome = self._run(schedule, now)
            except Exception:  # one channel's failure must not stop the other channels' digests
                log.exception("digest run failed channel=%s", schedule.channel)
                self._build_retry[schedule.channel] = now + BUILD_RETRY
                continue
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    def _run(self, schedule: DigestSchedule, now: datetime) -> DeliveryOutcome | None:
        day = due_day(schedule, now)
        slot = day.isoformat()
        store = self.service.store
        if not store.claimable(store.get(schedule.channel, slot), now):
            return None
        late = now - scheduled_at(schedule, day)
        if late > self.max_late:
            if (schedule.channel, slot) not in self._reported:
                self._reported.add((schedule.channel, slot))
                # A channel that never had a digest (a first start) has missed nothing worth a warning.
                level = logging.WARNING if store.previous(schedule.channel) else logging.INFO
                log.log(level, "digest missed channel=%s date=%s late_hours=%.1f max_late_hours=%.1f",
                        schedule.channel, slot, late.total_seconds() / 3600, self.max_late.total_seconds() / 3600)
            return None
        if now < self._build_retry.get(schedule.channel, now):
            return None
        # Claimed before it is built: of several replicas only the winner summarises (an LLM call per story).
        claim = store.claim(schedule.channel, slot, self.owner, now)
        if claim is None:
            return None
        try:
            digest = self.service.build(schedule.channel, schedule.timezone, now)
        except Exception as exc:
            store.mark_failed(claim, now=now, error=f"digest not built: {type(exc).__name__}: {exc}")
            raise
        return post_claimed(store, self.client, claim, digest, now, post_empty=self.post_empty)

    def close(self) -> None:
        """This runner is done: a claim it left unfinished may be taken over at once."""
        close_owner(self.owner)


class SchedulerHandle:
    """The running jobs of ``sitrep serve``."""

    def __init__(self, scheduler: BackgroundScheduler, runner: DigestRunner, poller: FeedPoller) -> None:
        self.scheduler = scheduler
        self.runner = runner
        self.poller = poller

    def shutdown(self) -> None:
        """Stop the jobs, letting a running one (a digest being posted) finish."""
        self.scheduler.shutdown(wait=True)
        self.runner.close()
        self.poller.close()


def start_scheduler(settings: Settings, corpus: Corpus, engine: Engine, client: WebClient,
                    clock: Clock = lambda: datetime.now(UTC)) -> SchedulerHandle:
    """Start feed polling and the digest jobs in background threads. ConfigError on a bad schedule."""
    schedules = load_schedules(settings.digest)
    runner = DigestRunner(DigestService.open(settings.state_location, corpus, engine), client, schedules,
                          max_late=timedelta(hours=settings.digest_max_late_hours),
                          post_empty=settings.digest_post_empty)
    poller = FeedPoller(FeedRegistry.open(settings.state_location, settings.feed_settings), corpus, corpus.config.fetch)
    scheduler = BackgroundScheduler(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1,
                                                                "misfire_grace_time": TICK_SECONDS * 3})
    start = datetime.now(UTC)  # APScheduler's own times are real; ``clock`` is what the jobs see
    scheduler.add_job(lambda: runner.tick(clock()), CronTrigger(second=f"*/{TICK_SECONDS}", timezone=UTC),
                      id="sitrep-digest", name="daily digest", next_run_time=start)
    scheduler.add_job(lambda: poller.tick(clock()), IntervalTrigger(seconds=TICK_SECONDS), id="sitrep-feeds",
                      name="feed polling", next_run_time=start)
    scheduler.start()
    now = clock()
    log.info("scheduler started digests=%s feeds=%d poll_minutes=%s",
             "; ".join(f"{s.describe()} (next {next_run(s, now).astimezone(s.tz):%Y-%m-%d %H:%M %Z})"
                       for s in schedules) or "none",
             len(poller.registry.feeds()), settings.feed_poll_minutes)
    return SchedulerHandle(scheduler, runner, poller)
