"""Exactly-once digest delivery: claims in the state DB, crashes mid-post, failures and concurrent processes.

Every test runs on both engines (``state_location``): a SQLite file, then a PostgreSQL schema.
"""

from __future__ import annotations

import multiprocessing
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.answer.results import Citation
from bot.digest.build import Digest
from bot.digest.delivery import (
    DEFAULT_STALE_AFTER,
    DeliveryOutcome,
    DeliveryStore,
    close_owner,
    deliver,
    new_owner,
    owner_is_dead,
    post_claimed,
)
from retrieval.statedb import Location

from slack_api_server import SlackApiServer

NOW = datetime(2020, 10, 16, 7, 0, tzinfo=UTC)
Kind = DeliveryOutcome.Kind


# tests/test_scheduler.py imports the old name; the server itself now keeps metadata and serves history.


@pytest.fixture
def slack() -> Iterator[SlackApiServer]:
    with SlackApiServer() as server:
        yield server


@pytest.fixture
def client(slack: SlackApiServer) -> WebClient:
    return WebClient(token=slack.token, base_url=slack.url)


def make_digest(article_count: int = 1) -> Digest:
    citation = Citation(1, "d1", "d1:0", "Helicopters crash in Helmand", "Kabul Ledger",
                        "https://kabul-ledger.test/crash", "2020-10-15T06:00:00+00:00",
                        "Two army helicopters crashed in Nawa district.")
    body = ("**Daily digest — Fri 16 Oct 2020**\n- 15 Oct 2020 — Two army helicopters crashed in Nawa district. [1]"
            if article_count else "No new articles since Thu 15 Oct 2020, 08:00 BST.")
    return Digest(NOW - timedelta(days=1), NOW, "Europe/London", body, [citation] if article_count else [], [],
                  article_count, article_count, "extractive")


def test_claim_is_granted_once_and_stale_claims_are_taken_over(state_location: Location) -> None:
    store = DeliveryStore(state_location)
    remote = "another-host:4242:abc"  # a process on another machine: never judged dead, only stale
    first = store.claim("C1", "2020-10-16", remote, NOW)
    assert first is not None and first.previous is None
    assert store.claim("C1", "2020-10-16", "me", NOW + DEFAULT_STALE_AFTER - timedelta(seconds=1)) is None
    taken = store.claim("C1", "2020-10-16", "me", NOW + DEFAULT_STALE_AFTER)
    assert taken is not None and taken.previous is not None and taken.previous.owner == remote
    assert store.claim("C1", "2020-10-17", "me", NOW) is not None  # another date is another slot
    assert store.claim("C2", "2020-10-16", "me", NOW) is not None  # another channel too


def test_claim_of_a_dead_local_owner_is_taken_over_at_once(state_location: Location) -> None:
    store = DeliveryStore(state_location)
    owner = new_owner()
    assert store.claim("C1", "2020-10-16", owner, NOW) is not None
    assert not owner_is_dead(owner)
    assert store.claim("C1", "2020-10-16", new_owner(), NOW) is None
    close_owner(owner)  # what a crash amounts to for claims: the owner is gone
    assert owner_is_dead(owner)
    assert store.claim("C1", "2020-10-16", new_owner(), NOW) is not None


def test_posts_once_with_metadata_then_skips(state_location: Location, slack: SlackApiServer,
                                             client: WebClient) -> None:
    store = DeliveryStore(state_location)
    outcome = deliver(store, client, "C1", "2020-10-16", make_digest(), new_owner(), NOW)
    assert outcome.kind is Kind.POSTED and outcome.ts
    again = deliver(store, client, "C1", "2020-10-16", make_digest(), new_owner(), NOW + timedelta(hours=1))
    assert again.kind is Kind.SKIPPED
    (call,) = slack.calls_to("chat.postMessage")
    assert call.params["channel"] == "C1"
    assert call.params["metadata"] == {"event_type": "sitrep_digest", "event_payload": {"key": "C1/2020-10-16"}}
    record = store.get("C1", "2020-10-16")
    assert record is not None and (record.status, record.ts) == ("posted", outcome.ts)
    assert store.previous("C1") == record and record.state == {"version": 1, "stories": []}


@pytest.mark.parametrize("echo_metadata", [True, False])
def test_crash_after_posting_does_not_post_twice(state_location: Location, slack: SlackApiServer, client: WebClient,
                                                 monkeypatch: pytest.MonkeyPatch, echo_metadata: bool) -> None:
    slack.echo_metadata = echo_metadata
    crashing = DeliveryStore(state_location)
    owner = new_owner()

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("killed between posting and recording")

    monkeypatch.setattr(crashing, "mark_posted", crash)
    with pytest.raises(KeyboardInterrupt):
        deliver(crashing, client, "C1", "2020-10-16", make_digest(), owner, NOW)
    close_owner(owner)
    assert len(slack.calls_to("chat.postMessage")) == 1

    restarted = DeliveryStore(state_location)
    outcome = deliver(restarted, client, "C1", "2020-10-16", make_digest(), new_owner(), NOW + timedelta(minutes=1))
    assert outcome.kind is Kind.RECOVERED
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert slack.calls_to("conversations.history")
    record = restarted.get("C1", "2020-10-16")
    assert record is not None and record.status == "posted" and record.ts == outcome.ts


