"""Socket Mode: the same Bolt app and listeners, driven through Bolt's request dispatch (no HTTP, no
signature), as the Socket Mode handler does for each envelope it receives."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.request import BoltRequest
from slack_signing import (
    CRASH_QUESTION,
    BotHarness,
    action_body,
    command_body,
    event_body,
    in_thread,
    make_harness_fixture,  # noqa: F401 - fixture "make_harness"
    mention_event,
    settings_for,
    shared_corpus_fixture,  # noqa: F401 - fixture "shared_corpus"
    slack_fixture,  # noqa: F401 - fixture "slack"
    texts_of,
)

from bot.answer.engine import Engine
from bot.errors import SlackSetupError
from bot.render.slack import FEEDBACK_UP
from bot.slack.app import SlackBot
from bot.slack.server import check_credentials, serve_socket_mode
from retrieval.corpus import Corpus
from retrieval.errors import ConfigError

from slack_api_server import SlackApiServer


def dispatch(h: BotHarness, payload: dict[str, Any], retry: int | None = None) -> Any:
    headers = {"x-slack-retry-num": str(retry)} if retry is not None else None
    return h.bot.app.dispatch(BoltRequest(mode="socket_mode", body=payload, headers=headers))


def form(body: bytes) -> dict[str, Any]:
    return dict(parse_qsl(body.decode()))


def test_socket_mode_dispatch_runs_the_same_listeners(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness(SLACK_APP_TOKEN="xapp-1-test")  # requests below carry no signature at all
    event = mention_event(CRASH_QUESTION)
    body, _ = event_body(event)
    envelope = json.loads(body)
    assert dispatch(h, envelope).status == 200
    [answer] = h.slack.wait_for("chat.postMessage", where=in_thread(event["ts"]))
    assert "*Sources*" in texts_of(answer)
    assert dispatch(h, envelope, retry=1).status == 200  # a redelivered envelope: no second answer
    h.settle()
    assert len(h.slack.calls_to("chat.postMessage", in_thread(event["ts"]))) == 1

    ack = dispatch(h, form(command_body("/summarize", "fighting in Helmand", h.slack.response_url("c"))))
    assert ack.status == 200 and "Working on a summary" in ack.body
    top_level = lambda call: not call.params.get("thread_ts")  # noqa: E731
    [summary] = h.slack.wait_for("chat.postMessage", where=top_level)
    assert "*Sources*" in texts_of(summary)

    answer_id = next(b for b in answer.params["blocks"] if b["type"] == "actions")["elements"][0]["value"]
    click = json.loads(form(action_body({"action_id": FEEDBACK_UP, "block_id": "sitrep_feedback",
                                         "type": "button", "value": answer_id, "action_ts": "1"},
                                        h.slack.response_url("a")))["payload"])
    assert dispatch(h, click).status == 200
    h.slack.wait_for("chat.postEphemeral")
    assert [(r.rating, r.user) for r in h.bot.state.feedback(answer_id)] == [("up", "U0ALICE")]


def test_socket_mode_setup_errors(tmp_path: Path, slack: SlackApiServer, shared_corpus: Corpus) -> None:
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN is not an app-level token: it must start with xapp-"):
        settings_for(tmp_path, slack, SLACK_APP_TOKEN="xoxb-not-an-app-token")
    # Built without the settings check, a wrong token is still refused before Slack is called.
    settings = replace(settings_for(tmp_path, slack, SLACK_SIGNING_SECRET=""), slack_app_token="xoxb-not-app")
    bot = SlackBot(settings, Engine(settings.llm, shared_corpus), shared_corpus)
    try:
        check_credentials(settings)  # Socket Mode needs no signing secret
        assert bot.identity.check()["user_id"] == "UBOT"
        with pytest.raises(SlackSetupError, match="SLACK_APP_TOKEN must be an app-level token"):
            serve_socket_mode(bot)
        handler = SocketModeHandler(bot.app, app_token="xapp-1-test")
        assert handler.client.web_client.base_url == slack.url  # apps.connections.open goes to SLACK_API_URL
    finally:
        bot.close()
    no_token = settings_for(tmp_path, slack, SLACK_BOT_TOKEN="")
    with pytest.raises(SlackSetupError, match="SLACK_BOT_TOKEN is not set"):
        SlackBot(no_token, Engine(no_token.llm, shared_corpus), shared_corpus)
    http_without_secret = settings_for(tmp_path, slack, SLACK_SIGNING_SECRET="")
    with pytest.raises(SlackSetupError, match="SLACK_SIGNING_SECRET is not set"):
        check_credentials(http_without_secret)
    assert not slack.calls_to("apps.connections.open")
