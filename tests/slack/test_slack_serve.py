"""``sitrep serve`` as a real process in HTTP mode: start-up check, signed requests, clean shutdown."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from slack_signing import (
    SIGNING_SECRET,
    event_body,
    free_port,
    mention_event,
    post_signed,
    slack_fixture,  # noqa: F401 - fixture "slack"
)

from bot.cli.serve import cmd_serve
from bot.errors import SlackSetupError
from bot.settings import load_settings
from retrieval.corpus import Corpus, CorpusConfig
from retrieval.embeddings import MiniLMEmbedding

from conftest import ROOT, fixture_articles
from slack_api_server import SlackApiServer


def serve_env(data_dir: Path, slack: SlackApiServer, port: int, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SITREP_", "OPENAI_", "CHROMA_"))}
    return {**keep, "SITREP_DATA_DIR": str(data_dir), "SLACK_BOT_TOKEN": slack.token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack.url, "SITREP_HTTP_HOST": "127.0.0.1",
            "SITREP_HTTP_PORT": str(port), "SITREP_ANSWER_MODE": "extractive", **extra}


def sitrep(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "bot.cli.main", *args], env=env, cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_serving(proc: subprocess.Popen[str], http: httpx.Client, url: str, timeout: float = 90) -> None:
    """Wait until ``sitrep serve`` answers ``GET /healthz`` (failing with its stderr if it exits first)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if http.get(url + "/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "sitrep serve did not start"
        time.sleep(0.1)


def test_serve_http_mode_end_to_end(tmp_path: Path, slack: SlackApiServer, embedder: MiniLMEmbedding,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
    corpus = Corpus.open(CorpusConfig(data_dir=tmp_path / "data"))
    corpus.ingest_articles(fixture_articles())
    corpus.close()

    port = free_port()
    env = serve_env(tmp_path / "data", slack, port)
    env["PYTHONPATH"] = str(ROOT)
    proc = sitrep("serve", env=env, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(timeout=5) as http:
            wait_serving(proc, http, url)
            event = mention_event("How many people died when the helicopters crashed, and where?")
            body, _ = event_body(event)
            assert post_signed(http, url + "/slack/events", body, "application/json").status_code == 200
            assert post_signed(http, url + "/slack/events", body, "application/json",
                               secret="wrong").status_code == 401
        [answer] = slack.wait_for("chat.postMessage", where=lambda c: c.params.get("thread_ts") == event["ts"],
                                  timeout=30)
        assert "Nawa" in answer.params["text"]
    finally:
        proc.send_signal(signal.SIGTERM)  # a graceful stop, as systemd or Docker ask for it
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    warnings = [line for line in err.splitlines() if "WARNING" in line]
    assert warnings == ["sitrep: WARNING bot.slack.server: slack.request.rejected reason=bad_signature"], err
    assert "signed in to Slack workspace Test as @sitrep; answers in extractive mode" in out
    assert slack.token not in out + err and SIGNING_SECRET not in out + err


def test_serve_stops_at_a_bad_token_before_loading_anything(tmp_path: Path, slack: SlackApiServer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def no_corpus(*args: object, **kwargs: object) -> None:
        raise AssertionError("the corpus was opened before the token was checked")

    monkeypatch.setattr("bot.runtime.open_corpus", no_corpus)
    settings = load_settings(serve_env(tmp_path / "data", slack, free_port(), SLACK_BOT_TOKEN="xoxb-revoked"))
    with pytest.raises(SlackSetupError) as info:
        cmd_serve(argparse.Namespace(), settings)
    message = str(info.value)  # what `sitrep serve` prints, after "sitrep: "
    assert message.startswith("Slack rejected SLACK_BOT_TOKEN (invalid_auth)")
    assert "\n" not in message and "xoxb-revoked" not in message
    missing = load_settings(serve_env(tmp_path / "data", slack, free_port(), SLACK_SIGNING_SECRET=""))
    with pytest.raises(SlackSetupError, match="SLACK_SIGNING_SECRET is not set"):
        cmd_serve(argparse.Namespace(), missing)
    assert len(slack.calls_to("auth.test")) == 1  # the secret is checked before any call
