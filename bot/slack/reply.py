"""An LLM answer in Slack as it is written, replaced at the end by the verified answer.

The first message's ts is recorded on the event's job as soon as Slack returns it; a replica taking the job
over (this one died) writes into that message with ``chat.update`` instead of starting a second one."""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_sdk.errors import SlackClientError

from bot.answer.results import Answer
from bot.render.slack import StreamNeutralizer, render_notice
from bot.slack.core import SlackCore, Target
from bot.slack.jobs import Job

log = logging.getLogger(__name__)

STREAM_BUFFER_CHARS = 120  # chat.appendStream calls are rate limited: send text in modest pieces
STREAM_PIECE_CHARS = 4000  # one chat.appendStream call carries at most 12,000 characters
UPDATE_INTERVAL_SECONDS = 1.0  # chat.update fallback: at most one edit per second


class LiveReply:
    """An LLM answer as it is written: Slack's chat streaming, or — when streaming is refused — a posted
    message edited at most once a second. At the end the message becomes the verified, rendered answer."""

    def __init__(self, bot: SlackCore, target: Target, job: Job | None = None) -> None:
        self._bot = bot
        self._target = target
        self._job = job
        self._neutralizer = StreamNeutralizer()
        self._text = ""
        self._stream: Any = None
        # A reply a previous owner of the job posted: edited (its stream, if any, died with that replica).
        self._ts: str | None = bot.find_reply(target, job) if job is not None else None
        self._streaming = self._ts is None
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
            self._posted(self._stream.ts)

    def _stop_stream(self, tail: str | None = None) -> None:
        if self._stream is None or self._stream.ts is None:
            self._stream = None
            return
        try:
            self._stream.stop(markdown_text=tail or None)
        except SlackClientError as exc:
            log.warning("slack.stream.stop_failed error=%s", type(exc).__name__)
        self._posted(self._stream.ts)
        self._stream = None

    def _posted(self, ts: str | None) -> None:
        """The reply's message is ``ts`` (None: not posted yet); the job learns it the first time."""
        if ts is None:
            return
        self._ts = ts
        if self._job is not None:
            self._bot.jobs.reply_posted(self._job, ts)

    def _edit(self, final: bool) -> None:
        now = time.monotonic()
        if not final and self._ts and now - self._last_edit < UPDATE_INTERVAL_SECONDS:
            return
        text = (self._text + ("" if final else " …"))[:3000] or "…"
        client, target = self._bot.client, self._target
        if self._ts is None:
            extra = {"metadata": self._job.metadata()} if self._job is not None else {}
            response = client.chat_postMessage(channel=target.channel, thread_ts=target.thread_ts, text=text,
                                               unfurl_links=False, unfurl_media=False, **extra)
            self._posted(str(response["ts"]))
        else:
            client.chat_update(channel=target.channel, ts=self._ts, text=text)
        self._last_edit = now

    def finish(self, answer: Answer) -> None:
        """Replace what was streamed with the verified answer (citations checked, Sources, buttons)."""
        tail = self._neutralizer.flush()
        if self._streaming:
            self._stop_stream(tail)
        self._bot.deliver(self._target, answer, update_ts=self._ts, job=self._job)

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
