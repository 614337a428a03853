"""Three ``sitrep serve`` replicas behind one Slack app, on the real PostgreSQL and a ``chroma run`` server:
300 signed events sent round robin, some redelivered by Slack to other replicas, one replica killed with
SIGKILL midway. Every question is answered exactly once, none is lost, and the daily digest is posted once."""

from __future__ import annotations

import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from replica_cluster import ReplicaCluster, answers_per_thread, replica_env, send_event
from slack_signing import event_body, mention_event, message_event, slack_fixture  # noqa: F401 - fixture "slack"

from retrieval.corpus import Corpus, CorpusConfig
from retrieval.embeddings import MiniLMEmbedding

from conftest import fixture_articles
from slack_api_server import SlackApiServer

EVENTS = 300
KILL_AFTER = 150
SENDERS = 12
QUESTIONS = [
    "How many people died when the helicopters crashed, and where?",
    "What did Stoltenberg say about the Taliban?",
    "Who was displaced in Helmand?",
]
DIGEST_CHANNEL = "C0DIGEST"


def ingest_shared_corpus(tmp_path: Path, pg_url: str, chroma: tuple[str, int], collection: str,
                         embedder: MiniLMEmbedding, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
    corpus = Corpus.open(CorpusConfig(data_dir=tmp_path / "ingest", database_url=pg_url, chroma_host=chroma[0],
                                      chroma_port=chroma[1], collection=collection))
    try:
        corpus.ingest_articles(fixture_articles())
    finally:
        corpus.close()


def test_three_replicas_answer_each_event_once_through_retries_and_a_kill(
        tmp_path: Path, pg_url: str, chroma_server: tuple[str, int], slack: SlackApiServer,
        embedder: MiniLMEmbedding, monkeypatch: pytest.MonkeyPatch) -> None:
    collection = f"replicas_{uuid.uuid4().hex[:8]}"
    ingest_shared_corpus(tmp_path, pg_url, chroma_server, collection, embedder, monkeypatch)
    digest_at = datetime.now(UTC) - timedelta(minutes=1)  # due as the replicas start
    env = replica_env(slack.url, slack.token, pg_url, chroma_server, collection,
                      SITREP_JOB_LEASE_SECONDS="3", SITREP_QUEUE_SIZE="1000", SITREP_USER_RATE_PER_MINUTE="10000",
                      SITREP_DIGEST_CHANNEL=DIGEST_CHANNEL, SITREP_DIGEST_TIME=f"{digest_at:%H:%M}")
    rng = random.Random(15)
    bodies: list[bytes] = []
    threads: list[str] = []
    for i in range(EVENTS):
        question, user = QUESTIONS[i % len(QUESTIONS)], f"U{i:05d}"
        # Mentions in a channel, and DMs (message events), each answered in the thread of the question.
        event = mention_event(question, user=user) if i % 2 else message_event(
            question, channel=f"D{i:05d}", user=user, channel_type="im")
        bodies.append(event_body(event)[0])
        threads.append(str(event["ts"]))
    retried = set(rng.sample(range(EVENTS), EVENTS // 10))

    with ReplicaCluster(tmp_path / "replicas", env, 3) as cluster, httpx.Client(timeout=10) as http, \
            ThreadPoolExecutor(SENDERS) as senders:

        def deliver(i: int) -> None:
            took = send_event(http, cluster, i % 3, bodies[i])
            if i in retried:  # Slack redelivers (the ack looked slow) to another replica, while it is answered
                send_event(http, cluster, took + 1, bodies[i], retry=1)

        # Concurrent deliveries build a queue on each replica, so the kill finds acknowledged, unanswered events.
        list(senders.map(deliver, range(KILL_AFTER)))
        cluster.kill(1)
        list(senders.map(deliver, range(KILL_AFTER, EVENTS)))  # its share now fails over to the others
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            answered = answers_per_thread(slack.calls, threads)
            if len(answered) == EVENTS:
                break
            time.sleep(0.5)
        for i in sorted(retried)[:10]:  # redeliveries after the answer: dropped too
            send_event(http, cluster, i, bodies[i], retry=2)
        time.sleep(4)  # longer than a lease: a job wrongly left pending would be answered again by now
        logs = {r.index: cluster.log_tail(r) for r in cluster.replicas}
        assert len(cluster.living()) == 2

    answered = answers_per_thread(slack.calls, threads)
    lost = [t for t in threads if answered[t] == 0]
    doubled = [t for t in threads if answered[t] > 1]
    assert (len(lost), len(doubled)) == (0, 0), (lost[:5], doubled[:5], logs)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM slack_events WHERE state = 'pending'").fetchone()[0] == 0
        taken_over = conn.execute("SELECT COUNT(*) FROM slack_events WHERE attempts > 1").fetchone()[0]
    assert taken_over > 0, "the killed replica held no unanswered event: the kill tested nothing"
    digests = slack.calls_to("chat.postMessage", lambda c: c.params.get("channel") == DIGEST_CHANNEL
                             and not c.params.get("thread_ts") and c.response.get("ok"))
    assert len(digests) == 1, logs
