"""SQLite busy/locked: another connection holds the state database's write lock while the Slack bot claims an
event or stores a feedback click. A lock released within the retry budget only delays the work; one held
beyond it gets one clear sentence to the person, and the bot recovers by itself once the lock is gone.
Real signed requests to HTTP mode and the local Slack API server."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_signing import (
    CRASH_QUESTION,
    BotHarness,
    answer_id_of,
    ask,
    assert_slack_safe,
    in_thread,
    make_harness_fixture,  # noqa: F401 - fixture "make_harness"
    mention_event,
    shared_corpus_fixture,  # noqa: F401 - fixture "shared_corpus"
    slack_fixture,  # noqa: F401 - fixture "slack"
)

import bot.slack.state
from bot.render.slack import FEEDBACK_UP
from bot.slack.state import SlackState

LOCKED = "sitrep's state database stayed locked by another process"


class HeldLock:
    """An exclusive write lock on a SQLite database, taken from another connection (as another process's
    long write would hold it) and released by :meth:`release`, or by a timer."""

    def __init__(self, path: Path, release_after: float | None = None) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("BEGIN EXCLUSIVE")
        self.released_at: float | None = None
        self._timer = threading.Timer(release_after, self.release) if release_after is not None else None
        if self._timer is not None:
            self._timer.start()

    def release(self) -> None:
        if self.released_at is None:
            self._conn.execute("COMMIT")
            self._conn.close()
            self.released_at = time.monotonic()

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.join()
        self.release()


@pytest.fixture
def lock_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The 'database is locked' errors SlackState's statements met (and retried through with_retry)."""
    seen: list[str] = []
    real = bot.slack.state.with_retry

    def recording(fn: Callable[[], Any], **kwargs: Any) -> Any:
        def attempt() -> Any:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                seen.append(str(exc))
                raise

        return real(attempt, **kwargs)

    monkeypatch.setattr(bot.slack.state, "with_retry", recording)
    yield seen


def state_db(h: BotHarness) -> Path:
    return h.bot.settings.data_dir / "state.db"


def click(h: BotHarness, answer_id: str, user: str = "U0ALICE") -> None:
    response = h.send_action({"action_id": FEEDBACK_UP, "block_id": "sitrep_feedback", "type": "button",
                              "value": answer_id, "action_ts": "1"}, user=user)
    assert response.status_code == 200  # acknowledged at once, whatever the database is doing


def test_feedback_click_waits_out_a_lock_through_retries(make_harness: Callable[..., BotHarness],
                                                         lock_errors: list[str]) -> None:
    # A short busy timeout, so the waiting happens in with_retry's attempts rather than inside SQLite.
    h = make_harness(state=lambda path: SlackState(path, busy_timeout=0.1))
    _, answer = ask(h, CRASH_QUESTION)
    answer_id = answer_id_of(answer)
    with HeldLock(state_db(h), release_after=1.0) as lock:
        click(h, answer_id)
        [reply] = h.slack.wait_for("chat.postEphemeral")
    assert reply.params["text"] == "Thanks for the feedback!"
    assert lock.released_at is not None and reply.at > lock.released_at  # it waited for the lock
    assert lock_errors and all("locked" in e for e in lock_errors)  # ...by retrying
    [row] = h.bot.state.feedback(answer_id)
    assert (row.user, row.rating, row.question) == ("U0ALICE", "up", CRASH_QUESTION)


def test_event_claim_waits_for_a_lock_and_answers_once(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness()  # the default budget: SQLite's own busy timeout covers a one-second lock
    event = mention_event(CRASH_QUESTION)
    with HeldLock(state_db(h), release_after=1.0) as lock:
        response, event_id = h.send_event(event)
        acknowledged = time.monotonic()
        assert response.status_code == 200
        [answer] = h.slack.wait_for("chat.postMessage", where=in_thread(event["ts"]))
    assert lock.released_at is not None and acknowledged < lock.released_at < answer.at
    assert "*Sources*" in str(answer.params["blocks"])
    h.send_event(event, event_id=event_id, headers={"X-Slack-Retry-Num": "1"})  # Slack's retry: claimed
    h.settle()
    assert len(h.slack.calls_to("chat.postMessage", in_thread(event["ts"]))) == 1


def test_lock_held_beyond_the_budget_is_reported_then_recovered(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness(state=lambda path: SlackState(path, busy_timeout=0.05, retries=2, retry_delay=0.05))
    _, answer = ask(h, CRASH_QUESTION)
    with HeldLock(state_db(h)):
        event = mention_event("What did Stoltenberg say?")
        h.send_event(event)
        [notice] = h.slack.wait_for("chat.postMessage", where=in_thread(event["ts"]))
        click(h, answer_id_of(answer))
        [reply] = h.slack.wait_for("chat.postEphemeral")
        h.settle()
    text = notice.params["text"]
    assert text.startswith(LOCKED) and re.fullmatch(r"[^\n]+[.!?]", text), text
    assert reply.params["text"].startswith(f"Sorry, your rating was not saved: {LOCKED}")
    assert str(state_db(h)) not in text  # no server paths in Slack
    assert_slack_safe(h.slack.calls)
    # The lock is gone: the next question is answered and the next click stored, without a restart.
    _, later = ask(h, "What did Stoltenberg say?")
    assert "Stoltenberg" in str(later.params["blocks"])
    click(h, answer_id_of(later))
    h.slack.wait_for("chat.postEphemeral", count=2)
    assert [r.rating for r in h.bot.state.feedback(answer_id_of(later))] == ["up"]
