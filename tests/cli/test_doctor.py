"""``sitrep doctor``: all problems at once, every check run, causes in words, no library log lines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.runtime import sample_corpus_path
from retrieval import statedb

from conftest import free_port
from slack_api_server import SlackApiServer


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET",
                 "SLACK_API_URL", "CHROMA_HOST", "CHROMA_PORT", "SITREP_ANSWER_MODE", "SITREP_DIGEST_CHANNEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SITREP_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def doctor(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, tuple[str, str]], str]:
    """Exit status, {check name: (status, detail)} and stderr of one ``sitrep doctor`` run."""
    code = main(["doctor"])
    out, err = capsys.readouterr()
    checks = {m[2]: (m[1], m[3]) for m in re.finditer(r"^\[(\w+) *\] ([^:]+): (.*)$", out, re.M)}
    return code, checks, err


def test_several_bad_settings_are_all_listed_and_the_other_checks_still_run(
        env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in {"CHROMA_PORT": "80a", "SITREP_DIGEST_TIME": "8am", "SITREP_TIMEZONE": "Europe/Londn",
                        "SLACK_BOT_TOKEN": "xoxp-1-private-value", "SITREP_FEED_POLL_MINUTES": "-5",
                        "SITREP_DIGEST_TIMEZONE": "UTC"}.items():
        monkeypatch.setenv(name, value)
    code, checks, err = doctor(capsys)
    assert code == 1 and err == ""
    failed = {name.removeprefix("setting "): detail for name, (status, detail) in checks.items() if status == "FAIL"}
    assert set(failed) == {"CHROMA_PORT", "SITREP_DIGEST_TIME", "SITREP_TIMEZONE", "SLACK_BOT_TOKEN",
                           "SITREP_FEED_POLL_MINUTES"}
    assert all(detail.startswith(name) and "fix it" in detail for name, detail in failed.items())
    assert "private-value" not in str(checks)
    assert checks["setting"] == ("warn", "SITREP_DIGEST_TIMEZONE (did you mean SITREP_DIGEST_TIME?) is not a sitrep "
                                         "setting and is ignored")
    assert checks["embedding model"][0] == "ok" and checks["tokenizers"][0] == "ok"
    assert checks["data dir"][0] == "ok"
    assert checks["store"] == ("skip", "fix CHROMA_PORT first")
    assert checks["slack"] == ("skip", "fix SLACK_BOT_TOKEN first")
    assert checks["digest"] == ("skip", "fix SITREP_DIGEST_TIME, SITREP_TIMEZONE, SLACK_BOT_TOKEN first")
    assert checks["feeds"] == ("skip", "fix SITREP_FEED_POLL_MINUTES first")


def test_unreachable_services_are_named_with_the_cause_in_words(
        env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    closed = free_port()
    monkeypatch.setenv("CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("CHROMA_PORT", str(closed))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-2-abc")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "0123456789abcdef")
    monkeypatch.setenv("SLACK_API_URL", f"http://127.0.0.1:{closed}/api/")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{closed}/v1")
    code, checks, err = doctor(capsys)
    assert code == 1
    refused = "connection refused: nothing is listening at that address and port"
    assert checks["store"] == ("FAIL", f"Cannot reach the Chroma server at 127.0.0.1:{closed}: {refused}. Check "
                                       "that `chroma run` is up there and CHROMA_HOST/CHROMA_PORT are right.")
    assert checks["slack"][0] == "FAIL" and f"at http://127.0.0.1:{closed}/api/: {refused}" in checks["slack"][1]
    assert checks["llm"][0] == "FAIL" and f"{refused}; check OPENAI_BASE_URL" in checks["llm"][1]
    assert "ValueError" not in str(checks) and "URLError" not in str(checks)
    assert err == ""  # slack_sdk, httpx and chromadb log these failures themselves: not on the terminal

    monkeypatch.setenv("CHROMA_HOST", "chroma.invalid")
    _, checks, _ = doctor(capsys)
    assert "the host name was not found (DNS)" in checks["store"][1]


def test_slack_connection_and_mode(env: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    with SlackApiServer() as slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", slack.token)
        monkeypatch.setenv("SLACK_API_URL", slack.url)
        code, checks, _ = doctor(capsys)
        assert code == 1
        assert checks["slack"][0] == "ok" and checks["slack"][1].startswith("connected as")
        assert checks["slack mode"][0] == "FAIL" and checks["slack mode"][1].startswith(
            "SLACK_SIGNING_SECRET is not set, and HTTP mode needs it")
        monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-A1-abc")
        code, checks, _ = doctor(capsys)
        assert code == 0 and checks["slack mode"] == ("ok", "Socket Mode (SLACK_APP_TOKEN is set)")
        assert checks["digest"] == ("ok", "not configured (SITREP_DIGEST_CHANNEL / SITREP_DIGEST_CONFIG unset)")


def test_a_malformed_bot_token_stops_serve_before_slack_is_called(
        env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with SlackApiServer() as slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxe.xoxp-1-refresh-token")
        monkeypatch.setenv("SLACK_SIGNING_SECRET", "0123456789abcdef")
        monkeypatch.setenv("SLACK_API_URL", slack.url)
        assert main(["serve"]) == 2
        assert slack.calls == []
    err = capsys.readouterr().err
    assert err.startswith("sitrep: SLACK_BOT_TOKEN is not a bot token: it must start with xoxb-")
    assert "refresh-token" not in err


def test_doctor_reports_the_state_schema_versions(env: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch, embedder: object) -> None:
    monkeypatch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
    _, checks, _ = doctor(capsys)
    assert checks["store"][0] == "ok"
    status, detail = checks["database"]
    versions = ", ".join(f"{c.name} v{c.version}" for c in statedb.components())
    pattern = rf"^SQLite [\d.]+ at .*state\.db; schema {versions}$"
    assert status == "ok" and re.search(pattern, detail), detail


def test_doctor_warns_when_the_embedded_store_outgrows_the_memory_budget(
        env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, embedder: object) -> None:
    monkeypatch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
    assert main(["ingest", str(sample_corpus_path())]) == 0
    capsys.readouterr()
    chunks = main(["stats", "--json"]) == 0 and json.loads(capsys.readouterr().out)["chunks"]
    monkeypatch.setattr("retrieval.store.EMBEDDED_CHUNK_LIMIT", chunks - 1)
    code, checks, _ = doctor(capsys)
    status, detail = checks["store"]
    assert code == 0 and status == "warn"
    assert f"holds {chunks:,} chunks" in detail and f"chroma run --path {env / 'data' / 'chroma'}" in detail
    assert "CHROMA_HOST" in detail
    monkeypatch.setattr("retrieval.store.EMBEDDED_CHUNK_LIMIT", chunks)
    assert doctor(capsys)[1]["store"][0] == "ok"


def test_doctor_reports_postgresql_and_says_when_it_is_unreachable(
        env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, embedder: object,
        pg_url: str) -> None:
    monkeypatch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
    monkeypatch.setenv("SITREP_DATABASE_URL", pg_url.replace("postgres@", "postgres:s3cret@"))
    code, checks, _ = doctor(capsys)
    status, detail = checks["database"]
    assert code == 0 and status == "ok", detail
    assert re.search(r"^PostgreSQL 1\d\.\d+ at postgresql://postgres:\*\*\*@.*; schema corpus v\d+", detail), detail
    assert checks["store"][0] == "ok" and checks["feeds"][0] == "ok"

    monkeypatch.setattr("retrieval.postgres.CONNECT_TIMEOUT", 1.0)
    monkeypatch.setenv("SITREP_DATABASE_URL", f"postgresql://sitrep:s3cret@127.0.0.1:{free_port()}/sitrep")
    code, checks, _ = doctor(capsys)
    status, detail = checks["database"]
    assert code == 1 and status == "FAIL" and "\n" not in detail
    assert detail.startswith("Cannot connect to the PostgreSQL database at postgresql://sitrep:***@127.0.0.1:"), detail
    assert "s3cret" not in str(checks)
    assert checks["store"] == ("skip", "fix the database first") == checks["feeds"]
