"""The Slack bot in LLM mode: streamed answers (chat streaming, or post-then-update when Slack refuses to
stream) and LLM failures, against the local OpenAI-compatible server and the local Slack API server."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from slack_signing import (
    CRASH_QUESTION,
    MODEL_ANSWER,
    BotHarness,
    in_thread,
    make_harness_fixture,  # noqa: F401 - fixture "make_harness"
    mention_event,
    shared_corpus_fixture,  # noqa: F401 - fixture "shared_corpus"
    slack_fixture,  # noqa: F401 - fixture "slack"
    texts_of,
)

from openai_server import OpenAIServer, Reply


@pytest.fixture
def llm() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def llm_harness(make_harness: Callable[..., BotHarness], llm: OpenAIServer) -> Callable[..., BotHarness]:
    def make(**env: str) -> BotHarness:
        return make_harness(SITREP_ANSWER_MODE="llm", OPENAI_API_KEY="sk-test-not-real",
                            OPENAI_BASE_URL=llm.base_url, SITREP_LLM_MAX_RETRIES="0", SITREP_LLM_TIMEOUT="10",
                            **env)

    return make


def streamed_text(h: BotHarness) -> str:
    parts = []
    for call in h.slack.calls:
        if call.method in ("chat.startStream", "chat.appendStream", "chat.stopStream"):
            parts.append(str(call.params.get("markdown_text") or ""))
            parts.extend(str(c.get("text", "")) for c in call.params.get("chunks") or [])
    return "".join(parts)


def test_llm_answer_streams_then_becomes_the_rendered_answer(
    llm_harness: Callable[..., BotHarness], llm: OpenAIServer
) -> None:
    h = llm_harness()
    llm.push(Reply(text=MODEL_ANSWER, chunk_size=5))
    event = mention_event(CRASH_QUESTION)
    h.send_event(event)
    [final] = h.slack.wait_for("chat.update")
    [start] = h.slack.calls_to("chat.startStream")
    assert start.params["channel"] == "C0NEWS" and start.params["thread_ts"] == event["ts"]
    assert start.params["recipient_team_id"] == "T0TEST" and start.params["recipient_user_id"] == "U0ALICE"
    assert h.slack.calls_to("chat.stopStream")
    assert "eight and fifteen" in streamed_text(h)
    assert final.params["ts"] == start.response["ts"]  # the streamed message became the final answer
    shown = texts_of(final)
    assert "*Sources*" in shown and "Frontier Wire" in shown and "eight and fifteen" in shown
    h.settle()
    assert not h.slack.calls_to("chat.postMessage", in_thread(event["ts"]))  # one message, no duplicate
    # The article text reached the model as delimited data.
    assert '<source id="1"' in llm.chat_requests()[-1].content("user")


def test_stream_refused_falls_back_to_post_then_update(
    llm_harness: Callable[..., BotHarness], llm: OpenAIServer
) -> None:
    h = llm_harness()
    h.slack.fail("chat.startStream", error="not_allowed_token_type")
    llm.push(Reply(text=MODEL_ANSWER))
    event = mention_event(CRASH_QUESTION)
    h.send_event(event)
    [final] = h.slack.wait_for("chat.update")
    [posted] = h.slack.calls_to("chat.postMessage", in_thread(event["ts"]))
    assert "eight and fifteen" in posted.params["text"]
    assert final.params["ts"] == posted.response["ts"]
    assert "*Sources*" in texts_of(final)
    h.settle()
    assert len(h.slack.calls_to("chat.postMessage", in_thread(event["ts"]))) == 1


def test_llm_failure_is_reported_in_the_thread(llm_harness: Callable[..., BotHarness], llm: OpenAIServer) -> None:
    h = llm_harness(SITREP_LLM_FALLBACK="error")
    llm.push(Reply(status=500, error="model exploded"))
    event = mention_event(CRASH_QUESTION)
    h.send_event(event)
    [notice] = h.slack.wait_for("chat.postMessage", where=in_thread(event["ts"]))
    text = notice.params["text"]
    assert re.fullmatch(r"[^\n]+[.!?]", text), text  # one sentence
    assert "language model" in text and "model exploded" not in text


def test_llm_failure_with_extractive_fallback_still_answers(
    llm_harness: Callable[..., BotHarness], llm: OpenAIServer
) -> None:
    h = llm_harness(SITREP_LLM_FALLBACK="extractive")
    llm.push(Reply(status=500, error="model exploded"))
    h.send_event(mention_event(CRASH_QUESTION))
    [final] = h.slack.wait_for("chat.update")
    shown = texts_of(final)
    assert "*Sources*" in shown and re.search(r"\bnine\b", shown)
    assert "(extractive)" in shown  # the fallback says what it is


@pytest.mark.parametrize("reply", [
    MODEL_ANSWER.replace(" [1].", " [1]. The pilots were later arrested in Kabul [1].", 1),
    "[1] [2] [3]",
])
def test_streaming_never_shows_what_verification_drops(
    llm_harness: Callable[..., BotHarness], llm: OpenAIServer, reply: str
) -> None:
    """An invented sentence, or a reply of markers only, streamed a few characters at a time: no call to
    Slack ever carries it, and the thread still gets a cited answer."""
    h = llm_harness()
    llm.push(Reply(text=reply, chunk_size=3))
    h.send_event(mention_event(CRASH_QUESTION))
    [final] = h.slack.wait_for("chat.update")
    h.settle()
    everything = streamed_text(h) + " ".join(str(call.params) for call in h.slack.calls)
    assert "arrested" not in everything and "[1] [2]" not in everything
    shown = texts_of(final)
    assert "*Sources*" in shown and re.search(r"\bnine\b", shown)
