"""The Slack bot: a Bolt ``App`` whose listeners turn mentions, DMs, thread follow-ups, the assistant panel,
slash commands and feedback clicks into work for the answer engine.

Listeners only decide and admit: they de-duplicate, check the channel and the rate limit, and hand the job
to the :class:`~bot.slack.workers.WorkerPool`; Slack's request is acknowledged at once. Workers answer (streamed
in LLM mode, posted at once in extractive mode) and report every failure in the thread in one sentence.

Nothing here calls Slack at import or construction: the ``WebClient`` points at ``SLACK_API_URL`` with
retry handlers for rate limits and connection errors, and ``auth.test`` runs once, in the start-up check of
:mod:`bot.slack.server` (or else at the first request).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from slack_bolt import App, Assistant, BoltRequest, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from bot.answer.results import Answer
from bot.answer.topic_span import parse_topic_span
from bot.errors import SlackSetupError, describe_failure
from bot.render.slack import (
    FEEDBACK_DOWN,
    FEEDBACK_REASON,
    FEEDBACK_UP,
    SlackMessage,
    StreamNeutralizer,
    escape,
    feedback_reason_message,
    link,
    plain_text_from_slack,
    render_answer,
    render_notice,
    slack_urls,
)
from bot.render.summary_header import summary_header
from bot.settings import Settings
from bot.slack.listeners.remove import REMOVE_CANCEL, REMOVE_CONFIRM, SlackRemovals
from bot.slack.state import FEEDBACK_REASONS, SlackState
from bot.slack.workers import RateLimiter, WorkerPool
from retrieval.errors import QueryError, SitrepError, StoreError
from retrieval.neterrors import connection_cause

if TYPE_CHECKING:
    from bot.answer.engine import Engine, Turn
    from retrieval.corpus import Corpus

log = logging.getLogger(__name__)

SUGGESTED_PROMPTS = [
    {"title": "Last 24 hours", "message": "What happened in the last 24 hours?"},
    {"title": "Helmand situation", "message": "Summarize the situation in Helmand"},
    {"title": "Casualty figures", "message": "Latest casualty figures, with sources"},
]
GREETING = (
    "Hi! I answer questions about the news articles your team has ingested, and only from them, "
    "with numbered sources. Ask me anything, or pick a suggestion."
)
HELP_TEXT = (
    "*sitrep* answers questions only from the articles your team has ingested, citing outlet and date.\n"
    "• Mention me in a channel: `@sitrep how many people died in the Nawa helicopter crash?` — I answer in "
    "the thread, and answer follow-ups there without another mention.\n"
    "• Send me a DM, or use the assistant panel.\n"
    "• `/summarize [topic] [since]` — a cited summary, e.g. `/summarize Helmand this week`, "
    "`/summarize last 3 days Kandahar` or `/summarize 7d`.\n"
    "• `/sitrep stats` — what the corpus holds.\n"
    "• Admins: `@sitrep ingest <url>` adds an article or a feed; `@sitrep remove <url>` takes an article out "
    "for good (you confirm first).\n"
    "Rate answers with 👍/👎 so the team can see what needs fixing."
)
SUMMARIZE_USAGE = (
    "Usage: `/summarize [topic] [since]` — for example `/summarize Helmand this week`, `/summarize last 3 days "
    "Kandahar`, `/summarize Lashkargah since 2020-10-10` or `/summarize 24h`. `since` may stand anywhere: a span "
    "(24h, 7d, last 3 days, past week), today, yesterday, this week, since Monday, or an ISO date."
)
NOT_ALLOWED = (
    "Sorry, I only answer in the channels my admins have enabled; please ask me there or in a direct message."
)
NOT_ADMIN = "Sorry, only sitrep admins can add sources from Slack; please ask one of them to ingest it."
INGEST_USAGE = "To add a source, mention me with a link: `@sitrep ingest https://example.org/article`."
EMPTY_QUESTION = "Ask me a question about the ingested news, for example: what happened in Helmand this week?"
OVER_CAPACITY = "Sorry, I'm over capacity right now; please ask again in a minute."
MAX_HISTORY_TURNS = 12
STREAM_BUFFER_CHARS = 120  # chat.appendStream calls are rate limited: send text in modest pieces
STREAM_PIECE_CHARS = 4000  # one chat.appendStream call carries at most 12,000 characters
UPDATE_INTERVAL_SECONDS = 1.0  # chat.update fallback: at most one edit per second

class _QuietTokenNotice(logging.Filter):
    """Bolt warns that ``SLACK_BOT_TOKEN`` (which it reads from the environment itself) is unused when a client
    is given; sitrep always gives one, so the warning is noise at every start."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


