"""``/digest`` in Slack: a private preview of the next digest, and ``/digest now`` for admins.

Both are acknowledged at once, like every command (:func:`bot.slack.listeners.slash_command`), and built on
the bot's worker pool. The digest is the one for the channel the
command was typed in when that channel has a schedule, otherwise for the first scheduled channel (with no
schedule at all: the channel typed in). ``/digest now`` posts through the same exactly-once delivery as the
scheduler, under the slot ``manual:<minute>``, so a double-submitted command posts once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from slack_bolt import App
from slack_bolt.context.respond import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from bot.digest.delivery import DeliveryOutcome, DigestService, deliver, new_owner
from bot.digest.schedule import DigestSchedule, load_schedules, next_run
from bot.errors import describe_failure
from bot.settings import Settings
from bot.slack.core import OVER_CAPACITY, SlackCore
from bot.slack.listeners import slash_command
from bot.slack.workers import WorkerPool
from retrieval.errors import SitrepError

log = logging.getLogger(__name__)

HELP = ("`/digest` — a private preview of the next daily digest; admins: `/digest now` posts it now.",)
USAGE = "Usage: `/digest` shows you the next digest privately; `/digest now` (admins) posts it now."
NOT_ADMIN = "Sorry, only sitrep admins can post the digest now. `/digest` shows you a private preview."
Clock = Callable[[], datetime]


class DigestCommands:
    """The listeners of ``/digest``."""

    def __init__(self, settings: Settings, service: DigestService, clock: Clock, pool: WorkerPool,
                 client: WebClient) -> None:
        self.settings = settings
        self.pool = pool
        self.client = client
        self.service = service
        self.schedules = load_schedules(settings.digest)
        self.clock = clock
        self.owner = new_owner()

    def target(self, channel: str) -> DigestSchedule:
        """The schedule whose digest a command typed in ``channel`` is about."""
        for schedule in self.schedules:
            if schedule.channel == channel:
                return schedule
        if self.schedules:
            return self.schedules[0]
        return DigestSchedule(channel, self.settings.digest_time, self.settings.timezone)

    def reply(self, command: dict[str, Any], context: Any) -> str:
        """Within Slack's 3 seconds: usage, a refusal, or what is being prepared (queued on the pool)."""
        action = str(command.get("text") or "").strip().lower()
        target = self.target(str(command.get("channel_id") or ""))
        if action == "now" and str(command.get("user_id")) not in self.settings.admin_users:
            return NOT_ADMIN
        if action not in ("", "next", "preview", "now"):
            return USAGE
        respond = Respond(response_url=str(command.get("response_url") or ""))
        admission = self.pool.submit(lambda: self.lazy(command, respond, self.client),
                                     on_error=lambda exc: log.error("digest command failed: %s", type(exc).__name__))
        if not admission.accepted:
            return OVER_CAPACITY
        if action == "now":
            return f"Posting the digest to <#{target.channel}> now…"
        return f"Building the next digest for <#{target.channel}> (only you will see it)…"

    def lazy(self, command: dict[str, Any], respond: Callable[..., Any], client: WebClient) -> None:
        """After the acknowledgement: build the digest and show or post it."""
        action = str(command.get("text") or "").strip().lower()
        target = self.target(str(command.get("channel_id") or ""))
        now = self.clock()
        try:
            digest = self.service.build(target.channel, target.timezone, now)
            if action == "now":
                self._post_now(target, digest, now, respond, client, str(command.get("user_id")))
            else:
                self._preview(target, digest, now, respond)
        except (SitrepError, SlackClientError, OSError) as exc:
            log.warning("digest command failed channel=%s action=%s error=%s", target.channel, action or "preview",
                        type(exc).__name__)
            respond(text=describe_failure(exc), response_type="ephemeral", replace_original=False)

    def _preview(self, target: DigestSchedule, digest: Any, now: datetime, respond: Callable[..., Any]) -> None:
        due = next_run(target, now).astimezone(target.tz) if self.schedules else None
        when = f"; it posts {due:%a} {due.day} {due:%b}, {due:%H:%M} {due.tzname()}" if due else ""
        note = {"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"Preview of the next digest for <#{target.channel}> as of now{when}. Only you can see this.")}]}
        for i, message in enumerate(digest.messages()):
            kwargs = message.post_kwargs()
            if i == 0:
                kwargs["blocks"] = [note, *kwargs.get("blocks", [])]
            respond(**kwargs, response_type="ephemeral", replace_original=False)

    def _post_now(self, target: DigestSchedule, digest: Any, now: datetime, respond: Callable[..., Any],
                  client: WebClient, user: str) -> None:
        slot = f"manual:{now.astimezone(UTC):%Y-%m-%dT%H:%M}"
        outcome = deliver(self.service.store, client, target.channel, slot, digest, self.owner, now)
        log.info("digest posted on request channel=%s user=%s outcome=%s", target.channel, user, outcome.kind.value)
        if outcome.kind is DeliveryOutcome.Kind.FAILED:
            hint = " Invite me with `/invite @sitrep`." if outcome.error in ("not_in_channel", "channel_not_found") \
                else ""
            respond(text=f"I could not post the digest to <#{target.channel}> ({outcome.error}).{hint}",
                    response_type="ephemeral", replace_original=False)
        elif outcome.kind is DeliveryOutcome.Kind.SKIPPED:
            respond(text=f"A digest was posted to <#{target.channel}> a moment ago.", response_type="ephemeral",
                    replace_original=False)


def register(app: App, bot: SlackCore, clock: Clock = lambda: datetime.now(UTC)) -> DigestCommands:
    """Add ``/digest`` and ``/digest now`` to ``app``. ConfigError on a bad digest schedule."""
    service = DigestService.open(bot.settings.state_location, bot.corpus, bot.engine)
    commands = DigestCommands(bot.settings, service, clock, bot.pool, bot.client)
    slash_command(app, "/digest", commands.reply)
    return commands
