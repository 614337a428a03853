"""The Slack bot in HTTP mode, end to end: real signed requests to the Starlette app under uvicorn on
127.0.0.1, the real extractive Engine over a real Corpus, and a local Slack Web API server."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_signing import (
    CRASH_QUESTION,
    BotHarness,
    SpyEngine,
    answer_id_of,
    ask,
    in_thread,
    make_harness_fixture,  # noqa: F401 - fixture "make_harness"
    mention_event,
    message_event,
    new_ts,
    post_signed,
    settings_for,
    shared_corpus_fixture,  # noqa: F401 - fixture "shared_corpus"
    slack_fixture,  # noqa: F401 - fixture "slack"
    texts_of,
)

from bot.errors import SlackSetupError
from bot.render.slack import FEEDBACK_DOWN, FEEDBACK_REASON, FEEDBACK_UP, plain_text_from_slack
from bot.slack.core import NOT_ALLOWED, OVER_CAPACITY
from bot.slack.identity import check_auth, make_client
from bot.slack.listeners.assistant import SUGGESTED_PROMPTS
from bot.slack.listeners.messages import NOT_ADMIN
from retrieval.corpus import Corpus
from retrieval.documents import Article

from conftest import fixture_articles
from httpfixtures import LOCAL_FETCH, LocalHTTPServer, Route
from slack_api_server import SlackApiServer


def test_mention_gets_threaded_answer_with_sources(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness()
    event, call = ask(h, CRASH_QUESTION)
    assert call.params["channel"] == "C0NEWS" and call.params["thread_ts"] == event["ts"]
    assert call.params["unfurl_links"] is False and call.params["unfurl_media"] is False
    shown = texts_of(call)
    assert re.search(r"\bnine\b", shown, re.IGNORECASE) and "Nawa" in shown
    assert "*Sources*" in shown
    assert re.search(
        r"\[\d\] <https://example-news\.test/helmand-helicopters\|Two army helicopters crash in Helmand's Nawa "
        r"district> — Kabul Ledger, 14 Oct 2020", shown)
    assert {e["action_id"] for b in call.params["blocks"] if b["type"] == "actions" for e in b["elements"]} == {
        FEEDBACK_UP, FEEDBACK_DOWN}
    # The bot's identity came from auth.test against SLACK_API_URL, with the bot token.
    assert h.slack.calls_to("auth.test")[0].token == h.slack.token


class LongAnswers(SpyEngine):
    """The real engine's answer, repeated until it is far too long for one Slack message."""

    def ask(self, question: str, **kwargs: Any) -> Any:
        answer = super().ask(question, **kwargs)
        return replace(answer, answer="\n\n".join([answer.answer] * 150))


