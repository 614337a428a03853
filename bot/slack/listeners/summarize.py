"""``/summarize [topic] [since]``: a cited summary of a topic (or of the window's biggest stories)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from typing import Any

from slack_bolt import App
from slack_sdk.errors import SlackApiError

from bot.answer.topic_span import parse_topic_span
from bot.errors import describe_failure
from bot.render.slack import escape
from bot.render.summary_header import summary_header
from bot.slack.core import NOT_ALLOWED, OVER_CAPACITY, SlackCore, Target
from bot.slack.listeners import slash_command
from retrieval.errors import QueryError, SitrepError

log = logging.getLogger(__name__)

SUMMARIZE_USAGE = (
    "Usage: `/summarize [topic] [since]` — for example `/summarize Helmand this week`, `/summarize last 3 days "
    "Kandahar`, `/summarize Lashkargah since 2020-10-10` or `/summarize 24h`. `since` may stand anywhere: a span "
    "(24h, 7d, last 3 days, past week), today, yesterday, this week, since Monday, or an ISO date."
)
HELP = (
    "`/summarize [topic] [since]` — a cited summary, e.g. `/summarize Helmand this week`, "
    "`/summarize last 3 days Kandahar` or `/summarize 7d`.",
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


class Summaries:
    """``/summarize`` for one bot."""

    def __init__(self, bot: SlackCore) -> None:
        self.bot = bot

    def reply(self, command: dict[str, Any], context: Any) -> str:
        """Acknowledge within Slack's 3 seconds with all the person needs to know (usage, a refusal, the rate
        limit, their place in line) and queue the summary on the worker pool.

        The pool does what a Bolt lazy listener would, without Bolt copying the whole request for it: that
        deep copy was the largest cost of acknowledging a command under load (bench/bench_slack.py)."""
        try:
            topic, since = parse_summarize_args(str(command.get("text") or ""), tz=self.bot.settings.tz)
        except UsageError as exc:
            return f"{escape(str(exc))}\n{SUMMARIZE_USAGE}".strip()
        channel = str(command.get("channel_id") or "")
        user = str(command.get("user_id") or "")
        if not self.bot.channel_allowed(channel):
            return NOT_ALLOWED
        slow_down = self.bot.rate_message(user)
        if slow_down:
            return slow_down
        private = self.bot.settings.summarize_visibility == "private"
        target = Target(channel=channel, thread_ts=None, user=user, team=command.get("team_id"),
                        response_url=command.get("response_url") if private else None,
                        bot_user_id=context.bot_user_id, bot_id=context.bot_id)
        # Failures and fallbacks go to the person privately, not into the channel.
        private_target = replace(target, response_url=command.get("response_url"))
        admission = self.bot.pool.submit(lambda: self.summarize(target, private_target, topic, since),
                                         on_error=lambda exc: self.bot.notify(private_target, describe_failure(exc)))
        if not admission.accepted:
            return OVER_CAPACITY
        window = f" since {since:%Y-%m-%d %H:%M} UTC" if since else ""
        text = f"Working on a summary of {escape(topic) if topic else 'the latest news'}{window}…"
        if admission.position:
            text += f" I'm busy — you're number {admission.position} in line."
        return text

    def summarize(self, target: Target, fallback: Target, topic: str | None, since: datetime | None) -> None:
        answer = self.bot.engine.summarize(topic, since=since)
        answer.header = summary_header(topic, since, target.user, self.bot.settings.tz)
        try:
            self.bot.deliver(target, answer)
        except SlackApiError as exc:
            if target.response_url or exc.response.get("error") not in ("not_in_channel", "channel_not_found"):
                raise
            # The bot is not a member of the channel: send the summary privately instead.
            self.bot.notify(fallback, "I'm not in this channel, so here is the summary just for you "
                                  "(invite me with /invite @sitrep to post summaries here).")
            self.bot.deliver(fallback, answer)


def register(app: App, bot: SlackCore) -> None:
    """Add ``/summarize`` to ``app``."""
    slash_command(app, "/summarize", Summaries(bot).reply)
