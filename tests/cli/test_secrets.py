"""Tokens and keys never appear in output, logs or errors (grepping captured output for the configured values)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.logs import Redactor
from bot.settings import load_settings

from conftest import FIXTURES
from openai_server import OpenAIServer, Reply
from slack_api_server import SlackApiServer

BOT_TOKEN = "xoxb-1111-2222-SECRETBOTTOKEN"
SIGNING = "signing-secret-DO-NOT-LEAK-42"
APP_TOKEN = "xapp-1-A111-SECRETAPPTOKEN"
API_KEY = "sk-test-SECRET-openai-key-0123456789"
SECRETS = (BOT_TOKEN, SIGNING, APP_TOKEN, API_KEY, "SECRETBOTTOKEN", "SECRETAPPTOKEN")


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.fixture
def secret_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SITREP_DATA_DIR", str(data))
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    monkeypatch.delenv("CHROMA_HOST", raising=False)
    return data


def test_settings_repr_hides_secrets(secret_env: Path) -> None:
    settings = load_settings()
    assert settings.openai_api_key == API_KEY
    assert _leaks(repr(settings)) == []


def test_doctor_and_failed_calls_do_not_leak(secret_env: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with SlackApiServer(token="xoxb-the-right-token") as slack, OpenAIServer() as llm:
        monkeypatch.setenv("SLACK_API_URL", slack.url)
        monkeypatch.setenv("OPENAI_BASE_URL", llm.base_url)
        code = main(["doctor"])
        out, err = capsys.readouterr()
        assert code == 1  # the Slack token is wrong
        assert "slack" in out.lower() and "FAIL" in out

        assert main(["ingest", str(FIXTURES / "loaders" / "mixed" / "nawa-crash.md")]) == 0
        llm.push(Reply(status=401, error=f"Incorrect API key provided: {API_KEY}"))
        main(["ask", "How many people were killed when the two army helicopters collided in Nawa?"])
        out2, err2 = capsys.readouterr()
        assert llm.chat_requests(), "the LLM was never called, so nothing was tested"

    log_text = "".join(p.read_text() for p in (secret_env / "logs").glob("*.log*"))
    assert _leaks(out + err + out2 + err2) == []
    assert _leaks(log_text) == []
    assert log_text  # the log was written, so the check above means something


def test_redactor_scrubs_configured_values_and_token_shapes() -> None:
    redactor = Redactor([API_KEY])
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "auth with %s and %s failed",
                               (API_KEY, "xoxb-9999-8888-othertoken"), None)
    redactor.filter(record)
    assert _leaks(record.getMessage()) == []
    assert "xoxb-9999" not in record.getMessage()
    assert record.getMessage().count("[redacted]") == 2
