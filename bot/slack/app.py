"""The Slack bot: a Bolt ``App`` with sitrep's listeners registered on it, one module of
:mod:`bot.slack.listeners` per group, as Bolt's own examples do. ``app`` serves HTTP and Socket Mode alike.

Nothing here calls Slack at import or construction (see :mod:`bot.slack.identity`).

Every event is a durable job (:mod:`bot.slack.jobs`): recorded before Slack's request is acknowledged (by the
HTTP server through :meth:`SlackBot.accept_events`, or in Socket Mode by the first middleware), finished when
dispatch returns unless a listener queued work that finishes it, and dispatched again here when another
replica died holding it (:meth:`SlackBot.redispatch`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse

from bot.errors import describe_failure
from bot.render.slack import escape
from bot.slack.core import SlackCore
from bot.slack.identity import make_client
from bot.slack.jobs import Job, JobLeases
from bot.slack.listeners import assistant, digest, feedback, messages, remove, sitrep, summarize
from bot.slack.state import LeasedJob
from retrieval.errors import StoreError

log = logging.getLogger(__name__)


class _JobsApp(App):
    """Bolt's app, finishing an event's job when dispatch returns and no listener took the job on (listeners run
    after every middleware, so only dispatch itself sees the end of an event's handling)."""

    def __init__(self, jobs: JobLeases, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._jobs = jobs

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        try:
            return super().dispatch(req)
        finally:
            self._jobs.settle(req.body.get("event_id"))


class SlackBot(SlackCore):
    """The bot's shared parts (:class:`SlackCore`) and the Bolt app with every listener registered."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Takes :class:`SlackCore`'s arguments."""
        super().__init__(*args, **kwargs)
        self.app = self._build_app()
        self.jobs.start(self.redispatch)

    def _build_app(self) -> App:
        app = _JobsApp(
            self.jobs,
            name="sitrep",
            # Bolt copies this client for each request (same API URL and retry handlers) and gives it the
            # token from ``authorize``, so nothing calls Slack at construction.
            client=make_client(replace(self.settings, slack_bot_token=None)),
            # A plain function: Bolt passes arguments by the parameter names it finds, ``self`` included.
            authorize=lambda enterprise_id, team_id, user_id: self.identity.authorize(enterprise_id, team_id,
                                                                                     user_id),
            signing_secret=self.settings.slack_signing_secret or "",
            listener_executor=self.listener_executor,
            # Listeners run inside dispatch: they only decide and queue (events are acknowledged before
            # dispatch in HTTP mode, see dispatch_later), and slow work goes to lazy listeners or the pool.
            # This spares every command a hop to another thread and Bolt's 10 ms polling for the ack.
            process_before_response=True,
        )
        # Bolt logs the whole body of a request whose signature fails; we log the rejection ourselves.
        logging.getLogger("slack_bolt.RequestVerification").setLevel(logging.WARNING)
        app.use(self._record_events)
        removals = remove.register(app, self)
        conversations = messages.register(app, self, removals)
        assistant.register(app, self, conversations)
        summarize.register(app, self)
        digest.register(app, self, self.clock)
        feedback.register(app, self)
        sitrep.register(app, self, [*messages.HELP, *summarize.HELP, *digest.HELP, *sitrep.HELP])
        app.error(self._on_error)
        return app

    def accept_events(self, requests: Sequence[BoltRequest]) -> list[bool]:
        """Record events as this replica's jobs before Slack's requests are acknowledged (several arriving
        together in one statement); for each, False when its ``event_id`` was seen before (Slack's retry, on
        this replica or another): acknowledge it and drop it."""
        ids = [r.body.get("event_id") for r in requests]
        events = [(str(i), r.raw_body or json.dumps(r.body)) for i, r in zip(ids, requests, strict=True) if i]
        try:
            jobs = iter(self.jobs.record(events))
        except StoreError:
            # The message claim in the listener still prevents a second answer, and reports the failure in
            # the thread when it cannot be made either; dropping the events here would be silent.
            log.warning("slack.event.claim_failed events=%d", len(events))
            return [True] * len(requests)
        return [not i or next(jobs) is not None for i in ids]

    def dispatch_later(self, request: BoltRequest, record: bool = False) -> None:
        """Run Bolt on an event after Slack's request was answered (HTTP mode acknowledges events at once);
        ``record``: first record it as a job here, and drop it when its ``event_id`` was seen before."""

        def run() -> None:
            if record and not self.accept_events([request])[0]:
                log.info("slack.event.duplicate event_id=%s", request.body.get("event_id"))
                return
            try:
                response = self.app.dispatch(request)
            except Exception as exc:
                log.error("slack.dispatch.failed error=%s", type(exc).__name__, exc_info=exc)
                return
            if response.status >= 400:
                log.warning("slack.dispatch.status status=%d", response.status)

        self.listener_executor.submit(run)

    def redispatch(self, leased: LeasedJob, job: Job) -> None:
        """Handle an event another replica recorded and did not finish (it died): its body was verified when it
        arrived, so it is dispatched as Socket Mode requests are, without a signature."""
        try:
            body = json.loads(leased.body)
        except (TypeError, ValueError):
            log.error("slack.job.unreadable event_id=%s", leased.event_id)
            self.jobs.finish(job)
            return
        self.dispatch_later(BoltRequest(body=body, mode="socket_mode"))

    def _record_events(self, body: dict[str, Any], next: Callable[[], None]) -> BoltResponse | None:
        """Record an event not yet recorded (Socket Mode) as a job; acknowledge a repeated ``event_id`` (Slack's
        retry) without running any listener."""
        event_id = body.get("event_id")
        recorded_here = self.jobs.held(event_id) is not None
        if (body.get("type") == "event_callback" and event_id and not recorded_here
                and not self.accept_events([BoltRequest(body=body, mode="socket_mode")])[0]):
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
