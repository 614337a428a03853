"""Events as durable, leased jobs (``bot.slack.jobs``): the state's job table on both engines, and a bot
taking over the events of a replica that died — answering each once, updating a reply the dead replica had
already posted instead of posting a second one."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from slack_signing import (
    CRASH_QUESTION,
    BotHarness,
    event_body,
    in_thread,
    make_harness_fixture,  # noqa: F401 - fixture "make_harness"
    mention_event,
    shared_corpus_fixture,  # noqa: F401 - fixture "shared_corpus"
    slack_fixture,  # noqa: F401 - fixture "slack"
)

from bot.answer.results import Answer
from bot.slack.state import EVENT_TTL_SECONDS, SlackState
from retrieval.statedb import Location

DEAD = "dead-replica"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def take(state: SlackState, owner: str, limit: int = 10, max_attempts: int = 3) -> list[str]:
    return [j.event_id for j in state.take_expired_jobs(owner, 30.0, limit=limit, max_attempts=max_attempts,
                                                         max_age=3600.0)]


def test_a_job_is_leased_renewed_taken_over_and_finished_once(state_location: Location) -> None:
    clock = Clock()
    state = SlackState(state_location, clock=clock)
    assert state.claim_event("Ev1", '{"event_id": "Ev1"}', "A", 30.0) is True
    assert state.claim_event("Ev1", '{"event_id": "Ev1"}', "B", 30.0) is False  # Slack's retry elsewhere
    assert state.claim_event("Ev0", None) is True  # recorded as done: never taken over
    assert state.pending_jobs() == 1
    clock.now += 20
    assert take(state, "B") == []  # A's lease holds
    assert state.renew_leases("A", 30.0) == 1
    clock.now += 20
    assert take(state, "B") == []  # renewed 20 s ago
    state.record_reply("Ev1", "1700000000.000100")
    clock.now += 11  # A died: its lease ran out
    [job] = state.take_expired_jobs("B", 30.0, limit=10, max_attempts=3, max_age=3600.0)
    assert (job.event_id, json.loads(job.body), job.reply_ts, job.attempts) == (
        "Ev1", {"event_id": "Ev1"}, "1700000000.000100", 2)
    assert take(state, "C") == []  # B holds it now
    assert state.finish_job("Ev1", "A") is False  # A (had it come back) no longer owns it
    assert state.finish_job("Ev1", "B") is True
    assert state.finish_job("Ev1", "B") is False
    assert state.pending_jobs() == 0
    clock.now += 3600
    assert take(state, "C") == []  # done jobs are never taken again
    state.close()


def test_released_leases_attempt_and_age_limits(state_location: Location) -> None:
    clock = Clock()
    state = SlackState(state_location, clock=clock)
    for i in range(3):
        state.claim_event(f"Ev{i}", "{}", "A", 30.0)
    assert state.release_leases("A") == 3  # A stops cleanly: others may take its jobs at once
    assert sorted(take(state, "B", limit=2)) == ["Ev0", "Ev1"]  # oldest first, at most the limit
    assert take(state, "C") == ["Ev2"]
    clock.now += 31
    assert take(state, "D", max_attempts=2) == []  # each was tried twice: a job that kills its replica stops
    state.claim_event("EvOld", "{}", "A", 30.0)
    clock.now += 3601
    assert take(state, "D") == []  # an hour-old question is not answered any more
    clock.now += EVENT_TTL_SECONDS
    assert state.purge()["events"] == 4
    state.close()


def test_replicas_taking_at_once_get_different_jobs(state_location: Location) -> None:
    clock = Clock()
    states = [SlackState(state_location, clock=clock) for _ in range(3)]
    for i in range(60):
        states[0].claim_event(f"Ev{i}", "{}", DEAD, 30.0)
    clock.now += 31
    taken: list[list[str]] = [[] for _ in states]

    def worker(index: int) -> None:
        while batch := take(states[index], f"R{index}", limit=4):
            taken[index].extend(batch)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [e for batch in taken for e in batch]
    assert sorted(every) == sorted(f"Ev{i}" for i in range(60))  # each job taken exactly once
    for state in states:
        state.close()


def test_message_claims_belong_to_their_event(state_location: Location) -> None:
    state = SlackState(state_location)
    assert state.claim_message("C1", "1.0", "Ev1") is True
    assert state.claim_message("C1", "1.0", "Ev1") is True  # the same event, taken over
    assert state.claim_message("C1", "1.0", "Ev2") is False  # the other event for the same message
    assert state.claim_message("C1", "1.0") is False
    state.close()


def test_retention_forget_and_removals(state_location: Location) -> None:
    clock = Clock()
    state = SlackState(state_location, clock=clock, retention_days=10)
    state.save_answer("a1", Answer(question="Q?", answer="A."), channel="C1", thread_ts="1.0", user="U1")
    state.mark_thread("C1", "1.0")
    state.record_rating("a1", "U2", "up")
    state.save_removal("r1", "U1", "C1", ["d1", "d2"])
    removal = state.removal("r1")
    assert removal is not None and removal.doc_ids == ["d1", "d2"]
    assert state.take_removal("r1") is True and state.take_removal("r1") is False
    assert state.forget_user("U1") == {"threads": 1, "feedback_on_their_answers": 1, "feedback": 0, "answers": 1,
                                       "removals": 0}
    state.save_answer("a2", Answer(question="Q?", answer="A."), channel="C1", thread_ts="2.0", user="U3")
    clock.now += 11 * 86400
    assert state.purge()["answers"] == 1
    state.close()


# -- a bot taking over a dead replica's events ------------------------------------------------------------

def dead_replica_job(h: BotHarness, event: dict[str, object], reply_ts: str | None = None) -> str:
    """Record ``event`` as a job of a replica that died (its lease already ran out), as if it had acknowledged
    the event and perhaps posted the first message of its reply."""
    body, event_id = event_body(event)
    assert h.bot.state.claim_event(event_id, body.decode(), DEAD, 0.0)
    if reply_ts:
        h.bot.state.record_reply(event_id, reply_ts)
    return event_id


def test_a_dead_replicas_event_is_answered_once_by_another(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness(SITREP_JOB_LEASE_SECONDS="1")
    event = mention_event(CRASH_QUESTION)
    event_id = dead_replica_job(h, event)
    [answer] = h.slack.wait_for("chat.postMessage", where=in_thread(str(event["ts"])), timeout=20)
    assert "*Sources*" in str(answer.params["blocks"])
    h.send_event(event, event_id=event_id, headers={"X-Slack-Retry-Num": "1"})  # Slack's retry: dropped
    h.settle()
    assert len(h.slack.calls_to("chat.postMessage", in_thread(str(event["ts"])))) == 1
    assert h.bot.state.pending_jobs() == 0


def test_a_takeover_updates_the_reply_the_dead_replica_posted(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness(SITREP_JOB_LEASE_SECONDS="1")
    event = mention_event(CRASH_QUESTION)
    placeholder = h.bot.client.chat_postMessage(channel=event["channel"], thread_ts=event["ts"], text="Nine …")
    dead_replica_job(h, event, reply_ts=str(placeholder["ts"]))
    [update] = h.slack.wait_for("chat.update", timeout=20)
    h.settle()
    assert update.params["ts"] == placeholder["ts"] and "*Sources*" in str(update.params["blocks"])
    assert len(h.slack.calls_to("chat.postMessage", in_thread(str(event["ts"])))) == 1  # the placeholder only
    assert h.bot.state.pending_jobs() == 0


def test_a_takeover_finds_a_reply_posted_but_not_recorded(make_harness: Callable[..., BotHarness]) -> None:
    """The dead replica got Slack's reply and died before recording its ts: the metadata naming the event
    finds the message in the thread."""
    h = make_harness(SITREP_JOB_LEASE_SECONDS="1")
    event = mention_event(CRASH_QUESTION)
    body, event_id = event_body(event)
    other = h.bot.client.chat_postMessage(channel=event["channel"], thread_ts=event["ts"], text="Another reply",
                                          metadata={"event_type": "sitrep_reply",
                                                    "event_payload": {"event_id": "EvSomeoneElse"}})
    posted = h.bot.client.chat_postMessage(channel=event["channel"], thread_ts=event["ts"], text="Nine [1].",
                                           metadata={"event_type": "sitrep_reply",
                                                     "event_payload": {"event_id": event_id}})
    assert h.bot.state.claim_event(event_id, body.decode(), DEAD, 0.0)
    [update] = h.slack.wait_for("chat.update", timeout=20)
    h.settle()
    assert update.params["ts"] == posted["ts"] != other["ts"]
    assert len(h.slack.calls_to("chat.postMessage", in_thread(str(event["ts"])))) == 2  # no third
    [lookup] = h.slack.calls_to("conversations.replies")
    assert str(lookup.params["include_all_metadata"]).lower() in ("1", "true")


def test_the_reply_ts_is_recorded_when_the_answer_is_posted(make_harness: Callable[..., BotHarness]) -> None:
    h = make_harness()
    recorded: list[tuple[str, str]] = []
    real = h.bot.state.record_reply
    h.bot.state.record_reply = lambda event_id, ts: (recorded.append((event_id, ts)), real(event_id, ts))[1]
    event = mention_event(CRASH_QUESTION)
    _, event_id = h.send_event(event)
    [answer] = h.slack.wait_for("chat.postMessage", where=in_thread(str(event["ts"])))
    h.settle()
    assert recorded == [(event_id, answer.response["ts"])]
    assert answer.params["metadata"] == {"event_type": "sitrep_reply", "event_payload": {"event_id": event_id}}
    assert h.slack.calls_to("conversations.replies") == []  # looked up only after a takeover
    assert h.bot.state.pending_jobs() == 0  # finished once posted