logging.getLogger("slack_bolt.App").addFilter(_QuietTokenNotice())


def make_client(settings: Settings) -> WebClient:
    """The one Web API client: ``SLACK_API_URL``, retries on HTTP 429 (honouring Retry-After) and on
    connection errors."""
    return WebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=30,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
        ],
    )


def check_auth(client: WebClient) -> dict[str, Any]:
    """Call ``auth.test``; a bad token or an unreachable API becomes one clear :class:`SlackSetupError`."""
    try:
        response = client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown_error") if exc.response is not None else "unknown_error"
        raise SlackSetupError(
            f"Slack rejected SLACK_BOT_TOKEN ({error}); copy the Bot User OAuth Token (xoxb-…) from the app's "
            "OAuth & Permissions page into .env."
        ) from None
    except (SlackClientError, OSError) as exc:
        raise SlackSetupError(
            f"Cannot reach Slack's Web API at {client.base_url}: {connection_cause(exc)}; check the network "
            "and SLACK_API_URL."
        ) from None
    return dict(response.data) if isinstance(response.data, dict) else {}


class BotIdentity:
    """Who the bot is (``auth.test``), asked once: by the start-up check, or else at the first request."""

    def __init__(self, client: WebClient) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._data: dict[str, Any] | None = None

    def check(self) -> dict[str, Any]:
        """``auth.test`` now (SlackSetupError on a bad token); the result is kept for :meth:`authorize`."""
        data = check_auth(self._client)
        with self._lock:
            self._data = data
        return data

    def authorize(self, enterprise_id: str | None, team_id: str | None, user_id: str | None
                  ) -> AuthorizeResult | None:
        """Bolt's ``authorize``: the bot token and ids for every request, without an API call per request."""
        with self._lock:
            data = self._data
        if data is None:
            try:
                data = self.check()
            except SlackSetupError as exc:
                log.error("slack.authorize.failed error=%s", exc)
                return None
        return AuthorizeResult(
            enterprise_id=data.get("enterprise_id") or enterprise_id,
            team_id=data.get("team_id") or team_id,
            bot_user_id=data.get("user_id"),
            bot_id=data.get("bot_id"),
            bot_token=self._client.token,
            user_id=user_id,
        )


class UsageError(SitrepError):
    """A slash command's arguments are wrong; the message goes to the user with the usage text."""


def parse_summarize_args(text: str, now: datetime | None = None, tz: tzinfo = UTC
                         ) -> tuple[str | None, datetime | None]:
    """``/summarize [topic] [span]`` → (topic, since). The span may stand anywhere in the text ("Helmand this
    week", "last 3 days Kandahar", "Kandahar since 2020-10-14"; see :mod:`bot.answer.topic_span`)."""
    tokens = text.split()
    if tokens and tokens[0].lower() in ("help", "-h", "--help"):
        raise UsageError("")
    if tokens and tokens[-1] == "--since":
        raise UsageError("`--since` needs a value, such as 24h.")
    try:
        parsed = parse_topic_span(text, now=now, tz=tz)
    except QueryError as exc:
        raise UsageError(str(exc)) from None
    if parsed.topic is not None and len(parsed.topic) > 300:
        raise UsageError("The topic is too long; use a few words, such as `Helmand displacement`.")
    return parsed.topic, parsed.since


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


