"""The language model stumbles while the Slack bot answers: it times out, sends a body that is not a
completion, or breaks off mid-stream. With ``SITREP_LLM_FALLBACK=extractive`` the thread still gets a cited
answer that says what happened; with ``error`` it gets one sentence. Real signed requests to HTTP mode, the
local OpenAI-compatible server (tests/openai_server.py) and the local Slack API server."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from slack_signing import (
    CRASH_QUESTION,
    MODEL_ANSWER,
    BotHarness,
    assert_slack_safe,
    in_thread,
    make_harness_fixture,  # noqa: F401 - fixture "make_harness"
    mention_event,
    shared_corpus_fixture,  # noqa: F401 - fixture "shared_corpus"
    slack_fixture,  # noqa: F401 - fixture "slack"
    texts_of,
)

from openai_server import OpenAIServer, Reply
from slack_api_server import Call

TIMEOUT = "0.5"
LEAKS = ("Traceback", "APITimeoutError", "ReadTimeout", "JSONDecodeError", "sk-test-not-real")


@pytest.fixture(scope="module")
def llm_server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:  # one per module: stopping a server takes most of a second
        yield server


@pytest.fixture
def llm(llm_server: OpenAIServer) -> OpenAIServer:
    llm_server.replies.clear()
    llm_server.requests.clear()
    return llm_server


@pytest.fixture
def llm_harness(make_harness: Callable[..., BotHarness], llm: OpenAIServer) -> Callable[..., BotHarness]:
    def make(fallback: str) -> BotHarness:
        return make_harness(SITREP_ANSWER_MODE="llm", OPENAI_API_KEY="sk-test-not-real", OPENAI_BASE_URL=llm.base_url,
                            SITREP_LLM_MAX_RETRIES="0", SITREP_LLM_TIMEOUT=TIMEOUT, SITREP_LLM_FALLBACK=fallback)

    return make


def final_answer(h: BotHarness, thread_ts: str) -> Call:
    """The one rendered answer (it has feedback buttons) in the thread, once the bot is idle: posted, or the
    streamed (or posted) message updated into it."""
    here = in_thread(thread_ts)
    ours = {c.response.get("ts") for c in h.slack.calls if c.method in ("chat.startStream", "chat.postMessage")
            and here(c)}
    rendered = [c for c in h.slack.calls
                if any(b.get("type") == "actions" for b in c.params.get("blocks") or [])
                and ((c.method == "chat.postMessage" and here(c)) or (c.method == "chat.update"
                                                                      and c.params.get("ts") in ours))]
    assert len(rendered) == 1, [c.method for c in h.slack.calls]
    return rendered[0]


def ask_and_settle(h: BotHarness) -> str:
    event = mention_event(CRASH_QUESTION)
    assert h.send_event(event)[0].status_code == 200
    h.settle()
    return event["ts"]


@pytest.mark.parametrize("reply, note", [
    (Reply(text=MODEL_ANSWER, delay=5), f"did not answer within {TIMEOUT} seconds"),
    (Reply(raw=b"<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html"),
     "sent a reply sitrep could not read"),
    (Reply(raw=b'{"choices": "surprise", "id": 7}'), "sent a reply sitrep could not read"),
], ids=["timeout", "html", "json-garbage"])
def test_llm_fault_falls_back_to_a_cited_extractive_answer(llm_harness: Callable[..., BotHarness],
                                                          llm: OpenAIServer, reply: Reply, note: str) -> None:
    h = llm_harness("extractive")
    llm.push(reply)
    thread = ask_and_settle(h)
    shown = texts_of(final_answer(h, thread))
    assert re.search(r"\bnine\b", shown) and "*Sources*" in shown
    assert "(extractive)" in shown and note in shown and "This is an extractive answer instead." in shown
    assert_slack_safe(h.slack.calls, forbidden=LEAKS)
    assert len(llm.chat_requests()) == 1  # retries are off here: one request, then the fallback


@pytest.mark.parametrize("reply, note", [
    (Reply(text=MODEL_ANSWER, delay=5), f"did not answer within {TIMEOUT} seconds"),
    (Reply(raw=b"\x00\xff not json at all"), "sent a reply sitrep could not read"),
], ids=["timeout", "garbage"])
def test_llm_fault_with_fallback_error_is_one_sentence_in_the_thread(
    llm_harness: Callable[..., BotHarness], llm: OpenAIServer, reply: Reply, note: str
) -> None:
    h = llm_harness("error")
    llm.push(reply)
    thread = ask_and_settle(h)
    [notice] = h.slack.calls_to("chat.postMessage", in_thread(thread))
    text = notice.params["text"]
    assert note in text and re.fullmatch(r"[^\n]+[.!?]", text) and text.count(". ") <= 1, text
    assert not h.slack.calls_to("chat.update")  # no half answer left behind
    assert_slack_safe(h.slack.calls, forbidden=LEAKS)


def test_stream_breaking_off_keeps_the_verified_part_with_a_note(llm_harness: Callable[..., BotHarness],
                                                                 llm: OpenAIServer) -> None:
    h = llm_harness("extractive")
    # The first sentence cites both crash stories: supported whichever of them search ranks first.
    first = MODEL_ANSWER[: MODEL_ANSWER.index("[1].")] + "[1][2]. "
    llm.push(Reply(chunks=[first, "The Ministry of", " Defense said"], break_after=3))
    thread = ask_and_settle(h)
    shown = texts_of(final_answer(h, thread))
    assert "eight and fifteen" in shown and "*Sources*" in shown
    assert "The answer was cut short" in shown and "Ministry of Defense said two" not in shown
    assert_slack_safe(h.slack.calls, forbidden=LEAKS)


def test_summarize_survives_a_slow_model(llm_harness: Callable[..., BotHarness], llm: OpenAIServer) -> None:
    h = llm_harness("extractive")
    llm.push(Reply(text="Helicopters crashed in Nawa [1].", delay=5))
    response = h.send_command("/summarize", "helicopter crash Nawa")
    assert response.status_code == 200 and "Working on a summary" in response.text
    h.settle()
    [summary] = h.slack.calls_to("chat.postMessage", lambda c: not c.params.get("thread_ts"))
    shown = texts_of(summary)
    assert "*Sources*" in shown and "(extractive)" in shown and f"within {TIMEOUT} seconds" in shown
    assert_slack_safe(h.slack.calls, forbidden=LEAKS)
