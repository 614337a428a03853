"""The assistant panel: suggested prompts and a greeting when a thread starts; its messages are answered like
any other message (:mod:`bot.slack.listeners.messages`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import App, Assistant

from bot.slack.core import SlackCore
from bot.slack.listeners.messages import Conversations

SUGGESTED_PROMPTS = [
    {"title": "Last 24 hours", "message": "What happened in the last 24 hours?"},
    {"title": "Helmand situation", "message": "Summarize the situation in Helmand"},
    {"title": "Casualty figures", "message": "Latest casualty figures, with sources"},
]
GREETING = (
    "Hi! I answer questions about the news articles your team has ingested, and only from them, "
    "with numbered sources. Ask me anything, or pick a suggestion."
)


def register(app: App, bot: SlackCore, conversations: Conversations) -> None:
    """Add the assistant panel's middleware to ``app``."""
    assistant = Assistant()

    @assistant.thread_started
    def thread_started(payload: dict[str, Any], set_suggested_prompts: Callable[..., Any]) -> None:
        thread = payload.get("assistant_thread") or {}
        set_suggested_prompts(prompts=SUGGESTED_PROMPTS, title="Try asking:")
        bot.client.chat_postMessage(channel=thread.get("channel_id"), thread_ts=thread.get("thread_ts"),
                                    text=GREETING)

    @assistant.user_message
    def user_message(payload: dict[str, Any], body: dict[str, Any], context: Any) -> None:
        conversations.incoming(payload, body, context, kind="assistant")

    app.use(assistant)