def test_long_answer_continues_in_the_thread(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness(wrap=LongAnswers)
    event = mention_event(CRASH_QUESTION)
    h.send_event(event)
    h.slack.wait_for("chat.postMessage", where=lambda c: "actions" in json.dumps(c.params.get("blocks")))
    h.settle()
    messages = h.slack.calls_to("chat.postMessage", in_thread(event["ts"]))
    assert len(messages) >= 3
    for i, message in enumerate(messages):
        blocks = message.params["blocks"]
        assert len(blocks) < 50
        assert all(len(b["text"]["text"]) < 3000 for b in blocks if b["type"] == "section")
        if i:
            assert message.params["text"] == f"(continued, part {i + 1} of {len(messages)})"
    assert "*Sources*" in texts_of(messages[-1]) and "*Sources*" not in texts_of(messages[0])
    assert messages[-1].params["blocks"][-1]["type"] == "actions"


def test_slack_retry_is_not_answered_twice(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness()
    event = mention_event(CRASH_QUESTION)
    first, event_id = h.send_event(event)
    retry, _ = h.send_event(event, event_id=event_id,
                            headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert first.status_code == 200 and retry.status_code == 200
    h.slack.wait_for("chat.postMessage", where=in_thread(event["ts"]))
    again, _ = h.send_event(event, event_id=event_id, headers={"X-Slack-Retry-Num": "2"})
    assert again.status_code == 200
    h.settle()
    assert len(h.slack.calls_to("chat.postMessage", in_thread(event["ts"]))) == 1


def test_follow_up_uses_thread_history_and_mention_plus_message_answer_once(
    make_harness: Callable[..., BotHarness],
) -> None:
    spy: list[SpyEngine] = []
    h = make_harness(wrap=lambda engine: spy.append(SpyEngine(engine)) or spy[0])
    first, first_answer = ask(h, "How many people died in the helicopter crash in Nawa?")
    root = first["ts"]

    # A follow-up in the thread that also mentions the bot: Slack sends app_mention AND message.
    ts = new_ts()
    text = "<@UBOT> and what did the Taliban claim about it?"
    h.slack.add_message("C0NEWS", ts, text, user="U0ALICE", thread_ts=root)
    h.send_event(mention_event("and what did the Taliban claim about it?", ts=ts, thread_ts=root))
    h.send_event(message_event(text, ts=ts, thread_ts=root))
    h.slack.wait_for("chat.postMessage", count=2, where=in_thread(root))
    h.settle()
    assert len(h.slack.calls_to("chat.postMessage", in_thread(root))) == 2

    replies = h.slack.calls_to("conversations.replies")
    assert replies and replies[-1].params["channel"] == "C0NEWS" and replies[-1].params["ts"] == root
    question, kwargs = spy[0].calls[-1]
    assert question == "and what did the Taliban claim about it?"
    history = [(t.role, t.text) for t in kwargs["history"]]
    assert history[0] == ("user", "How many people died in the helicopter crash in Nawa?")
    assert history[1] == ("assistant", plain_text_from_slack(first_answer.params["text"]))
    assert all(text != t for _, t in history)  # the message being answered is not its own history

    # A plain follow-up (no mention) in the bot's thread is answered too.
    ts2 = new_ts()
    h.slack.add_message("C0NEWS", ts2, "what did NATO say?", user="U0BOB", thread_ts=root)
    h.send_event(message_event("what did NATO say?", ts=ts2, thread_ts=root, user="U0BOB"))
    h.slack.wait_for("chat.postMessage", count=3, where=in_thread(root))
    # ...but not one addressed to someone else, nor a plain message in a thread the bot never answered.
    h.send_event(message_event("<@U0BOB> can you check the toll?", thread_ts=root))
    other = new_ts()
    h.send_event(message_event("what did NATO say?", thread_ts=other))
    h.settle()
    assert not h.slack.calls_to("chat.postMessage", in_thread(other))
    assert len(h.slack.calls_to("chat.postMessage", in_thread(root))) == 3


def test_bad_signature_and_stale_timestamp_are_rejected(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness()
    body = json.dumps({"type": "event_callback", "event_id": "EvBAD", "team_id": "T0TEST",
                       "event": mention_event(CRASH_QUESTION)}).encode()
    wrong = post_signed(h.http, h.events_url, body, "application/json", secret="not-the-secret")
    stale = post_signed(h.http, h.events_url, body, "application/json", timestamp=int(time.time()) - 6 * 60)
    unsigned = h.http.post(h.events_url, content=body, headers={"Content-Type": "application/json"})
    garbage = h.http.post(h.events_url, content=body, headers={"X-Slack-Request-Timestamp": "soon",
                                                                "X-Slack-Signature": "v0=00"})
    for response in (wrong, stale, unsigned, garbage):
        assert response.status_code == 401
        assert "Traceback" not in response.text
    fresh = post_signed(h.http, h.events_url, body, "application/json", timestamp=int(time.time()) - 4 * 60)
    assert fresh.status_code == 200
    h.settle()
    assert len(h.slack.calls_to("chat.postMessage")) == 1  # only the validly signed one was answered


def test_http_edges(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness()
    assert h.http.get(h.server.url + "/healthz").json()["ok"] is True
    assert h.http.get(h.server.url + "/nope").status_code == 404
    assert h.http.post(h.server.url + "/slack/other", content=b"{}").status_code == 404
    big = b"x" * (1024 * 1024 + 1)
    response = post_signed(h.http, h.events_url, big, "application/json")
    assert response.status_code == 413
    # url_verification (the set-up handshake), signed.
    challenge = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "t"}).encode()
    response = post_signed(h.http, h.events_url, challenge, "application/json")
    assert response.status_code == 200 and response.json()["challenge"] == "abc123"


def test_summarize_acks_fast_then_posts_summary(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness()
    started = time.monotonic()
    response = h.send_command("/summarize", "fighting in Helmand 2020-10-01")
    assert time.monotonic() - started < 3
    assert response.status_code == 200
    assert "Working on a summary of fighting in Helmand since 2020-10-01" in response.text
    top_level = lambda call: call.params.get("channel") == "C0NEWS" and not call.params.get("thread_ts")  # noqa: E731
    [summary] = h.slack.wait_for("chat.postMessage", where=top_level)
    shown = texts_of(summary)
    assert "*Sources*" in shown and "[1]" in shown
    # The summary opens with what it is, over which window, and who asked for it.
    header = summary.params["blocks"][0]["text"]["text"]
    assert re.fullmatch(r"\*Summary: fighting in Helmand\* · since Thu 1 Oct 2020, 00:00 UTC · requested by <@U\w+>",
                        header), header

    usage = h.send_command("/summarize", "Helmand 2020-13-45")
    assert usage.status_code == 200 and "Usage: `/summarize" in usage.text
    h.settle()
    assert len(h.slack.calls_to("chat.postMessage", where=top_level)) == 1

    # A follow-up in the summary's thread is answered like any bot thread.
    root = str(summary.response["ts"])
    h.send_event(message_event("how many families fled Lashkargah?", thread_ts=root))
    [answer] = h.slack.wait_for("chat.postMessage", where=in_thread(root))
    assert "5,600" in texts_of(answer)


def test_summarize_reads_a_span_anywhere_in_the_text(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness(SITREP_TIMEZONE="Asia/Kabul")
    response = h.send_command("/summarize", "since 2020-10-16 fighting around Lashkargah")
    assert "Working on a summary of fighting around Lashkargah since 2020-10-15 19:30 UTC" in response.text
    [summary] = h.slack.wait_for("chat.postMessage", where=lambda call: not call.params.get("thread_ts"))
    shown = texts_of(summary)
    # Only the 16 October article is in the window; the 14 October crash reports are not.
    assert "Relief Monitor" in shown and "Kabul Ledger" not in shown and "Frontier Wire" not in shown
    assert "· since Fri 16 Oct 2020, 00:00 +0430 ·" in shown


def test_summarize_without_a_topic_is_headed_top_stories(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness()
    h.send_command("/summarize", "")
    [summary] = h.slack.wait_for("chat.postMessage", where=lambda call: not call.params.get("thread_ts"))
    blocks = summary.params["blocks"]
    assert blocks[0]["text"]["text"].startswith("*Top stories* · the 3 days up to the newest article · requested by <@")
    assert "biggest" in blocks[1]["text"]["text"] or "All " in blocks[1]["text"]["text"]
    assert summary.params["text"].startswith("*Top stories*")


def test_summarize_privately(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness(SITREP_SUMMARIZE_VISIBILITY="private")
    response = h.send_command("/summarize", "")
    assert response.status_code == 200
    [reply] = h.slack.wait_for("response_url")
    assert reply.params["response_type"] == "ephemeral" and "*Sources*" in texts_of(reply)
    h.settle()
    assert not h.slack.calls_to("chat.postMessage")


def test_sitrep_help_and_stats(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness()
    assert "/summarize" in h.send_command("/sitrep", "help").text
    assert "4 articles" in h.send_command("/sitrep", "stats").text


def test_feedback_click_is_stored_with_reason(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness()
    event, answer = ask(h, CRASH_QUESTION)
    answer_id = answer_id_of(answer)
    message = {"type": "message", "ts": "1700000001.000100", "thread_ts": event["ts"]}
    click = h.send_action({"action_id": FEEDBACK_DOWN, "block_id": "sitrep_feedback", "type": "button",
                           "value": answer_id, "action_ts": "1"}, message=message)
    assert click.status_code == 200
    [menu] = h.slack.wait_for("chat.postEphemeral")
    assert menu.params["user"] == "U0ALICE" and menu.params["thread_ts"] == event["ts"]
    select = menu.params["blocks"][0]["accessory"]
    assert select["action_id"] == FEEDBACK_REASON
    [row] = h.bot.state.feedback(answer_id)
    assert (row.user, row.rating, row.reason) == ("U0ALICE", "down", None)
    assert row.question == CRASH_QUESTION and row.answer and row.citations

    option = next(o for o in select["options"] if o["value"].endswith(":wrong_figure"))
    chosen = h.send_action({"action_id": FEEDBACK_REASON, "block_id": "sitrep_feedback", "type": "static_select",
                            "selected_option": option, "action_ts": "2"}, message=message)
    assert chosen.status_code == 200
    [thanks] = h.slack.wait_for("response_url")
    assert "wrong figure" in thanks.params["text"]
    [row] = h.bot.state.feedback(answer_id)
    assert row.reason == "wrong_figure"

    h.send_action({"action_id": FEEDBACK_UP, "block_id": "sitrep_feedback", "type": "button",
                   "value": answer_id, "action_ts": "3"}, user="U0BOB", message=message)
    h.slack.wait_for("chat.postEphemeral", count=2)
    assert {(r.user, r.rating) for r in h.bot.state.feedback(answer_id)} == {("U0ALICE", "down"), ("U0BOB", "up")}


def test_assistant_thread_prompts_status_and_answer(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness()
    thread_ts = new_ts()
    started = {"type": "assistant_thread_started", "event_ts": thread_ts,
               "assistant_thread": {"user_id": "U0ALICE", "channel_id": "D0DM", "thread_ts": thread_ts,
                                    "context": {"channel_id": "C0NEWS", "team_id": "T0TEST"}}}
    h.slack.add_message("D0DM", thread_ts, "", user="UBOT", bot_id="BBOT")
    assert h.send_event(started)[0].status_code == 200
    [prompts] = h.slack.wait_for("assistant.threads.setSuggestedPrompts")
    assert prompts.params["channel_id"] == "D0DM" and prompts.params["thread_ts"] == thread_ts
    assert [p["message"] for p in prompts.params["prompts"]] == [p["message"] for p in SUGGESTED_PROMPTS]

    ts = new_ts()
    h.slack.add_message("D0DM", ts, "What happened in Lashkargah?", thread_ts=thread_ts)
    h.send_event(message_event("What happened in Lashkargah?", channel="D0DM", channel_type="im", ts=ts,
                               thread_ts=thread_ts))
    [status] = h.slack.wait_for("assistant.threads.setStatus")
    assert status.params["status"] == "Searching 4 articles…"
    answers = h.slack.wait_for("chat.postMessage", count=2, where=in_thread(thread_ts))
    assert "Lashkargah" in texts_of(answers[-1]) and "*Sources*" in texts_of(answers[-1])


def test_direct_message_is_answered(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness(SITREP_ALLOWED_CHANNELS="C0OTHER")  # DMs are always allowed
    event = message_event("What did Stoltenberg say?", channel="D0DM", channel_type="im")
    h.send_event(event)
    [answer] = h.slack.wait_for("chat.postMessage", where=in_thread(event["ts"]))
    assert "Stoltenberg" in texts_of(answer)


def test_channel_not_allowed_gets_polite_refusal(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness(SITREP_ALLOWED_CHANNELS="C0OTHER,C0MORE")
    event = mention_event(CRASH_QUESTION)
    h.send_event(event)
    [refusal] = h.slack.wait_for("chat.postMessage", where=in_thread(event["ts"]))
    assert refusal.params["text"] == NOT_ALLOWED
    usage = h.send_command("/summarize", "Helmand")
    assert usage.text == NOT_ALLOWED
    h.settle()
    assert len(h.slack.calls_to("chat.postMessage")) == 1


def test_bots_edits_and_own_messages_are_ignored(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness()
    event, _ = ask(h, CRASH_QUESTION)
    root = event["ts"]
    h.send_event(message_event("edited question?", thread_ts=root, subtype="message_changed"))
    h.send_event(message_event("a bot's question?", thread_ts=root, bot_id="B0OTHER"))
    h.send_event(message_event("my own words", thread_ts=root, user="UBOT"))
    h.settle()
    assert len(h.slack.calls_to("chat.postMessage", in_thread(root))) == 1


def test_failures_are_reported_in_the_thread(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness()
    event = mention_event("Helmand? " * 400)  # far over the engine's question limit
    h.send_event(event)
    [notice] = h.slack.wait_for("chat.postMessage", where=in_thread(event["ts"]))
    assert "2,000 characters" in notice.params["text"] or "too long" in notice.params["text"].lower()

    empty = mention_event("")
    h.send_event(empty)
    [hint] = h.slack.wait_for("chat.postMessage", where=in_thread(empty["ts"]))
    assert "Ask me a question" in hint.params["text"]


def test_rate_limit_and_rate_limited_slack_api(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness(SITREP_USER_RATE_PER_MINUTE="1")
    h.slack.fail("chat.postMessage", status=429, retry_after=0)  # the client waits and retries
    first, answer = ask(h, CRASH_QUESTION)
    assert "*Sources*" in texts_of(answer)
    assert len(h.slack.calls_to("chat.postMessage", in_thread(first["ts"]))) == 2  # 429, then the retry
    second = mention_event("What did NATO say?")
    h.send_event(second)
    [notice] = h.slack.wait_for("chat.postMessage", where=in_thread(second["ts"]))
    assert "in the last minute" in notice.params["text"]


def test_busy_queue_position_and_capacity(make_harness: Callable[..., BotHarness]) -> None:
    hold = threading.Event()
    spy: list[SpyEngine] = []
    h = make_harness(wrap=lambda e: spy.append(SpyEngine(e, hold)) or spy[0], SITREP_WORKERS="1",
                     SITREP_QUEUE_SIZE="1")
    events = [mention_event(CRASH_QUESTION, user=f"U{i}") for i in range(3)]
    h.send_event(events[0])
    deadline = time.monotonic() + 10
    while not spy[0].calls and time.monotonic() < deadline:  # the first answer is being worked on
        time.sleep(0.01)
    h.send_event(events[1])
    [busy] = h.slack.wait_for("chat.postMessage", where=in_thread(events[1]["ts"]))
    assert busy.params["text"] == "I'm busy — you're number 1 in line."
    h.send_event(events[2])
    [full] = h.slack.wait_for("chat.postMessage", where=in_thread(events[2]["ts"]))
    assert full.params["text"] == OVER_CAPACITY
    hold.set()
    h.slack.wait_for("chat.postMessage", count=2, where=in_thread(events[1]["ts"]))
    h.slack.wait_for("chat.postMessage", where=in_thread(events[0]["ts"]))


def test_admin_ingest_from_slack(make_harness: Callable[..., BotHarness], corpus_factory: Callable[..., Corpus]
                                 ) -> None:
    corpus = corpus_factory(articles=fixture_articles(), fetch=LOCAL_FETCH)
    page = ("<html><head><title>Aid convoy reaches Lashkargah</title></head><body><article><h1>Aid convoy "
            "reaches Lashkargah</h1><p>A convoy of twelve trucks carrying food and medicine reached Lashkargah "
            "on Saturday, the World Food Programme said.</p><p>The agency said it plans to reach 40,000 people "
            "displaced by the fighting in Helmand over the coming week.</p></article></body></html>")
    with LocalHTTPServer({"/aid-convoy": Route(page)}) as web:
        h = make_harness(corpus=corpus, SITREP_ADMIN_USERS="U0ADMIN")
        url = web.url("/aid-convoy")
        refused = mention_event(f"ingest <{url}>", user="U0ALICE")
        h.send_event(refused)
        [no] = h.slack.wait_for("chat.postMessage", where=in_thread(refused["ts"]))
        assert no.params["text"] == NOT_ADMIN
        event = mention_event(f"ingest <{url}>", user="U0ADMIN")
        h.send_event(event)
        [report] = h.slack.wait_for("chat.postMessage", where=in_thread(event["ts"]), timeout=30)
    assert report.params["text"].startswith("Added 1,")
    assert f"<{url}|Aid convoy reaches Lashkargah>" in texts_of(report)
    assert h.bot.corpus.stats().documents == 5


def test_article_text_can_never_ping_or_link(make_harness: Callable[..., BotHarness], corpus: Corpus) -> None:
    hostile = Article(
        text=("Curfew declared in Lashkargah <!channel> <!here> <@U123> as the Taliban advance. "
              "Residents were told to click <javascript:alert(1)|the safety map> and to alert @everyone.\n"
              "The curfew in Lashkargah will last from 6pm to 6am, the governor's office said."),
        source_key="https://hostile.test/curfew", title="Curfew <!channel> in Lashkargah",
        url="javascript:alert(2)", source="<@U999> Wire",
        published=datetime(2020, 10, 17, tzinfo=UTC), kind="url",
    )
    corpus.ingest_articles([hostile])
    h = make_harness(corpus=corpus)
    _, answer = ask(h, "What curfew was declared in Lashkargah?")
    shown = texts_of(answer) + json.dumps(answer.params.get("blocks"))
    assert "curfew" in shown.lower()
    for call in h.slack.calls:
        text = texts_of(call)
        for target in re.findall(r"<([^<>]*)>", text):
            assert re.match(r"https?://", target), f"live control sequence <{target}> in {call.method}"
        assert not re.search(r"(?<!\w)@(channel|here|everyone)\b", text)
        assert "javascript:" not in "".join(re.findall(r"<[^<>]*>", text))


def test_startup_check_reports_bad_token_in_one_line(tmp_path: Path, slack: SlackApiServer) -> None:
    settings = settings_for(tmp_path, slack)
    assert check_auth(make_client(settings))["user_id"] == "UBOT"
    bad = settings_for(tmp_path, slack, SLACK_BOT_TOKEN="xoxb-wrong")
    with pytest.raises(SlackSetupError) as info:
        check_auth(make_client(bad))
    message = str(info.value)
    assert "invalid_auth" in message and "\n" not in message and "xoxb-wrong" not in message
    nothing_there = WebClient(token=slack.token, base_url="http://127.0.0.1:9/api/", retry_handlers=[])
    with pytest.raises(SlackSetupError, match="Cannot reach"):
        check_auth(nothing_there)

