"""The Slack bot's state (de-duplication with expiry, threads, feedback), on SQLite and on PostgreSQL, and its
worker pool / rate limit."""

from __future__ import annotations

import threading

import pytest

from bot.answer.results import Answer, Citation
from bot.errors import LLMError, describe_failure
from bot.slack.state import EVENT_TTL_SECONDS, SlackState
from bot.slack.workers import RateLimiter, WorkerPool
from retrieval.statedb import Location


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_event_and_message_claims_expire(state_location: Location) -> None:
    clock = Clock()
    state = SlackState(state_location, clock=clock)
    assert state.claim_event("Ev1") is True
    assert state.claim_event("Ev1") is False
    assert state.claim_message("C1", "1.0") is True
    assert state.claim_message("C1", "1.0") is False
    assert state.claim_message("C2", "1.0") is True
    clock.now += EVENT_TTL_SECONDS + 1
    state.purge()
    assert state.claim_event("Ev1") is True
    assert state.claim_message("C1", "1.0") is True
    state.close()


def test_claims_are_atomic_across_threads_and_connections(state_location: Location) -> None:
    states = [SlackState(state_location) for _ in range(2)]
    wins: list[bool] = []
    lock = threading.Lock()

    def claim(state: SlackState) -> None:
        for i in range(50):
            won = state.claim_event(f"Ev{i}")
            with lock:
                wins.append(won)

    threads = [threading.Thread(target=claim, args=(states[i % 2],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(wins) == 50  # each event id won exactly once
    for state in states:
        state.close()


def test_threads_and_feedback(state_location: Location) -> None:
    state = SlackState.open(state_location)
    assert not state.is_bot_thread("C1", "1.0")
    state.mark_thread("C1", "1.0")
    assert state.is_bot_thread("C1", "1.0")

    cite = Citation(1, "d1", "d1:0", "Title", "Outlet", "https://a.test", "2020-10-14", "quote")
    state.save_answer("a1", Answer(question="How many died?", answer="Nine [1].", citations=[cite]),
                      channel="C1", thread_ts="1.0", user="U1")
    assert state.record_rating("missing", "U1", "up") is False
    assert state.record_reason("a1", "U1", "outdated") is False  # no rating yet
    assert state.record_rating("a1", "U1", "up") is True
    assert state.record_rating("a1", "U1", "down") is True  # a change of mind replaces the rating
    assert state.record_reason("a1", "U1", "wrong_figure") is True
    [row] = state.feedback("a1")
    assert (row.user, row.rating, row.reason) == ("U1", "down", "wrong_figure")
    assert row.question == "How many died?" and row.answer == "Nine [1]."
    assert row.citations[0]["url"] == "https://a.test"
    with pytest.raises(ValueError):
        state.record_reason("a1", "U1", "nonsense")
    state.close()


def test_pool_positions_and_refusal() -> None:
    pool = WorkerPool(workers=1, queue_size=2)
    release = threading.Event()
    started = threading.Event()

    def blocker() -> None:
        started.set()
        release.wait(10)

    errors: list[BaseException] = []
    assert pool.submit(blocker, errors.append).position == 0
    assert started.wait(5)
    second = pool.submit(lambda: None, errors.append)
    third = pool.submit(lambda: None, errors.append)
    fourth = pool.submit(lambda: None, errors.append)
    assert (second.accepted, second.position) == (True, 1)
    assert (third.accepted, third.position) == (True, 2)
    assert fourth.accepted is False
    release.set()
    assert pool.wait_idle(10)
    assert errors == []
    pool.shutdown()
    assert pool.submit(lambda: None, errors.append).accepted is False


def test_pool_reports_failures() -> None:
    pool = WorkerPool(workers=2, queue_size=4)
    errors: list[BaseException] = []

    def boom() -> None:
        raise LLMError("The language model timed out; try again in a minute")

    pool.submit(boom, errors.append)
    assert pool.wait_idle(10)
    assert len(errors) == 1
    assert describe_failure(errors[0]) == "The language model timed out; try again in a minute."
    assert "log" in describe_failure(RuntimeError("secret internals"))
    assert "secret" not in describe_failure(RuntimeError("secret internals"))
    pool.shutdown()


def test_rate_limiter_window() -> None:
    clock = Clock(0.0)
    limiter = RateLimiter(per_minute=2, clock=clock)
    assert limiter.check("U1") == 0 and limiter.check("U1") == 0
    wait = limiter.check("U1")
    assert 59 <= wait <= 60
    assert limiter.check("U2") == 0  # per user
    clock.now = 60.5
    assert limiter.check("U1") == 0