class SlackBot:
    """The Bolt app and everything its listeners need. ``app`` serves HTTP and Socket Mode alike."""

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
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.corpus = corpus
        self.client = client or make_client(settings)
        if not self.client.token:
            raise SlackSetupError(
                "SLACK_BOT_TOKEN is not set; install the app to your workspace and copy its Bot User OAuth Token "
                "(xoxb-…) into .env."
            )
        self.identity = identity or BotIdentity(self.client)
        self.state = state or SlackState.open(settings.data_dir, settings.retention_days)
        self.pool = pool or WorkerPool(settings.workers, settings.queue_size)
        self.limiter = RateLimiter(settings.user_rate_per_minute)
        # Listener threads mostly wait on Slack (notices); more of them only fight the event loop for the CPU.
        self._listener_executor = _CountingExecutor(max_workers=8, thread_name_prefix="sitrep-listener")
        self._article_count: tuple[float, int] | None = None
        self._count_lock = threading.Lock()
        self.removals = SlackRemovals(self)
        self.app = self._build_app()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no listener is running and no job is queued or running; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Listeners feed the pool, so the pool is checked after the listeners have drained.
            if self._listener_executor.pending == 0 and self.pool.wait_idle(0.05):
                if self._listener_executor.pending == 0:
                    return True
            else:
                time.sleep(0.01)
        return False

    def close(self) -> None:
        """Let queued answers finish, then release threads and the state database."""
        self._listener_executor.shutdown(wait=True)  # first: running listeners may still queue answers
        self.pool.shutdown(wait=True)
        self.state.close()

    # -- the Bolt app ---------------------------------------------------------------------------------

    def _build_app(self) -> App:
        app = App(
            name="sitrep",
            # Bolt copies this client for each request (same API URL and retry handlers) and gives it the
            # token from ``authorize``, so nothing calls Slack at construction.
            client=make_client(replace(self.settings, slack_bot_token=None)),
            # A plain function: Bolt passes arguments by the parameter names it finds, ``self`` included.
            authorize=lambda enterprise_id, team_id, user_id: self.identity.authorize(enterprise_id, team_id,
                                                                                     user_id),
            signing_secret=self.settings.slack_signing_secret or "",
            listener_executor=self._listener_executor,
            # Listeners run inside dispatch: they only decide and queue (events are acknowledged before
            # dispatch in HTTP mode, see dispatch_later), and slow work goes to lazy listeners or the pool.
            # This spares every command a hop to another thread and Bolt's 10 ms polling for the ack.
            process_before_response=True,
        )
        # Bolt logs the whole body of a request whose signature fails; we log the rejection ourselves.
        logging.getLogger("slack_bolt.RequestVerification").setLevel(logging.WARNING)
        app.use(self._drop_repeated_events)
        app.use(self._build_assistant())
        app.event("app_mention")(self._on_mention)
        app.event("message")(self._on_message)
        app.command("/summarize")(self._summarize_command)
        app.command("/sitrep")(self._sitrep_command)
        app.action(FEEDBACK_UP)(ack=_ack, lazy=[self._on_feedback_up])
        app.action(FEEDBACK_DOWN)(ack=_ack, lazy=[self._on_feedback_down])
        app.action(FEEDBACK_REASON)(ack=_ack, lazy=[self._on_feedback_reason])
        app.action(REMOVE_CONFIRM)(ack=_ack, lazy=[self.removals.on_confirm])
        app.action(REMOVE_CANCEL)(ack=_ack, lazy=[self.removals.on_cancel])
        app.error(self._on_error)
        return app

    def dispatch_later(self, request: BoltRequest) -> None:
        """Run Bolt on an event after Slack's request was answered (HTTP mode acknowledges events at once)."""

        def run() -> None:
            try:
                response = self.app.dispatch(request)
            except Exception as exc:
                log.error("slack.dispatch.failed error=%s", type(exc).__name__, exc_info=exc)
                return
            if response.status >= 400:
                log.warning("slack.dispatch.status status=%d", response.status)

        self._listener_executor.submit(run)

    def _drop_repeated_events(self, body: dict[str, Any], next: Callable[[], None]) -> BoltResponse | None:
        """Acknowledge a repeated ``event_id`` (Slack's retry) without running any listener."""
        event_id = body.get("event_id")
        if body.get("type") == "event_callback" and event_id:
            try:
                first = self.state.claim_event(str(event_id))
            except StoreError:
                # The message claim in _incoming still prevents a second answer, and reports the failure in
                # the thread when it cannot be made either; dropping the event here would be silent.
                log.warning("slack.event.claim_failed event_id=%s", event_id)
                first = True
            if not first:
                log.info("slack.event.duplicate event_id=%s", event_id)
                return BoltResponse(status=200, body="")
        next()
        return None

    def _on_error(self, error: Exception, body: dict[str, Any]) -> BoltResponse | None:
        """Log an unexpected listener failure; a slash command still gets one sentence (Slack would otherwise
        show the person a bare "failed with the error" line), never the exception itself."""
        log.error("slack.listener.error type=%s error=%s", body.get("type"), type(error).__name__, exc_info=error)
        if not body.get("command"):
            return None
        reply = {"response_type": "ephemeral", "text": escape(describe_failure(error))}
        return BoltResponse(status=200, body=json.dumps(reply),
                            headers={"content-type": "application/json;charset=utf-8"})

    # -- messages -------------------------------------------------------------------------------------

    def _on_mention(self, event: dict[str, Any], body: dict[str, Any], context: Any) -> None:
        self._incoming(event, body, context, kind="mention")

    def _on_message(self, event: dict[str, Any], body: dict[str, Any], context: Any) -> None:
        self._incoming(event, body, context, kind="message")

    def _incoming(self, event: dict[str, Any], body: dict[str, Any], context: Any, kind: str) -> None:
        """One user message: decide whether to answer, claim it, check limits, queue the answer."""
        channel, user, ts = event.get("channel"), event.get("user"), event.get("ts")
        if not channel or not user or not ts:
            return
        if event.get("bot_id") or event.get("subtype") not in (None, "file_share", "thread_broadcast"):
            return  # other bots, edits, deletions, joins
        if user == context.bot_user_id:
            return
        is_dm = event.get("channel_type") == "im" or str(channel).startswith("D")
        thread_ts = event.get("thread_ts")
        text = str(event.get("text") or "")
        # In channels, plain messages are answered only as follow-ups in threads the bot answered
        # (mentions arrive as app_mention).
        if kind == "message" and not is_dm and not (thread_ts and self.state.is_bot_thread(channel, thread_ts)):
            return
        if kind == "message" and _addressed_to_someone_else(text, context.bot_user_id):
            return  # "@bob can you check this?" in the bot's thread is for Bob
        target = Target(
            channel=channel,
            thread_ts=thread_ts or ts,
            user=user,
            team=event.get("team") or body.get("team_id"),
            message_ts=ts,
            assistant=kind == "assistant",
            bot_user_id=context.bot_user_id,
            bot_id=context.bot_id,
        )
        try:
            first = self.state.claim_message(channel, ts)
        except StoreError as exc:
            self.notify(target, describe_failure(exc))
            return
        if not first:
            log.info("slack.message.already_claimed channel=%s ts=%s kind=%s", channel, ts, kind)
            return
        if not is_dm and not self._channel_allowed(channel):
            self.notify(target, NOT_ALLOWED)
            return
        question = plain_text_from_slack(text, context.bot_user_id)
        if re.match(r"ingest\b", question, re.IGNORECASE):
            self._ingest_request(target, text)
            return
        if re.match(r"remove\b", question, re.IGNORECASE):
            self.removals.request(target, text, question)
            return
        if not question:
            self.notify(target, EMPTY_QUESTION)
            return
        slow_down = self._rate_message(user)
        if slow_down:
            self.notify(target, slow_down)
            return
        follow_up = thread_ts is not None
        self.submit(target, lambda: self._answer(target, question, follow_up))

    def _channel_allowed(self, channel: str) -> bool:
        allowed = self.settings.allowed_channels
        return not allowed or channel in allowed or channel.startswith("D")

    def _rate_message(self, user: str) -> str | None:
        """None when ``user`` may ask now (and counts the request); otherwise what to tell them."""
        wait = self.limiter.check(user)
        if not wait:
            return None
        return (f"You've asked {self.settings.user_rate_per_minute} questions in the last minute; "
                f"please try again in {math.ceil(wait)} seconds.")

    def submit(self, target: Target, job: Callable[[], None]) -> bool:
        """Queue ``job``; tell the person when it has to wait or cannot be taken. Failures are reported."""
        admission = self.pool.submit(job, on_error=lambda exc: self.notify(target, describe_failure(exc)))
        if not admission.accepted:
            self.notify(target, OVER_CAPACITY)
        elif admission.position:
            self.notify(target, f"I'm busy — you're number {admission.position} in line.")
        return admission.accepted

    # -- answering ------------------------------------------------------------------------------------

    def _answer(self, target: Target, question: str, follow_up: bool) -> None:
        history = self._history(target) if follow_up else []
        if target.assistant:
            self._set_status(target, f"Searching {self._articles():,} articles…")
        if self.engine.mode == "llm":
            self._answer_streaming(target, question, history)
        else:
            self.deliver(target, self.engine.ask(question, history=history))

    def _answer_streaming(self, target: Target, question: str, history: Sequence[Turn]) -> None:
        reply = LiveReply(self, target)
        try:
            stream = self.engine.ask_stream(question, history=history)
            for delta in stream:
                reply.append(delta)
            answer = stream.result()
        except Exception as exc:
            log.warning("slack.answer.failed error=%s", type(exc).__name__, exc_info=exc)
            reply.fail(describe_failure(exc))
            return
        reply.finish(answer)

    def deliver(self, target: Target, answer: Answer, update_ts: str | None = None) -> str | None:
        """Post an answer (with Sources and feedback buttons) in the target thread; with ``update_ts``, the
        first message replaces that one. Returns the first message's ts."""
        answer_id: str | None = uuid.uuid4().hex[:16]
        try:
            self.state.save_answer(answer_id, answer, channel=target.channel, thread_ts=target.thread_ts,
                                   user=target.user)
        except StoreError:
            # The answer matters more than the buttons: post it without feedback buttons (nothing to rate).
            log.warning("slack.answer.not_saved channel=%s", target.channel)
            answer_id = None
        first_ts = self.post(target, render_answer(answer, answer_id), update_ts=update_ts)
        thread = target.thread_ts or first_ts
        if thread and not target.response_url:
            try:
                self.state.mark_thread(target.channel, thread)
            except StoreError:
                log.warning("slack.thread.not_marked channel=%s thread=%s", target.channel, thread)
        log.info("slack.answer.posted channel=%s mode=%s abstained=%s citations=%d", target.channel,
                 answer.mode, answer.abstained, len(answer.citations))
        return first_ts

    def post(self, target: Target, messages: Sequence[SlackMessage], update_ts: str | None = None) -> str | None:
        """Send messages in order: the first in the thread (or top level, or replacing ``update_ts``), the rest
        in the thread of the first. Private targets get ephemeral replies through the response URL."""
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
                response = self.client.chat_postMessage(channel=target.channel, thread_ts=thread_ts,
                                                        **message.post_kwargs())
                first_ts = first_ts or str(response["ts"])
            thread_ts = thread_ts or first_ts
        return first_ts

    def notify(self, target: Target, text: str) -> None:
        """A one-sentence notice in the target thread; a failure to post is logged (nothing else is left)."""
        try:
            self.post(target, [render_notice(text)])
        except (SlackClientError, SitrepError, OSError) as exc:
            log.error("slack.notify.failed channel=%s error=%s", target.channel, type(exc).__name__)

    def _set_status(self, target: Target, status: str) -> None:
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

    def _articles(self) -> int:
        """The number of ingested articles, refreshed at most once a minute."""
        with self._count_lock:
            now = time.monotonic()
            if self._article_count is None or now - self._article_count[0] > 60:
                self._article_count = (now, self.corpus.stats().documents)
            return self._article_count[1]

    def _history(self, target: Target) -> list[Turn]:
        """The conversation so far in the target thread (without the message being answered)."""
        from bot.answer.engine import Turn

        try:
            response = self.client.conversations_replies(channel=target.channel, ts=target.thread_ts, limit=50)
        except SlackClientError as exc:
            log.warning("slack.history.failed channel=%s error=%s", target.channel, type(exc).__name__)
            return []
        turns: list[Turn] = []
        for message in response.get("messages") or []:
            if message.get("ts") == target.message_ts:
                continue
            own = (target.bot_id and message.get("bot_id") == target.bot_id) or (
                target.bot_user_id and message.get("user") == target.bot_user_id
            )
            if message.get("bot_id") and not own:
                continue  # other bots' chatter is not part of the conversation
            if own and not any(b.get("type") == "actions" for b in message.get("blocks") or []):
                continue  # the bot's notices (busy, greetings) are not answers; answers carry feedback buttons
            text = plain_text_from_slack(str(message.get("text") or ""), target.bot_user_id)
            if text.strip():
                sources = cited_titles(message.get("blocks") or []) if own else ()
                turns.append(Turn("assistant" if own else "user", text.strip(), sources=sources))
        return turns[-MAX_HISTORY_TURNS:]

    # -- admin ingest ---------------------------------------------------------------------------------

    def _ingest_request(self, target: Target, raw_text: str) -> None:
        if target.user not in self.settings.admin_users:
            self.notify(target, NOT_ADMIN)
            return
        urls = slack_urls(raw_text)
        if not urls:
            self.notify(target, INGEST_USAGE)
            return
        self.submit(target, lambda: self._ingest(target, urls))

    def _ingest(self, target: Target, urls: list[str]) -> None:
        started = datetime.now(UTC) - timedelta(seconds=5)
        report = self.corpus.ingest(urls)
        self.forget_article_count()
        new_ids = set(report.doc_ids)
        docs = [d for d in self.corpus.documents(since=started, by="first_seen") if d.doc_id in new_ids]
        lines = [
            f"Added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
            f"duplicates {report.duplicates}, failed {len(report.failed)}."
        ]
        lines += [f"• {link(d.url, d.title or d.url)} — {escape(d.source or 'unknown outlet')}" for d in docs[:10]]
        lines += [f"• failed: {escape(f.source)} — {escape(f.error)}" for f in report.failed[:10]]
        lines += [f"• warning: {escape(w.source)} — {escape(w.warning)}" for w in report.warnings[:10]]
        text = "\n".join(lines)
        self.post(target, [SlackMessage(text=lines[0], blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900], "verbatim": True}}
        ])])
        log.info("slack.ingest user=%s added=%d failed=%d", target.user, report.added, len(report.failed))

    # -- assistant panel ------------------------------------------------------------------------------

    def _build_assistant(self) -> Assistant:
        assistant = Assistant()

        @assistant.thread_started
        def thread_started(payload: dict[str, Any], set_suggested_prompts: Callable[..., Any]) -> None:
            thread = payload.get("assistant_thread") or {}
            set_suggested_prompts(prompts=SUGGESTED_PROMPTS, title="Try asking:")
            self.client.chat_postMessage(channel=thread.get("channel_id"), thread_ts=thread.get("thread_ts"),
                                         text=GREETING)

        @assistant.user_message
        def user_message(payload: dict[str, Any], body: dict[str, Any], context: Any) -> None:
            self._incoming(payload, body, context, kind="assistant")

        return assistant

    # -- slash commands -------------------------------------------------------------------------------

    def _summarize_command(self, ack: Callable[..., None], command: dict[str, Any], context: Any) -> None:
        """Acknowledge within Slack's 3 seconds with all the person needs to know (usage, a refusal, the rate
        limit, their place in line) and queue the summary on the worker pool.

        The pool does what a Bolt lazy listener would, without Bolt copying the whole request for it: that
        deep copy was the largest cost of acknowledging a command under load (bench/bench_slack.py)."""
        try:
            topic, since = parse_summarize_args(str(command.get("text") or ""), tz=self.settings.tz)
        except UsageError as exc:
            ack(text=f"{escape(str(exc))}\n{SUMMARIZE_USAGE}".strip())
            return
        channel = str(command.get("channel_id") or "")
        user = str(command.get("user_id") or "")
        if not self._channel_allowed(channel):
            ack(text=NOT_ALLOWED)
            return
        slow_down = self._rate_message(user)
        if slow_down:
            ack(text=slow_down)
            return
        private = self.settings.summarize_visibility == "private"
        target = Target(channel=channel, thread_ts=None, user=user, team=command.get("team_id"),
                        response_url=command.get("response_url") if private else None,
                        bot_user_id=context.bot_user_id, bot_id=context.bot_id)
        # Failures and fallbacks go to the person privately, not into the channel.
        private_target = replace(target, response_url=command.get("response_url"))
        admission = self.pool.submit(lambda: self._summarize(target, private_target, topic, since),
                                     on_error=lambda exc: self.notify(private_target, describe_failure(exc)))
        if not admission.accepted:
            ack(text=OVER_CAPACITY)
            return
        window = f" since {since:%Y-%m-%d %H:%M} UTC" if since else ""
        text = f"Working on a summary of {escape(topic) if topic else 'the latest news'}{window}…"
        if admission.position:
            text += f" I'm busy — you're number {admission.position} in line."
        ack(text=text)

    def _summarize(self, target: Target, fallback: Target, topic: str | None, since: datetime | None) -> None:
        answer = self.engine.summarize(topic, since=since)
        answer.header = summary_header(topic, since, target.user, self.settings.tz)
        try:
            self.deliver(target, answer)
        except SlackApiError as exc:
            if target.response_url or exc.response.get("error") not in ("not_in_channel", "channel_not_found"):
                raise
            # The bot is not a member of the channel: send the summary privately instead.
            self.notify(fallback, "I'm not in this channel, so here is the summary just for you "
                                  "(invite me with /invite @sitrep to post summaries here).")
            self.deliver(fallback, answer)

    def _sitrep_command(self, ack: Callable[..., None], command: dict[str, Any]) -> None:
        words = str(command.get("text") or "").split()
        if words and words[0].lower() == "stats":
            try:
                stats = self.corpus.stats()
            except SitrepError as exc:
                ack(text=describe_failure(exc))
                return
            newest = (stats.newest_published or "unknown")[:10]
            ack(text=f"{stats.documents:,} articles ({stats.chunks:,} passages) from {stats.sources:,} sources; "
                     f"newest published {newest}. Answers: {self.engine.mode} mode.")
            return
        ack(text=HELP_TEXT)

    # -- feedback -------------------------------------------------------------------------------------

    def _on_feedback_up(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        self._rate(body, action, "up")

    def _on_feedback_down(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        self._rate(body, action, "down")

    def _rate(self, body: dict[str, Any], action: dict[str, Any], rating: str) -> None:
        answer_id = str(action.get("value") or "")
        user = str((body.get("user") or {}).get("id") or "")
        channel = str((body.get("channel") or {}).get("id") or "")
        message = body.get("message") or {}
        thread_ts = message.get("thread_ts") or message.get("ts")
        try:
            stored = self.state.record_rating(answer_id, user, rating)
        except StoreError as exc:
            reply = SlackMessage(text=escape(f"Sorry, your rating was not saved: {describe_failure(exc)}"))
        else:
            reply = self._rating_reply(stored, rating, answer_id)
        try:
            self.client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=reply.text,
                                           blocks=reply.blocks or None)
        except SlackClientError as exc:
            log.warning("slack.feedback.reply_failed error=%s", type(exc).__name__)

    @staticmethod
    def _rating_reply(stored: bool, rating: str, answer_id: str) -> SlackMessage:
        if not stored:
            return SlackMessage(text="Sorry, I can't find that answer any more, so the rating was not saved.")
        if rating == "down":
            return feedback_reason_message(answer_id)
        return SlackMessage(text="Thanks for the feedback!")

    def _on_feedback_reason(self, body: dict[str, Any], action: dict[str, Any], respond: Callable[..., Any]) -> None:
        value = str((action.get("selected_option") or {}).get("value") or "")
        answer_id, _, reason = value.rpartition(":")
        user = str((body.get("user") or {}).get("id") or "")
        try:
            stored = reason in FEEDBACK_REASONS and self.state.record_reason(answer_id, user, reason)
        except StoreError as exc:
            text = escape(f"Sorry, that feedback was not saved: {describe_failure(exc)}")
        else:
            text = (f"Thanks, noted: {FEEDBACK_REASONS[reason].lower()}." if stored
                    else "Sorry, that feedback could not be saved; please rate the answer again.")
        try:
            respond(text=text, replace_original=True, response_type="ephemeral")
        except (SlackClientError, OSError) as exc:
            log.warning("slack.feedback.respond_failed error=%s", type(exc).__name__)


def cited_titles(blocks: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """The titles of the articles an answer message lists under *Sources* ("[1] <url|title> — outlet, date"):
    a follow-up's "the president" or "he" may be named only there."""
    titles: list[str] = []
    listing = False
    for block in blocks:
        text = str((block.get("text") or {}).get("text") or "") if isinstance(block.get("text"), dict) else ""
        if block.get("type") != "section" or not text:
            continue
        listing = listing or text.startswith("*Sources*")
        if not listing:
            continue
        for line in text.splitlines():
            match = re.match(r"\[\d+\]\s+(?:<[^|>]*\|(?P<linked>[^>]*)>|(?P<plain>.+?))\s+—\s", line)
            if match:
                title = match.group("linked") or match.group("plain") or ""
                titles.append(title.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    return tuple(titles)


def _addressed_to_someone_else(text: str, bot_user_id: str | None) -> bool:
    """A message that mentions people but not the bot."""
    mentioned = set(re.findall(r"<@([A-Z0-9]+)(?:\|[^>]*)?>", text))
    return bool(mentioned) and bot_user_id not in mentioned


def _ack(ack: Callable[..., None]) -> None:
    """Acknowledge at once; the lazy listener does the work."""
    ack()


class LiveReply:
    """An LLM answer as it is written: Slack's chat streaming, or — when streaming is refused — a posted
    message edited at most once a second. At the end the message becomes the verified, rendered answer."""

    def __init__(self, bot: SlackBot, target: Target) -> None:
        self._bot = bot
        self._target = target
        self._neutralizer = StreamNeutralizer()
        self._text = ""
        self._stream: Any = None
        self._streaming = True
        self._ts: str | None = None
        self._last_edit = 0.0

    def append(self, delta: str) -> None:
        safe = self._neutralizer.feed(delta)
        if not safe:
            return
        self._text += safe
        if self._streaming:
            try:
                self._append_stream(safe)
                return
            except SlackClientError as exc:
                log.warning("slack.stream.unavailable error=%s; falling back to post-then-update",
                            getattr(exc, "response", {}) and exc.response.get("error"))  # type: ignore[attr-defined]
                self._stop_stream()
                self._streaming = False
        self._edit(final=False)

    def _append_stream(self, text: str) -> None:
        client, target = self._bot.client, self._target
        if self._stream is None:
            self._stream = client.chat_stream(
                channel=target.channel, thread_ts=target.thread_ts, recipient_team_id=target.team,
                recipient_user_id=target.user, buffer_size=STREAM_BUFFER_CHARS,
            )
        for start in range(0, len(text), STREAM_PIECE_CHARS):
            self._stream.append(markdown_text=text[start : start + STREAM_PIECE_CHARS])
            self._ts = self._stream.ts or self._ts

    def _stop_stream(self, tail: str | None = None) -> None:
        if self._stream is None or self._stream.ts is None:
            self._stream = None
            return
        try:
            self._stream.stop(markdown_text=tail or None)
        except SlackClientError as exc:
            log.warning("slack.stream.stop_failed error=%s", type(exc).__name__)
        self._ts = self._stream.ts
        self._stream = None

    def _edit(self, final: bool) -> None:
        now = time.monotonic()
        if not final and self._ts and now - self._last_edit < UPDATE_INTERVAL_SECONDS:
            return
        text = (self._text + ("" if final else " …"))[:3000] or "…"
        client, target = self._bot.client, self._target
        if self._ts is None:
            response = client.chat_postMessage(channel=target.channel, thread_ts=target.thread_ts, text=text,
                                               unfurl_links=False, unfurl_media=False)
            self._ts = str(response["ts"])
        else:
            client.chat_update(channel=target.channel, ts=self._ts, text=text)
        self._last_edit = now

    def finish(self, answer: Answer) -> None:
        """Replace what was streamed with the verified answer (citations checked, Sources, buttons)."""
        tail = self._neutralizer.flush()
        if self._streaming:
            self._stop_stream(tail)
        self._bot.deliver(self._target, answer, update_ts=self._ts)

    def fail(self, sentence: str) -> None:
        """The answer failed: the partial text (unverified) is replaced by one sentence saying so."""
        if self._streaming:
            self._stop_stream()
        if self._ts is None:
            self._bot.notify(self._target, sentence)
            return
        try:
            notice = render_notice(sentence)
            self._bot.client.chat_update(channel=self._target.channel, ts=self._ts, text=notice.text,
                                         blocks=notice.blocks)
        except SlackClientError:
            self._bot.notify(self._target, sentence)
