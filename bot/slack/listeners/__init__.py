"""One module per group of Slack listeners, registered in order by :mod:`bot.slack.app`.

Every slash command is registered through :func:`slash_command`, so all of them acknowledge the same way:
at once, privately, with one message (the usage, a refusal, or what is being prepared); slow work is queued
on the worker pool by the command's own reply function. Each command module has a ``HELP`` tuple of lines;
``/sitrep help`` lists the lines of every module registered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import App

from bot.errors import describe_failure
from bot.render.slack import escape
from retrieval.errors import SitrepError

# (the command's payload, Bolt's context) -> the acknowledgement text
CommandReply = Callable[[dict[str, Any], Any], str]


def slash_command(app: App, name: str, reply: CommandReply) -> None:
    """Register the slash command ``name``, acknowledged with what ``reply`` returns (an expected failure:
    its one sentence)."""

    def listener(ack: Callable[..., None], command: dict[str, Any], context: Any) -> None:
        try:
            text = reply(command, context)
        except SitrepError as exc:
            text = escape(describe_failure(exc))
        ack(text=text)

    app.command(name)(listener)


def acknowledge(ack: Callable[..., None]) -> None:
    """Acknowledge a button click at once; its lazy listener does the work."""
    ack()