def test_crash_before_posting_is_posted_by_the_restart(state_location: Location, slack: SlackApiServer,
                                                       client: WebClient) -> None:
    store = DeliveryStore(state_location)
    owner = new_owner()
    assert store.claim("C1", "2020-10-16", owner, NOW) is not None  # claimed, then killed before posting
    close_owner(owner)
    outcome = deliver(store, client, "C1", "2020-10-16", make_digest(), new_owner(), NOW + timedelta(minutes=1))
    assert outcome.kind is Kind.POSTED
    assert len(slack.calls_to("chat.postMessage")) == 1


def test_slack_failure_is_retried_with_backoff(state_location: Location, slack: SlackApiServer,
                                               client: WebClient) -> None:
    store = DeliveryStore(state_location)
    slack.fail("chat.postMessage", error="channel_not_found")
    failed = deliver(store, client, "C1", "2020-10-16", make_digest(), new_owner(), NOW)
    assert failed.kind is Kind.FAILED and failed.error == "channel_not_found"
    record = store.get("C1", "2020-10-16")
    assert record is not None and (record.status, record.attempts) == ("failed", 1)
    soon = deliver(store, client, "C1", "2020-10-16", make_digest(), new_owner(), NOW + timedelta(seconds=30))
    assert soon.kind is Kind.SKIPPED  # backing off
    later = deliver(store, client, "C1", "2020-10-16", make_digest(), new_owner(), NOW + timedelta(minutes=1))
    assert later.kind is Kind.POSTED
    assert len(slack.calls_to("chat.postMessage")) == 2


def test_empty_digest_posted_or_recorded_as_skipped(state_location: Location, slack: SlackApiServer,
                                                   client: WebClient) -> None:
    store = DeliveryStore(state_location)
    quiet = deliver(store, client, "C1", "2020-10-16", make_digest(0), new_owner(), NOW, post_empty=False)
    assert quiet.kind is Kind.NOT_POSTED and slack.calls_to("chat.postMessage") == []
    record = store.get("C1", "2020-10-16")
    assert record is not None and record.status == "skipped" and not store.claimable(record, NOW)
    assert store.previous("C1") is None  # the next digest still starts from the last one posted
    posted = deliver(store, client, "C2", "2020-10-16", make_digest(0), new_owner(), NOW, post_empty=True)
    assert posted.kind is Kind.POSTED
    (call,) = slack.calls_to("chat.postMessage")
    assert "No new articles since Thu 15 Oct 2020" in call.params["text"]


def _claim_in_process(location: Location, owner: str, slots: list[str], start: Any, results: Any) -> None:
    store = DeliveryStore(location)
    start.wait()
    results.put([(owner, slot, store.claim("C1", slot, owner, NOW) is not None) for slot in slots])


def test_concurrent_processes_claim_once(state_location: Location) -> None:
    """Replicas racing for the same slots (separate processes, separate connections): one winner per slot."""
    DeliveryStore(state_location)  # the schema exists before the race
    slots = [f"2020-10-{day:02d}" for day in range(1, 11)]
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_claim_in_process, args=(state_location, f"host{i}:{i}:t", slots, start, results))
             for i in range(4)]
    for proc in procs:
        proc.start()
    start.set()
    outcomes = [claim for _ in procs for claim in results.get(timeout=120)]
    for proc in procs:
        proc.join(timeout=30)
    winners = {slot: [owner for owner, s, won in outcomes if s == slot and won] for slot in slots}
    assert all(len(owners) == 1 for owners in winners.values()), winners
    stored = DeliveryStore(state_location)
    assert all(stored.get("C1", slot).owner == owners[0] for slot, owners in winners.items())  # type: ignore[union-attr]


def test_threads_with_their_own_connections_post_once(state_location: Location, slack: SlackApiServer,
                                                      client: WebClient) -> None:
    """Eight runners (a connection each) deliver the same digest at the same moment: one post, seven skips."""
    DeliveryStore(state_location)
    barrier = threading.Barrier(8)
    kinds: list[Kind] = []

    def run() -> None:
        store = DeliveryStore(state_location)
        barrier.wait()
        kinds.append(deliver(store, client, "C1", "2020-10-16", make_digest(), new_owner(), NOW).kind)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(k.value for k in kinds) == ["posted"] + ["skipped"] * 7
    assert len(slack.calls_to("chat.postMessage")) == 1


def test_a_pid_is_judged_only_in_its_own_process_space() -> None:
    """An owner from another host or PID namespace that shares our hostname is never judged by its pid."""
    owner = new_owner()
    space, pid, _ = owner.split(":")
    gone = _pid_that_is_not_running()
    assert owner_is_dead(f"{space}:{gone}:t")  # here, and the process is gone
    assert not owner_is_dead(f"{socket.gethostname()}:{gone}:t")  # same hostname, another machine or container
    assert not owner_is_dead(f"elsewhere:{pid}:t")
    close_owner(owner)


def _pid_that_is_not_running() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_claim_taken_over_while_building_is_not_posted(state_location: Location, slack: SlackApiServer,
                                                         client: WebClient) -> None:
    store = DeliveryStore(state_location)
    slow = store.claim("C1", "2020-10-16", "host-a:1:t", NOW)
    assert slow is not None
    assert store.claim("C1", "2020-10-16", "host-b:2:t", NOW + DEFAULT_STALE_AFTER) is not None  # deemed stale
    outcome = post_claimed(store, client, slow, make_digest(), NOW + DEFAULT_STALE_AFTER)
    assert outcome.kind is Kind.SKIPPED and slack.calls_to("chat.postMessage") == []
