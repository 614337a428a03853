"""Hostile requests to HTTP mode: forged, tampered, replayed, oversized and malformed bodies, and internal
errors that must not leak. Real signed requests to the bot's Starlette app under uvicorn on 127.0.0.1, with
the local Slack Web API server. (Bad and stale signatures on events, 413 and 404 basics, and Slack's own
retries are in tests/test_slack_http.py.)"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_signing import (
    CRASH_QUESTION,
    BotHarness,
    SpyEngine,
    action_body,
    assert_slack_safe,
    command_body,
    event_body,
    in_thread,
    make_harness_fixture,  # noqa: F401 - fixture "make_harness"
    mention_event,
    post_signed,
    settings_for,
    shared_corpus_fixture,  # noqa: F401 - fixture "shared_corpus"
    sign,
    slack_fixture,  # noqa: F401 - fixture "slack"
)

from bot.answer.engine import Engine
from bot.errors import SlackSetupError
from bot.render.slack import FEEDBACK_UP
from bot.settings import Settings, load_settings
from bot.slack.app import SlackBot
from bot.slack.server import create_http_app
from retrieval.corpus import Corpus

from slack_api_server import SlackApiServer

FORM = "application/x-www-form-urlencoded"
SECRET_DETAIL = "/srv/sitrep/internal-detail-7f3a"  # must never reach a response or a Slack message


def _no_leak(text: str) -> None:
    assert "Traceback" not in text and "File \"" not in text and SECRET_DETAIL not in text
    assert "RuntimeError" not in text and "Exception" not in text


def test_no_setting_turns_signature_verification_off(tmp_path: Path, slack: SlackApiServer,
                                                     shared_corpus: Corpus) -> None:
    switches = [f.name for f in dataclasses.fields(Settings) if re.search(r"verif|insecure|skip|unsigned", f.name)]
    assert switches == []
    for secret in ("", "   "):
        settings = settings_for(tmp_path, slack, SLACK_SIGNING_SECRET=secret)
        assert settings.slack_signing_secret is None
        bot = SlackBot(settings, Engine(settings.llm, shared_corpus), shared_corpus)
        try:
            with pytest.raises(SlackSetupError, match="SLACK_SIGNING_SECRET"):
                create_http_app(bot)
        finally:
            bot.close()
    # Socket Mode credentials present too: the HTTP app still demands a signing secret.
    both = load_settings({"SITREP_DATA_DIR": str(tmp_path / "data"), "SLACK_BOT_TOKEN": slack.token,
                          "SLACK_APP_TOKEN": "xapp-1-test", "SLACK_API_URL": slack.url})
    bot = SlackBot(both, Engine(both.llm, shared_corpus), shared_corpus)
    try:
        with pytest.raises(SlackSetupError):
            create_http_app(bot)
    finally:
        bot.close()


def test_every_request_kind_needs_a_valid_fresh_signature(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness(SITREP_ADMIN_USERS="U0ALICE")
    url = h.events_url
    now = int(time.time())
    event, _ = event_body(mention_event(CRASH_QUESTION))
    command = command_body("/summarize", "Helmand", h.slack.response_url("c"))
    action = action_body({"action_id": FEEDBACK_UP, "value": "x", "type": "button"}, h.slack.response_url("a"))
    challenge = json.dumps({"type": "url_verification", "challenge": "abc", "token": "t"}).encode()
    requests = [(event, "application/json"), (command, FORM), (action, FORM), (challenge, "application/json")]
    for body, content_type in requests:
        forged = [
            h.http.post(url, content=body, headers={"Content-Type": content_type}),  # unsigned
            post_signed(h.http, url, body, content_type, secret="guessed-secret"),
            post_signed(h.http, url, body, content_type, timestamp=now + 6 * 60),  # from the future
            post_signed(h.http, url, body, content_type, timestamp=now - 5 * 60 - 30),  # replayed too late
            # A captured signature on a tampered body, and on the same body with another timestamp.
            h.http.post(url, content=body + b" ", headers={"Content-Type": content_type, **sign(body)}),
            h.http.post(url, content=body, headers={"Content-Type": content_type,
                                                    "X-Slack-Request-Timestamp": str(now - 1),
                                                    "X-Slack-Signature": sign(body, timestamp=now)[
                                                        "X-Slack-Signature"]}),
            # Digits that str.isdigit() accepts but int() does not.
            h.http.post(url, content=body, headers={"Content-Type": content_type,
                                                    "X-Slack-Request-Timestamp": "\u00b2\u00b3".encode("latin-1"),
                                                    "X-Slack-Signature": "v0=00"}),
        ]
        for response in forged:
            assert response.status_code == 401, (body[:40], response.status_code)
            assert response.json() == {"error": "invalid request"}
    h.settle()
    assert not [c for c in h.slack.calls if c.method != "auth.test"]  # no listener ran for any of them


def test_replay_within_the_window_is_not_answered_twice(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness()
    event = mention_event(CRASH_QUESTION)
    body, _ = event_body(event)
    headers = {"Content-Type": "application/json", **sign(body, timestamp=int(time.time()) - 120)}
    first = h.http.post(h.events_url, content=body, headers=headers)
    h.slack.wait_for("chat.postMessage", where=in_thread(event["ts"]))
    replayed = h.http.post(h.events_url, content=body, headers=headers)  # the same bytes, captured
    assert first.status_code == replayed.status_code == 200
    h.settle()
    assert len(h.slack.calls_to("chat.postMessage", in_thread(event["ts"]))) == 1


def test_malformed_and_oversized_bodies(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness()
    for body, content_type in [(b"{not json", "application/json"), (b"[1, 2]", "application/json"),
                               (b"payload=%7Bbroken", FORM), (b"\xff\xfe\x00", "application/json")]:
        response = post_signed(h.http, h.events_url, body, content_type)
        assert response.status_code == 400, body
        assert response.json() == {"error": "invalid request"}

    def chunked() -> Iterator[bytes]:  # no Content-Length: the cap applies while reading
        for _ in range(12):
            yield b"x" * 100_000

    response = h.http.post(h.events_url, content=chunked(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    for method, path in [("GET", "/slack/events"), ("POST", "/healthz"), ("POST", "/slack/events/../admin"),
                         ("GET", "/.env"), ("POST", "/slack/actions")]:
        response = h.http.request(method, h.server.url + path)
        assert response.status_code in (404, 405), (method, path)
        _no_leak(response.text)
    h.settle()
    assert not [c for c in h.slack.calls if c.method != "auth.test"]


class RaisingEngine(SpyEngine):
    """An engine with a bug: every question raises an unexpected exception."""

    def ask_stream(self, question: str, **kwargs: Any) -> Any:
        raise RuntimeError(f"cannot open {SECRET_DETAIL}")

    def ask(self, question: str, **kwargs: Any) -> Any:
        raise RuntimeError(f"cannot open {SECRET_DETAIL}")


class BrokenCorpus:
    """A corpus whose statistics query fails unexpectedly (everything else is the real corpus)."""

    def __init__(self, corpus: Corpus) -> None:
        self._corpus = corpus

    def __getattr__(self, name: str) -> Any:
        return getattr(self._corpus, name)

    def stats(self) -> Any:
        raise RuntimeError(f"stats failed at {SECRET_DETAIL}")


def test_internal_errors_reach_nobody_as_stack_traces(make_harness: Callable[..., BotHarness],
                                                      shared_corpus: Corpus,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    h = make_harness(wrap=RaisingEngine, corpus=BrokenCorpus(shared_corpus))
    # An answer that fails: one plain sentence in the thread.
    event = mention_event(CRASH_QUESTION)
    assert h.send_event(event)[0].status_code == 200
    [notice] = h.slack.wait_for("chat.postMessage", where=in_thread(event["ts"]))
    assert notice.params["text"] == "Sorry, something went wrong while answering; the details are in the sitrep log."
    # A slash command whose listener fails: HTTP 200 with one sentence, not a 500.
    stats = h.send_command("/sitrep", "stats")
    assert stats.status_code == 200
    assert stats.json() == {"response_type": "ephemeral",
                            "text": "Sorry, something went wrong while answering; the details are in the sitrep log."}
    # A failure in the HTTP layer itself: a bare 500.
    monkeypatch.setattr(h.bot, "dispatch_later", lambda request: (_ for _ in ()).throw(
        RuntimeError(SECRET_DETAIL)))
    broken = h.send_event(mention_event(CRASH_QUESTION))[0]
    assert broken.status_code == 500 and broken.text == "Internal Server Error"
    for response in (stats, broken):
        _no_leak(response.text)
    h.settle()
    assert_slack_safe(h.slack.calls, forbidden=("Traceback", SECRET_DETAIL, "RuntimeError"))
