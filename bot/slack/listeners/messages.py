"""Messages: mentions in channels, DMs, follow-ups in the bot's threads and the assistant panel's messages
become answers; ``ingest <url>`` and ``remove <url>`` from admins become corpus changes."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt import App
from slack_sdk.errors import SlackClientError

from bot.answer.results import Turn
from bot.errors import describe_failure
from bot.render.slack import SlackMessage, escape, link, plain_text_from_slack, slack_urls
from bot.slack.core import NOT_ALLOWED, SlackCore, Target
from bot.slack.jobs import Job
from bot.slack.listeners.remove import SlackRemovals
from bot.slack.reply import LiveReply
from retrieval.errors import StoreError

log = logging.getLogger(__name__)

NOT_ADMIN = "Sorry, only sitrep admins can add sources from Slack; please ask one of them to ingest it."
INGEST_USAGE = "To add a source, mention me with a link: `@sitrep ingest https://example.org/article`."
EMPTY_QUESTION = "Ask me a question about the ingested news, for example: what happened in Helmand this week?"
MAX_HISTORY_TURNS = 12
HELP = (
    "Mention me in a channel: `@sitrep how many people died in the Nawa helicopter crash?` — I answer in the "
    "thread, and answer follow-ups there without another mention.",
    "Send me a DM, or use the assistant panel.",
    "Admins: `@sitrep ingest <url>` adds an article or a feed; `@sitrep remove <url>` takes an article out for "
    "good (you confirm first).",
)


class Conversations:
    """The message listeners of one bot."""

    def __init__(self, bot: SlackCore, removals: SlackRemovals) -> None:
        self.bot = bot
        self.removals = removals

    def on_mention(self, event: dict[str, Any], body: dict[str, Any], context: Any) -> None:
        self.incoming(event, body, context, kind="mention")

    def on_message(self, event: dict[str, Any], body: dict[str, Any], context: Any) -> None:
        self.incoming(event, body, context, kind="message")

    def incoming(self, event: dict[str, Any], body: dict[str, Any], context: Any, kind: str) -> None:
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
        if kind == "message" and not is_dm and not (thread_ts and self.bot.state.is_bot_thread(channel, thread_ts)):
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
        job = self.bot.jobs.held(body.get("event_id"))
        try:
            # Claimed for this event: when its job is taken over after a replica died, the claim is ours again.
            first = self.bot.state.claim_message(channel, ts, job.event_id if job else None)
        except StoreError as exc:
            self.bot.notify(target, describe_failure(exc))
            return
        if not first:
            log.info("slack.message.already_claimed channel=%s ts=%s kind=%s", channel, ts, kind)
            return
        if not is_dm and not self.bot.channel_allowed(channel):
            self.bot.notify(target, NOT_ALLOWED)
            return
        question = plain_text_from_slack(text, context.bot_user_id)
        if re.match(r"ingest\b", question, re.IGNORECASE):
            self.ingest_request(target, text, job)
            return
        if re.match(r"remove\b", question, re.IGNORECASE):
            self.removals.request(target, text, question)
            return
        if not question:
            self.bot.notify(target, EMPTY_QUESTION)
            return
        slow_down = self.bot.rate_message(user)
        if slow_down:
            self.bot.notify(target, slow_down)
            return
        follow_up = thread_ts is not None
        self.bot.submit(target, lambda: self.answer(target, question, follow_up, job), job)

    def answer(self, target: Target, question: str, follow_up: bool, job: Job | None = None) -> None:
        history = self.history(target) if follow_up else []
        if target.assistant:
            self.bot.set_status(target, f"Searching {self.bot.articles():,} articles…")
        if self.bot.engine.mode == "llm":
            self.answer_streaming(target, question, history, job)
        else:
            self.bot.deliver(target, self.bot.engine.ask(question, history=history), job=job)

    def answer_streaming(self, target: Target, question: str, history: Sequence[Turn], job: Job | None = None
                         ) -> None:
        reply = LiveReply(self.bot, target, job)
        try:
            stream = self.bot.engine.ask_stream(question, history=history)
            for delta in stream:
                reply.append(delta)
            answer = stream.result()
        except Exception as exc:
            log.warning("slack.answer.failed error=%s", type(exc).__name__, exc_info=exc)
            reply.fail(describe_failure(exc))
            return
        reply.finish(answer)

    def history(self, target: Target) -> list[Turn]:
        """The conversation so far in the target thread (without the message being answered)."""
        try:
            response = self.bot.client.conversations_replies(channel=target.channel, ts=target.thread_ts, limit=50)
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

    def ingest_request(self, target: Target, raw_text: str, job: Job | None = None) -> None:
        if target.user not in self.bot.settings.admin_users:
            self.bot.notify(target, NOT_ADMIN)
            return
        urls = slack_urls(raw_text)
        if not urls:
            self.bot.notify(target, INGEST_USAGE)
            return
        self.bot.submit(target, lambda: self.ingest(target, urls), job)

    def ingest(self, target: Target, urls: list[str]) -> None:
        started = datetime.now(UTC) - timedelta(seconds=5)
        report = self.bot.corpus.ingest(urls)
        self.bot.forget_article_count()
        new_ids = set(report.doc_ids)
        docs = [d for d in self.bot.corpus.documents(since=started, by="first_seen") if d.doc_id in new_ids]
        lines = [
            f"Added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
            f"duplicates {report.duplicates}, failed {len(report.failed)}."
        ]
        lines += [f"• {link(d.url, d.title or d.url)} — {escape(d.source or 'unknown outlet')}" for d in docs[:10]]
        lines += [f"• failed: {escape(f.source)} — {escape(f.error)}" for f in report.failed[:10]]
        lines += [f"• warning: {escape(w.source)} — {escape(w.warning)}" for w in report.warnings[:10]]
        text = "\n".join(lines)
        self.bot.post(target, [SlackMessage(text=lines[0], blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900], "verbatim": True}}
        ])])
        log.info("slack.ingest user=%s added=%d failed=%d", target.user, report.added, len(report.failed))


def register(app: App, bot: SlackCore, removals: SlackRemovals) -> Conversations:
    """Listen to mentions and messages; returns the listeners (the assistant panel shares them)."""
    conversations = Conversations(bot, removals)
    app.event("app_mention")(conversations.on_mention)
    app.event("message")(conversations.on_message)
    return conversations


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
