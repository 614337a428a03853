"""The header line a Slack summary starts with: what was summarized, over which window, and who asked.

A `/summarize` result is posted in a channel where others read it later; without a header they can't tell
what it covers or whom to ask about it.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from bot.answer.summary_top import TOP_WINDOW
from bot.render.slack import escape


def summary_header(topic: str | None, since: datetime | None, user: str, tz: tzinfo) -> str:
    """``*Summary: Helmand* · since Wed 14 Oct 2020, 08:00 UTC · requested by <@U123>`` as Slack mrkdwn.

    ``topic`` is the person's own text, so it is escaped; without one the summary is of the top stories.
    ``since`` is shown in the workspace's time zone ``tz``; without it, the default window is named.
    """
    what = f"Summary: {escape(' '.join(topic.split()))}" if topic and topic.strip() else "Top stories"
    if since is not None:
        local = since.astimezone(tz)
        window = f"since {local:%a} {local.day} {local:%b %Y}, {local:%H:%M} {local.tzname()}"
    else:
        window = f"the {TOP_WINDOW.days} days up to the newest article"
    asked = f" · requested by <@{user}>" if user else ""
    return f"*{what}* · {window}{asked}"
