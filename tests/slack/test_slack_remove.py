"""`@sitrep remove <url>` from Slack: admins only, a preview with Remove / Cancel that only the asking admin
can press, then the article is gone from answers. Real signed requests against the local Slack server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_signing import (
    BotHarness,
    ask,
    in_thread,
    make_harness_fixture,  # noqa: F401 - fixture "make_harness"
    mention_event,
    shared_corpus_fixture,  # noqa: F401 - fixture "shared_corpus"
    slack_fixture,  # noqa: F401 - fixture "slack"
    texts_of,
)

from bot.render.slack import escape
from bot.slack.listeners.remove import NO_LONGER_PENDING, NOT_ADMIN_REMOVE, REMOVE_CANCEL, REMOVE_CONFIRM
from retrieval.corpus import Corpus

from slack_api_server import Call

CRASH_URL = "https://example-news.test/helmand-helicopters"
CRASH_QUESTION = "How many people died when the MI-17 helicopters crashed in Nawa?"
ADMINS = "U0ADMIN,U0OTHERADMIN"


def _request_removal(h: BotHarness, text: str, user: str = "U0ADMIN") -> Call:
    event = mention_event(text, user=user)
    h.send_event(event)
    [reply] = h.slack.wait_for("chat.postMessage", where=in_thread(event["ts"]), timeout=30)
    return reply


def _buttons(call: Call) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for b in call.params["blocks"] if b["type"] == "actions" for e in b["elements"]}


def _click(h: BotHarness, preview: Call, action_id: str, user: str) -> Call:
    before = len(h.slack.calls_to("response_url"))
    button = _buttons(preview)[action_id]
    response = h.send_action({"action_id": action_id, "block_id": "sitrep_remove", "type": "button",
                              "value": button["value"], "action_ts": "1"}, user=user,
                             message={"type": "message", "ts": preview.response.get("ts", "1.0")})
    assert response.status_code == 200
    return h.slack.wait_for("response_url", count=before + 1, timeout=30)[-1]


def test_only_admins_get_a_preview(make_harness: Callable[..., BotHarness], corpus: Corpus) -> None:
    h = make_harness(corpus=corpus, SITREP_ADMIN_USERS=ADMINS)
    refused = _request_removal(h, f"remove <{CRASH_URL}>", user="U0ALICE")
    assert refused.params["text"] == NOT_ADMIN_REMOVE
    nothing = _request_removal(h, "remove <https://nowhere.test/story>")
    assert "Nothing to remove" in texts_of(nothing) and not _buttons(nothing)
    usage = _request_removal(h, "remove that crash story please")
    assert "mention me with its link" in texts_of(usage)
    assert corpus.stats().documents == 4


def test_confirmation_only_by_the_asking_admin_then_gone_from_answers(
    make_harness: Callable[..., BotHarness], corpus: Corpus
) -> None:
    h = make_harness(corpus=corpus, SITREP_ADMIN_USERS=ADMINS)
    _, before = ask(h, CRASH_QUESTION)
    assert CRASH_URL in texts_of(before)

    preview = _request_removal(h, f"remove <{CRASH_URL}>")
    shown = texts_of(preview)
    assert "Remove 1 article?" in shown and f"<{CRASH_URL}|Two army helicopters crash" in shown
    assert "Kabul Ledger, 14 Oct 2020" in shown and "Only <@U0ADMIN> can confirm" in shown
    assert set(_buttons(preview)) == {REMOVE_CONFIRM, REMOVE_CANCEL}

    for stranger in ("U0BOB", "U0OTHERADMIN"):  # neither a non-admin nor another admin can confirm
        refusal = _click(h, preview, REMOVE_CONFIRM, stranger)
        assert refusal.params["response_type"] == "ephemeral" and refusal.params["replace_original"] is False
        assert "Only <@U0ADMIN>" in refusal.params["text"]
    h.settle()
    assert corpus.stats().documents == 4

    cancelled = _click(h, preview, REMOVE_CANCEL, "U0ADMIN")
    assert cancelled.params["replace_original"] is True and "nothing was removed" in cancelled.params["text"]
    assert _click(h, preview, REMOVE_CONFIRM, "U0ADMIN").params["text"] == escape(NO_LONGER_PENDING)
    assert corpus.stats().documents == 4

    preview = _request_removal(h, f"remove <{CRASH_URL}>")
    done = _click(h, preview, REMOVE_CONFIRM, "U0ADMIN")
    assert done.params["replace_original"] is True
    assert done.params["text"].startswith("Removed 1 article (") and "confirmed by <@U0ADMIN>" in done.params["text"]
    again = _click(h, preview, REMOVE_CONFIRM, "U0ADMIN")  # a second click removes nothing more
    assert again.params["text"] == escape(NO_LONGER_PENDING)
    assert corpus.stats().documents == 3

    _, after = ask(h, CRASH_QUESTION)
    assert CRASH_URL not in texts_of(after)
