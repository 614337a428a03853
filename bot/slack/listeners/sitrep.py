"""``/sitrep``: ``stats`` (what the corpus holds), otherwise the help, built from what is registered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_bolt import App

from bot.slack.core import SlackCore
from bot.slack.listeners import slash_command

INTRO = "*sitrep* answers questions only from the articles your team has ingested, citing outlet and date."
OUTRO = "Rate answers with 👍/👎 so the team can see what needs fixing."
HELP = ("`/sitrep stats` — what the corpus holds.",)


def help_text(lines: Sequence[str]) -> str:
    """The help: what sitrep is, one bullet per registered feature, and a word on feedback."""
    return "\n".join([INTRO, *(f"• {line}" for line in lines), OUTRO])


def register(app: App, bot: SlackCore, help_lines: Sequence[str]) -> None:
    """Add ``/sitrep``; ``help_lines`` are the HELP lines of every listener module registered."""
    text = help_text(help_lines)

    def reply(command: dict[str, Any], context: Any) -> str:
        words = str(command.get("text") or "").split()
        if words and words[0].lower() == "stats":
            stats = bot.corpus.stats()
            newest = (stats.newest_published or "unknown")[:10]
            return (f"{stats.documents:,} articles ({stats.chunks:,} passages) from {stats.sources:,} sources; "
                    f"newest published {newest}. Answers: {bot.engine.mode} mode.")
        return text

    slash_command(app, "/sitrep", reply)
