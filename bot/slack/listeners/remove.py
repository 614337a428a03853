"""Admins remove articles from Slack: ``@sitrep remove <url>`` shows what would go, with Remove and Cancel
buttons that only the admin who asked can press; Remove takes the articles out like `sitrep remove`.

The request waits in the state database (``slack_removals``, an hour at most), so a confirmation works
after a restart and two clicks on Remove remove once. The removal itself runs in the worker thread of a
lazy listener: it may wait for a running ingest to finish.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import App
from slack_sdk.errors import SlackClientError

from bot.errors import describe_failure
from bot.render.slack import SlackMessage, escape, format_date, link, slack_urls
from bot.slack.core import SlackCore, Target
from bot.slack.listeners import acknowledge
from bot.slack.state import PendingRemoval
from retrieval.errors import SitrepError
from retrieval.removal import RemovalReport, RemovalRequest
from retrieval.state_removal import StoredDocument

log = logging.getLogger(__name__)

REMOVE_BLOCK_ID = "sitrep_remove"
REMOVE_CONFIRM = "sitrep_remove_confirm"
REMOVE_CANCEL = "sitrep_remove_cancel"
NOT_ADMIN_REMOVE = "Sorry, only sitrep admins can remove articles; please ask one of them."
REMOVE_USAGE = ("To take an article out, mention me with its link or document id: "
                "`@sitrep remove https://example.org/article`.")
NO_LONGER_PENDING = ("This removal request is no longer pending (done, cancelled or expired after an hour); "
                     "ask again with `@sitrep remove <link>`.")
LISTED = 10  # documents named in a message; the rest are counted
_DOC_ID = re.compile(r"[0-9a-f]{16}")
_USER_ID = re.compile(r"[A-Z0-9]{2,32}")


def _mention(user: str) -> str:
    return f"<@{user}>" if _USER_ID.fullmatch(user) else escape(user)


def removal_refs(raw_text: str, plain_text: str) -> list[str]:
    """The URLs and document ids named in a ``remove`` message."""
    ids = [w for w in plain_text.split()[1:] if _DOC_ID.fullmatch(w)]
    return list(dict.fromkeys([*slack_urls(raw_text), *ids]))


def _doc_lines(docs: Sequence[StoredDocument]) -> list[str]:
    lines = []
    for doc in docs[:LISTED]:
        others = len(doc.sources) - 1
        also = f" (also carried by {others} other source{'s' if others > 1 else ''})" if others > 0 else ""
        lines.append(f"• {link(doc.url, doc.title or doc.url or doc.doc_id)} — "
                     f"{escape(doc.source or 'unknown outlet')}, {format_date(doc.published)}{also}")
    if len(docs) > LISTED:
        lines.append(f"• …and {len(docs) - LISTED} more")
    return lines


def _articles(n: int) -> str:
    return f"{n} article{'s' if n != 1 else ''}"


def confirmation_message(report: RemovalReport, request_id: str, user: str) -> SlackMessage:
    """The preview an admin confirms: what would be removed, and the Remove / Cancel buttons."""
    head = (f"Remove {_articles(len(report.documents))}? Removed articles are never retrieved, cited, summarised "
            "or counted in a digest again, and ingesting them again is refused.")
    lines = [f"*{head}*", *_doc_lines(report.documents)]
    if report.not_found:
        lines.append(f"Not in the corpus: {escape(', '.join(report.not_found))}")
    buttons = [
        {"type": "button", "action_id": REMOVE_CONFIRM, "style": "danger", "value": request_id,
         "text": {"type": "plain_text", "text": "Remove"}},
        {"type": "button", "action_id": REMOVE_CANCEL, "value": request_id,
         "text": {"type": "plain_text", "text": "Cancel"}},
    ]
    return SlackMessage(text=head, blocks=[
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900], "verbatim": True}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Only {_mention(user)} can confirm; "
                                                                    "this request expires in an hour."}]},
        {"type": "actions", "block_id": REMOVE_BLOCK_ID, "elements": buttons},
    ])


def outcome_message(report: RemovalReport, user: str) -> SlackMessage:
    """What a confirmed removal did, replacing the preview."""
    if not report.documents:
        return _plain("Nothing was removed: those articles are no longer in the corpus.")
    passages = f"{report.chunks} passage{'s' if report.chunks != 1 else ''}"
    head = f"Removed {_articles(len(report.documents))} ({passages}), confirmed by {_mention(user)}."
    body = "\n".join([head, *_doc_lines(report.documents)])[:2900]
    return SlackMessage(text=head, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": body,
                                                                         "verbatim": True}}])


class SlackRemovals:
    """The ``remove`` command and its confirm / cancel buttons, for one bot."""

    def __init__(self, bot: SlackCore) -> None:
        self.bot = bot

    def request(self, target: Target, raw_text: str, plain_text: str) -> None:
        """An admin's ``remove …`` message: refuse non-admins, else queue the preview."""
        if target.user not in self.bot.settings.admin_users:
            self.bot.notify(target, NOT_ADMIN_REMOVE)
            return
        refs = removal_refs(raw_text, plain_text)
        if not refs:
            self.bot.notify(target, REMOVE_USAGE)
            return
        self.bot.submit(target, lambda: self._preview(target, refs))

    def _preview(self, target: Target, refs: list[str]) -> None:
        report = self.bot.corpus.remove(RemovalRequest(targets=refs), dry_run=True)
        if not report.documents:
            self.bot.notify(target, f"Nothing to remove: no article in the corpus matches {', '.join(refs)}.")
            return
        request_id = uuid.uuid4().hex[:16]
        self.bot.state.save_removal(request_id, target.user, target.channel, [d.doc_id for d in report.documents])
        self.bot.post(target, [confirmation_message(report, request_id, target.user)])

    def on_confirm(self, body: dict[str, Any], action: dict[str, Any], respond: Callable[..., Any]) -> None:
        """Remove: only the admin who asked, once."""
        pending = self._claim(body, action, respond)
        if pending is None:
            return
        try:
            report = self.bot.corpus.remove(RemovalRequest(targets=pending.doc_ids))
        except SitrepError as exc:
            _respond(respond, _plain(f"Nothing was removed: {describe_failure(exc)}"), replace=True)
            return
        self.bot.forget_article_count()
        log.info("slack.remove user=%s removed=%d", pending.user, len(report.documents))
        _respond(respond, outcome_message(report, pending.user), replace=True)

    def on_cancel(self, body: dict[str, Any], action: dict[str, Any], respond: Callable[..., Any]) -> None:
        """Cancel: only the admin who asked."""
        pending = self._claim(body, action, respond)
        if pending is not None:
            _respond(respond, _plain(f"Cancelled by {_mention(pending.user)}; nothing was removed.", escaped=True),
                     replace=True)

    def _claim(self, body: dict[str, Any], action: dict[str, Any], respond: Callable[..., Any]
               ) -> PendingRemoval | None:
        """The pending request a click acts on, taken so no other click acts on it; None (the clicker is told
        why, privately) when it is gone or the clicker is not the admin who asked."""
        request_id = str(action.get("value") or "")
        user = str((body.get("user") or {}).get("id") or "")
        state = self.bot.state
        try:
            pending = state.removal(request_id)
            if pending is None:
                _respond(respond, _plain(NO_LONGER_PENDING), replace=False)
                return None
            if user != pending.user or user not in self.bot.settings.admin_users:
                refusal = f"Only {_mention(pending.user)}, the admin who asked for this removal, can confirm it."
                _respond(respond, _plain(refusal, escaped=True), replace=False)
                return None
            return pending if state.take_removal(request_id) else None  # a second click: the first one acts
        except SitrepError as exc:
            _respond(respond, _plain(describe_failure(exc)), replace=False)
            return None


def _plain(text: str, escaped: bool = False) -> SlackMessage:
    """A one-section message; ``escaped`` when ``text`` is already safe mrkdwn (it carries a mention)."""
    safe = text if escaped else escape(text)
    return SlackMessage(text=safe, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": safe}}])


def _respond(respond: Callable[..., Any], message: SlackMessage, *, replace: bool) -> None:
    """Replace the preview (``replace``), or tell the clicker privately."""
    kwargs: dict[str, Any] = {"text": message.text, "blocks": message.blocks or None, "replace_original": replace}
    if not replace:
        kwargs["response_type"] = "ephemeral"
    try:
        respond(**kwargs)
    except (SlackClientError, OSError) as exc:
        log.warning("slack.remove.respond_failed error=%s", type(exc).__name__)


def register(app: App, bot: SlackCore) -> SlackRemovals:
    """Add the Remove / Cancel buttons' listeners; the ``remove`` message itself arrives as a message."""
    removals = SlackRemovals(bot)
    app.action(REMOVE_CONFIRM)(ack=acknowledge, lazy=[removals.on_confirm])
    app.action(REMOVE_CANCEL)(ack=acknowledge, lazy=[removals.on_cancel])
    return removals
