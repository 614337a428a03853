"""``/digest`` and ``/digest now`` through the real Slack bot over HTTP, against the local Slack API server."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from slack_signing import (
    BotHarness,
    make_harness_fixture,  # noqa: F401 - fixture "make_harness"
    shared_corpus_fixture,  # noqa: F401 - fixture "shared_corpus"
    slack_fixture,  # noqa: F401 - fixture "slack"
    texts_of,
)

from bot.slack.listeners.digest import NOT_ADMIN, USAGE

from slack_api_server import SlackApiServer

ENV = {"SITREP_DIGEST_CHANNEL": "CDIGEST", "SITREP_DIGEST_TIME": "08:00", "SITREP_TIMEZONE": "Europe/London",
       "SITREP_ADMIN_USERS": "U0ADMIN"}
NOW = datetime(2020, 10, 16, 9, 0, tzinfo=ZoneInfo("Europe/London"))


def _harness(make_harness: Callable[..., BotHarness], tmp_path: Path, slack: SlackApiServer) -> BotHarness:
    return make_harness(clock=lambda: NOW, **ENV)


def test_digest_preview_is_private(make_harness: Callable[..., BotHarness], tmp_path: Path,
                                   slack: SlackApiServer) -> None:
    h = _harness(make_harness, tmp_path, slack)
    started = time.monotonic()
    response = h.send_command("/digest", "", channel="C0NEWS")
    assert time.monotonic() - started < 3
    assert response.status_code == 200 and "Building the next digest for <#CDIGEST>" in response.text
    [reply] = slack.wait_for("response_url", where=lambda c: "Preview" in texts_of(c))
    shown = texts_of(reply)
    assert reply.params["response_type"] == "ephemeral"
    assert "Preview of the next digest for <#CDIGEST> as of now; it posts Sat 17 Oct, 08:00 BST" in shown
    assert "*Sources*" in shown and "16 Oct 2020" in shown and "[1]" in shown
    h.settle()
    assert not slack.calls_to("chat.postMessage")


def test_digest_now_is_for_admins_and_posts_once(make_harness: Callable[..., BotHarness], tmp_path: Path,
                                                 slack: SlackApiServer) -> None:
    h = _harness(make_harness, tmp_path, slack)
    refused = h.send_command("/digest", "now", channel="CDIGEST", user="U0ALICE")
    assert refused.status_code == 200 and NOT_ADMIN in refused.text
    h.settle()
    assert not slack.calls_to("chat.postMessage")

    posting = h.send_command("/digest", "now", channel="CDIGEST", user="U0ADMIN")
    assert "Posting the digest to <#CDIGEST> now" in posting.text
    [post] = slack.wait_for("chat.postMessage")
    assert post.params["channel"] == "CDIGEST"
    shown = texts_of(post)
    assert "Daily digest — Fri 16 Oct 2020" in shown and "*Sources*" in shown and "Relief Monitor, 16 Oct 2020" in shown

    # A second press within the same minute does not post again.
    h.send_command("/digest", "now", channel="CDIGEST", user="U0ADMIN")
    slack.wait_for("response_url", where=lambda c: "a moment ago" in str(c.params.get("text")))
    h.settle()
    assert len(slack.calls_to("chat.postMessage")) == 1


def test_digest_usage(make_harness: Callable[..., BotHarness], tmp_path: Path, slack: SlackApiServer) -> None:
    h = _harness(make_harness, tmp_path, slack)
    response = h.send_command("/digest", "tomorrow please")
    assert USAGE in response.text
