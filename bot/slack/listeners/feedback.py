"""Feedback on answers: 👍/👎 buttons and, after 👎, a reason; stored with the answer they rate."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App
from slack_sdk.errors import SlackClientError

from bot.errors import describe_failure
from bot.render.slack import (
    FEEDBACK_DOWN,
    FEEDBACK_REASON,
    FEEDBACK_REASONS,
    FEEDBACK_UP,
    SlackMessage,
    escape,
    feedback_reason_message,
)
from bot.slack.core import SlackCore
from bot.slack.listeners import acknowledge
from retrieval.errors import StoreError

log = logging.getLogger(__name__)


class Feedback:
    """The feedback listeners of one bot."""

    def __init__(self, bot: SlackCore) -> None:
        self.bot = bot

    def on_up(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        self.rate(body, action, "up")

    def on_down(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        self.rate(body, action, "down")

    def rate(self, body: dict[str, Any], action: dict[str, Any], rating: str) -> None:
        answer_id = str(action.get("value") or "")
        user = str((body.get("user") or {}).get("id") or "")
        channel = str((body.get("channel") or {}).get("id") or "")
        message = body.get("message") or {}
        thread_ts = message.get("thread_ts") or message.get("ts")
        try:
            stored = self.bot.state.record_rating(answer_id, user, rating)
        except StoreError as exc:
            reply = SlackMessage(text=escape(f"Sorry, your rating was not saved: {describe_failure(exc)}"))
        else:
            reply = self.rating_reply(stored, rating, answer_id)
        try:
            self.bot.client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=reply.text,
                                           blocks=reply.blocks or None)
        except SlackClientError as exc:
            log.warning("slack.feedback.reply_failed error=%s", type(exc).__name__)

    @staticmethod
    def rating_reply(stored: bool, rating: str, answer_id: str) -> SlackMessage:
        if not stored:
            return SlackMessage(text="Sorry, I can't find that answer any more, so the rating was not saved.")
        if rating == "down":
            return feedback_reason_message(answer_id)
        return SlackMessage(text="Thanks for the feedback!")

    def on_reason(self, body: dict[str, Any], action: dict[str, Any], respond: Callable[..., Any]) -> None:
        value = str((action.get("selected_option") or {}).get("value") or "")
        answer_id, _, reason = value.rpartition(":")
        user = str((body.get("user") or {}).get("id") or "")
        try:
            stored = reason in FEEDBACK_REASONS and self.bot.state.record_reason(answer_id, user, reason)
        except StoreError as exc:
            text = escape(f"Sorry, that feedback was not saved: {describe_failure(exc)}")
        else:
            text = (f"Thanks, noted: {FEEDBACK_REASONS[reason].lower()}." if stored
                    else "Sorry, that feedback could not be saved; please rate the answer again.")
        try:
            respond(text=text, replace_original=True, response_type="ephemeral")
        except (SlackClientError, OSError) as exc:
            log.warning("slack.feedback.respond_failed error=%s", type(exc).__name__)


def register(app: App, bot: SlackCore) -> None:
    """Add the feedback buttons' listeners to ``app``."""
    feedback = Feedback(bot)
    app.action(FEEDBACK_UP)(ack=acknowledge, lazy=[feedback.on_up])
    app.action(FEEDBACK_DOWN)(ack=acknowledge, lazy=[feedback.on_down])
    app.action(FEEDBACK_REASON)(ack=acknowledge, lazy=[feedback.on_reason])
