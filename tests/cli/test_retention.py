"""Retention of stored questions, answers, thread marks and feedback (``SITREP_RETENTION_DAYS``), enforced by
``sitrep serve`` at start and every hour, and ``sitrep forget --user``."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from slack_signing import free_port, slack_fixture  # noqa: F401 - fixture "slack"

from bot.answer.results import Answer, Citation
from bot.cli.main import main
from bot.retention import PURGE_EVERY, start_retention
from bot.settings import load_settings
from bot.slack.state import SlackState
from retrieval.errors import ConfigError
from tests.slack.test_slack_serve import serve_env, sitrep, wait_serving

from conftest import ROOT
from slack_api_server import SlackApiServer

DAY = 86400.0
CITE = Citation(1, "d1", "d1:0", "Title", "Outlet", "https://a.test", "2020-10-14", "quote")


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _answer(state: SlackState, answer_id: str, user: str, thread: str, question: str = "How many died?") -> None:
    state.save_answer(answer_id, Answer(question=question, answer="Nine [1].", citations=[CITE]),
                      channel="C1", thread_ts=thread, user=user)
    state.mark_thread("C1", thread)


def _rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_purge_keeps_records_for_the_retention_period(tmp_path: Path) -> None:
    clock = Clock()
    state = SlackState(tmp_path / "state.db", clock=clock, retention_days=10)
    _answer(state, "old", "U1", "1.0")
    state.record_rating("old", "U2", "down")
    clock.now += 5 * DAY
    _answer(state, "new", "U1", "2.0")
    state.save_removal("r1", "U0ADMIN", "C1", ["d1"])

    clock.now += 4 * DAY  # old is 9 days old: everything stays (but the hour-long removal request)
    assert state.purge() == {"events": 0, "messages": 0, "threads": 0, "removals": 1, "answers": 0, "feedback": 0}
    state.record_reason("old", "U2", "outdated")  # feedback is kept from when it was last given

    clock.now += 2 * DAY  # old is 11 days old, its feedback 2 days
    counts = state.purge()
    assert (counts["answers"], counts["threads"], counts["feedback"]) == (1, 1, 0)
    assert not state.is_bot_thread("C1", "1.0") and state.is_bot_thread("C1", "2.0")
    assert [r.answer_id for r in state.feedback()] == ["old"]
    assert state.record_rating("old", "U3", "up") is False  # the answer is gone: nothing to rate

    clock.now += 9 * DAY
    assert state.purge()["feedback"] == 1
    assert _rows(tmp_path / "state.db", "slack_answers") == 0  # "new" passed 10 days too
    state.close()


def test_default_thread_marks_still_expire_after_a_month(tmp_path: Path) -> None:
    clock = Clock()
    state = SlackState(tmp_path / "state.db", clock=clock)  # the default retention of 90 days
    _answer(state, "a", "U1", "1.0")
    clock.now += 31 * DAY
    counts = state.purge()
    assert (counts["threads"], counts["answers"]) == (1, 0)
    state.close()


def test_retention_setting_is_validated() -> None:
    assert load_settings({}).retention_days == 90
    assert load_settings({"SITREP_RETENTION_DAYS": "30"}).retention_days == 30
    for bad in ("0", "-5", "ninety", "1.5"):
        with pytest.raises(ConfigError, match="SITREP_RETENTION_DAYS"):
            load_settings({"SITREP_RETENTION_DAYS": bad})


def test_start_retention_purges_now_and_every_hour(tmp_path: Path) -> None:
    clock = Clock()
    state = SlackState(tmp_path / "state.db", clock=clock, retention_days=1)
    _answer(state, "a", "U1", "1.0")
    clock.now += 2 * DAY
    scheduler = BackgroundScheduler()
    assert start_retention(scheduler, state)["answers"] == 1
    job = scheduler.get_job("sitrep-retention")
    assert job is not None and job.trigger.interval == PURGE_EVERY
    state.close()


def _seed_people(path: Path) -> None:
    state = SlackState(path)
    _answer(state, "alice-1", "U0ALICE", "1.0", "Where did the helicopters crash?")
    _answer(state, "alice-2", "U0ALICE", "2.0")
    _answer(state, "bob-1", "U0BOB", "3.0")
    state.record_rating("alice-1", "U0BOB", "down")  # Bob's feedback holds a copy of Alice's question
    state.record_rating("bob-1", "U0ALICE", "up")
    state.save_removal("r1", "U0ALICE", "C1", ["d1"])
    state.close()


def test_forget_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SITREP_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    _seed_people(tmp_path / "state.db")

    assert main(["forget", "--user", "U0ALICE", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == {"user": "U0ALICE", "deleted": {"threads": 2, "feedback_on_their_answers": 1, "feedback": 1,
                                                     "answers": 2, "removals": 1}}
    with sqlite3.connect(tmp_path / "state.db") as conn:
        assert conn.execute("SELECT answer_id, user FROM slack_answers").fetchall() == [("bob-1", "U0BOB")]
        assert conn.execute("SELECT COUNT(*) FROM slack_feedback").fetchone()[0] == 0
        everything = "".join(str(row) for table in ("slack_answers", "slack_feedback", "slack_threads",
                                                    "slack_removals")
                             for row in conn.execute(f"SELECT * FROM {table}"))
    assert "U0ALICE" not in everything and "Where did the helicopters crash?" not in everything

    assert main(["forget", "--user", "U0ALICE"]) == 0
    assert "Nothing stored for U0ALICE" in capsys.readouterr().out
    assert main(["forget", "--user", "U0BOB"]) == 0
    assert "Deleted U0BOB's records: 1 question(s) with their answers" in capsys.readouterr().out


def test_serve_purges_expired_records_at_start(tmp_path: Path, slack: SlackApiServer) -> None:
    data = tmp_path / "data"
    data.mkdir()
    state = SlackState(data / "state.db", clock=lambda: time.time() - 40 * DAY)
    _answer(state, "old", "U0ALICE", "1.0")
    state.close()
    state = SlackState(data / "state.db")
    _answer(state, "recent", "U0ALICE", "2.0")
    state.close()

    port = free_port()
    env = serve_env(data, slack, port, SITREP_RETENTION_DAYS="30")
    env["PYTHONPATH"] = str(ROOT)
    proc = sitrep("serve", env=env, cwd=tmp_path)
    try:
        with httpx.Client(timeout=5) as http:
            wait_serving(proc, http, f"http://127.0.0.1:{port}", timeout=120)
        with sqlite3.connect(data / "state.db") as conn:
            assert [r[0] for r in conn.execute("SELECT answer_id FROM slack_answers")] == ["recent"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
