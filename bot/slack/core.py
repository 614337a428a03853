"""What every Slack listener works with: where a reply goes (:class:`Target`), and :class:`SlackCore`, the
bot's shared parts — the Web API client, the state database, the worker pool and rate limit, the engine
and the corpus — with posting, notices and admission of work.

Listeners only decide and admit: they de-duplicate, check the channel and the rate limit, and hand the job to
the :class:`~bot.slack.workers.WorkerPool`; Slack's request is acknowledged at once. Workers answer and report
every failure in the thread in one sentence. An event's work is also a durable job (:mod:`bot.slack.jobs`): the
worker finishes it, and records the reply's first message as soon as it is posted.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError
from slack_sdk.webhook import WebhookClient

from bot.answer.results import Answer
from bot.errors import SlackSetupError, describe_failure
from bot.render.slack import SlackMessage, render_answer, render_notice
from bot.settings import Settings
from bot.slack.identity import BotIdentity, make_client
from bot.slack.jobs import REPLY_EVENT_TYPE, Job, JobLeases
from bot.slack.state import SlackState
from bot.slack.workers import RateLimiter, WorkerPool
from retrieval.errors import SitrepError, StoreError

if TYPE_CHECKING:
    from bot.answer.engine import Engine
    from retrieval.corpus import Corpus

log = logging.getLogger(__name__)

NOT_ALLOWED = (
    "Sorry, I only answer in the channels my admins have enabled; please ask me there or in a direct message."
)
OVER_CAPACITY = "Sorry, I'm over capacity right now; please ask again in a minute."


@dataclass(frozen=True)
class Target:
    """Where replies to one request go, and who asked."""

    channel: str
    thread_ts: str | None  # None: a new top-level message (a summary in a channel)
    user: str
    team: str | None = None
    message_ts: str | None = None  # the user's message being answered
    assistant: bool = False  # an assistant-panel thread: status updates apply
    response_url: str | None = None  # set for private (ephemeral) replies to a slash command
    bot_user_id: str | None = None
    bot_id: str | None = None

class _CountingExecutor(ThreadPoolExecutor):
    """A thread pool that knows how many submitted tasks have not finished (for :meth:`SlackBot.wait_idle`)."""

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._count_lock = threading.Lock()
        self.pending = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._count_lock:
            self.pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _: Future[Any]) -> None:
        with self._count_lock:
            self.pending -= 1


class SlackCore:
    """The bot's shared parts and the operations every listener uses. :class:`bot.slack.app.SlackBot` adds the
    Bolt app and its listeners."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        corpus: Corpus,
        *,
        client: WebClient | None = None,
        identity: BotIdentity | None = None,
        state: SlackState | None = None,
        pool: WorkerPool | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.clock = clock  # what scheduled work (the /digest command) takes as now
        self.engine = engine
        self.corpus = corpus
        self.client = client or make_client(settings)
        if not self.client.token:
            raise SlackSetupError(
                "SLACK_BOT_TOKEN is not set; install the app to your workspace and copy its Bot User OAuth Token "
                "(xoxb-…) into .env."
            )
        self.identity = identity or BotIdentity(self.client)
        self.state = state or SlackState.open(settings.state_location, settings.retention_days)
        self.pool = pool or WorkerPool(settings.workers, settings.queue_size)
        self.jobs = JobLeases(self.state, settings.job_lease_seconds)
        self.limiter = RateLimiter(settings.user_rate_per_minute)
        # Listener threads mostly wait on Slack (notices); more of them only fight the event loop for the CPU.
        self.listener_executor = _CountingExecutor(max_workers=8, thread_name_prefix="sitrep-listener")
        self._article_count: tuple[float, int] | None = None
        self._count_lock = threading.Lock()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no listener is running and no job is queued or running; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Listeners feed the pool, so the pool is checked after the listeners have drained.
            if self.listener_executor.pending == 0 and self.pool.wait_idle(0.05):
                if self.listener_executor.pending == 0:
                    return True
            else:
                time.sleep(0.01)
        return False

    def close(self) -> None:
        """Let queued answers finish, then release threads and the state database."""
        self.listener_executor.shutdown(wait=True)  # first: running listeners may still queue answers
        self.pool.shutdown(wait=True)
        self.jobs.stop()
        self.state.close()

    def channel_allowed(self, channel: str) -> bool:
        allowed = self.settings.allowed_channels
        return not allowed or channel in allowed or channel.startswith("D")

    def rate_message(self, user: str) -> str | None:
        """None when ``user`` may ask now (and counts the request); otherwise what to tell them."""
        wait = self.limiter.check(user)
        if not wait:
            return None
        return (f"You've asked {self.settings.user_rate_per_minute} questions in the last minute; "
                f"please try again in {math.ceil(wait)} seconds.")

    def submit(self, target: Target, work: Callable[[], None], job: Job | None = None) -> bool:
        """Queue ``work``; tell the person when it has to wait or cannot be taken. Failures are reported.
        ``job``: the event's durable job, finished when the work is done or its failure reported."""

        def run() -> None:
            work()
            if job is not None:
                self.jobs.finish(job)

        def failed(exc: BaseException) -> None:
            self.notify(target, describe_failure(exc))
            if job is not None:
                self.jobs.finish(job)

        admission = self.pool.submit(run, on_error=failed)
        if admission.accepted and job is not None:
            job.adopt()
        if not admission.accepted:
            self.notify(target, OVER_CAPACITY)
        elif admission.position:
            self.notify(target, f"I'm busy — you're number {admission.position} in line.")
        return admission.accepted

    def deliver(self, target: Target, answer: Answer, update_ts: str | None = None,
                job: Job | None = None) -> str | None:
        """Post an answer (with Sources and feedback buttons) in the target thread; with ``update_ts`` (or the
        reply a previous owner of ``job`` posted), the first message replaces that one. Returns its ts."""
        update_ts = update_ts or (self.find_reply(target, job) if job is not None else None)
        answer_id: str | None = uuid.uuid4().hex[:16]
        try:
            self.state.save_answer(answer_id, answer, channel=target.channel, thread_ts=target.thread_ts,
                                   user=target.user)
        except StoreError:
            # The answer matters more than the buttons: post it without feedback buttons (nothing to rate).
            log.warning("slack.answer.not_saved channel=%s", target.channel)
            answer_id = None
        first_ts = self.post(target, render_answer(answer, answer_id), update_ts=update_ts, job=job)
        thread = target.thread_ts or first_ts
        if thread and not target.response_url:
            try:
                self.state.mark_thread(target.channel, thread)
            except StoreError:
                log.warning("slack.thread.not_marked channel=%s thread=%s", target.channel, thread)
        log.info("slack.answer.posted channel=%s mode=%s abstained=%s citations=%d", target.channel,
                 answer.mode, answer.abstained, len(answer.citations))
        return first_ts

    def post(self, target: Target, messages: Sequence[SlackMessage], update_ts: str | None = None,
             job: Job | None = None) -> str | None:
        """Send messages in order: the first in the thread (or top level, or replacing ``update_ts``), the rest
        in the thread of the first. Private targets get ephemeral replies through the response URL. The first
        message's ts is recorded on ``job`` as soon as Slack returns it."""
        if target.response_url:
            webhook = WebhookClient(target.response_url, timeout=30)
            for message in messages:
                response = webhook.send(response_type="ephemeral", replace_original=False,
                                        text=message.text, blocks=message.blocks or None)
                if response.status_code != 200:
                    raise SlackSetupError(f"Slack refused the reply (HTTP {response.status_code}).")
            return None
        first_ts: str | None = None
        thread_ts = target.thread_ts
        for index, message in enumerate(messages):
            if index == 0 and update_ts:
                self.client.chat_update(channel=target.channel, ts=update_ts, text=message.text,
                                        blocks=message.blocks or None)
                first_ts = update_ts
            else:
                extra = {"metadata": job.metadata()} if job is not None and first_ts is None else {}
                response = self.client.chat_postMessage(channel=target.channel, thread_ts=thread_ts,
                                                        **message.post_kwargs(), **extra)
                if first_ts is None:
                    first_ts = str(response["ts"])
                    if job is not None:
                        self.jobs.reply_posted(job, first_ts)
            thread_ts = thread_ts or first_ts
        return first_ts

    def find_reply(self, target: Target, job: Job) -> str | None:
        """The ts of the reply already posted for ``job``: recorded on it, or — for a job taken over from a
        replica that died between posting and recording — the message in the thread whose metadata names the
        event. None when there is none (or the thread cannot be read)."""
        if job.reply_ts or not job.taken_over or not target.thread_ts:
            return job.reply_ts
        try:
            response = self.client.conversations_replies(channel=target.channel, ts=target.thread_ts, limit=200,
                                                         include_all_metadata=True)
        except SlackClientError as exc:
            log.warning("slack.reply.lookup_failed channel=%s error=%s", target.channel, type(exc).__name__)
            return None
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            if (metadata.get("event_type") == REPLY_EVENT_TYPE
                    and (metadata.get("event_payload") or {}).get("event_id") == job.event_id):
                job.reply_ts = str(message["ts"])
                log.info("slack.reply.found event_id=%s", job.event_id)
        return job.reply_ts

    def notify(self, target: Target, text: str) -> None:
        """A one-sentence notice in the target thread; a failure to post is logged (nothing else is left)."""
        try:
            self.post(target, [render_notice(text)])
        except (SlackClientError, SitrepError, OSError) as exc:
            log.error("slack.notify.failed channel=%s error=%s", target.channel, type(exc).__name__)

    def set_status(self, target: Target, status: str) -> None:
        if not target.thread_ts:
            return
        try:
            self.client.assistant_threads_setStatus(channel_id=target.channel, thread_ts=target.thread_ts,
                                                    status=status)
        except SlackClientError as exc:
            log.warning("slack.status.failed error=%s", type(exc).__name__)

    def forget_article_count(self) -> None:
        """The corpus changed: count its articles afresh next time."""
        with self._count_lock:
            self._article_count = None

    def articles(self) -> int:
        """The number of ingested articles, refreshed at most once a minute."""
        with self._count_lock:
            now = time.monotonic()
            if self._article_count is None or now - self._article_count[0] > 60:
                self._article_count = (now, self.corpus.stats().documents)
            return self._article_count[1]
