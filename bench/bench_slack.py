"""Slack bot benchmark: acknowledgement latency under concurrency, and exactly-once answering under retries.

    .venv/bin/python bench/bench_slack.py [--concurrency 50] [--rounds 10] [--events 500] [--retry-rate 0.1]

The bot's Starlette app runs under uvicorn on 127.0.0.1 in this process (the same app ``sitrep serve``
serves in HTTP mode), with the extractive engine over the sample articles and a local Slack Web API server
(``tests/slack_api_server.py``) standing in for Slack. Every request is signed (v0 HMAC).

1. Ack latency: ``--rounds`` bursts of ``--concurrency`` simultaneous requests — app_mention events (each
   one also queues a real answer, so acks compete with answering for the CPU), ``/sitrep help`` and
   ``/summarize`` commands (acknowledged through Bolt's ack(), the lazy listener queues the summary).
   Targets: p99 ≤ 100 ms; Slack's hard limit is 3 s.
2. Exactly once: ``--events`` distinct mentions sent concurrently, ``--retry-rate`` of them delivered again
   with ``X-Slack-Retry-Num`` (half while the original is in flight, half after it was answered). Every
   thread must get exactly one answer: none duplicated, none lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from slack_signing import (  # noqa: E402
    SIGNING_SECRET,
    ServerThread,
    command_body,
    event_body,
    mention_event,
    sign,
)

from bot.engine import Engine  # noqa: E402
from bot.runtime import ensure_sample, open_corpus  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.slack_app import SlackBot  # noqa: E402
from bot.slack_server import create_http_app  # noqa: E402

from slack_api_server import SlackApiServer  # noqa: E402

QUESTIONS = [
    "How many people died when the helicopters crashed, and where?",
    "What happened in Helmand?",
    "Who was killed in Nawa?",
    "What did officials say about the crash?",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def timed_post(client: httpx.AsyncClient, url: str, body: bytes, content_type: str,
                     extra: dict[str, str] | None = None) -> tuple[float, int]:
    headers = {"Content-Type": content_type, **sign(body), **(extra or {})}
    started = time.perf_counter()
    response = await client.post(url, content=body, headers=headers)
    return (time.perf_counter() - started) * 1000, response.status_code


async def burst(url: str, requests: list[tuple[bytes, str, dict[str, str] | None]]) -> list[tuple[float, int]]:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=len(requests))
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        return await asyncio.gather(*(timed_post(client, url, b, ct, h) for b, ct, h in requests))


def mention(i: int, user: str | None = None) -> tuple[bytes, str]:
    event = mention_event(QUESTIONS[i % len(QUESTIONS)], user=user or f"U{i:05d}")
    body, _ = event_body(event)
    return body, event["ts"]


def ack_latency(url: str, slack: SlackApiServer, kind: str, concurrency: int, rounds: int) -> list[float]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    for r in range(rounds):
        batch: list[tuple[bytes, str, dict[str, str] | None]] = []
        for i in range(concurrency):
            n = r * concurrency + i
            if kind == "event":
                batch.append((mention(n)[0], "application/json", None))
            else:
                command, text = ("/sitrep", "help") if kind == "/sitrep help" else ("/summarize", "Helmand 7d")
                body = command_body(command, text, slack.response_url(f"b{n}"), user=f"U{n:05d}")
                batch.append((body, "application/x-www-form-urlencoded", None))
        for ms, status in asyncio.run(burst(url, batch)):
            latencies.append(ms)
            statuses[status] += 1
    if set(statuses) != {200}:
        raise SystemExit(f"unexpected HTTP statuses for {kind}: {dict(statuses)}")
    return latencies


def exactly_once(url: str, bot: SlackBot, slack: SlackApiServer, events: int, retry_rate: float,
                 concurrency: int) -> dict[str, Any]:
    rng = random.Random(7)
    sent = [mention(i) for i in range(events)]
    retried = rng.sample(range(events), int(events * retry_rate))
    early, late = retried[: len(retried) // 2], retried[len(retried) // 2 :]
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    work: list[tuple[bytes, str, dict[str, str] | None]] = [(b, "application/json", None) for b, _ in sent]
    work += [(sent[i][0], "application/json", retry) for i in early]  # while the original is in flight
    rng.shuffle(work)
    started = time.perf_counter()
    for start in range(0, len(work), concurrency):
        results = asyncio.run(burst(url, work[start : start + concurrency]))
        assert all(status == 200 for _, status in results), results
    if not bot.wait_idle(600):
        raise SystemExit("the bot did not finish answering within 10 minutes")
    asyncio.run(burst(url, [(sent[i][0], "application/json", retry) for i in late]))  # after the answer
    bot.wait_idle(60)
    elapsed = time.perf_counter() - started

    answers: Counter[str] = Counter()
    notices = 0
    for call in slack.calls_to("chat.postMessage"):
        blocks = call.params.get("blocks") or []
        if any(b.get("type") == "actions" for b in blocks):  # an answer carries the feedback buttons
            answers[str(call.params.get("thread_ts"))] += 1
        else:
            notices += 1
    threads = [ts for _, ts in sent]
    return {
        "events": events,
        "retries": len(retried),
        "answered once": sum(1 for ts in threads if answers[ts] == 1),
        "duplicated": sum(1 for ts in threads if answers[ts] > 1),
        "lost": sum(1 for ts in threads if answers[ts] == 0),
        "busy notices": notices,
        "seconds": elapsed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--retry-rate", type=float, default=0.1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp, SlackApiServer() as slack:
        env = {
            "SITREP_DATA_DIR": tmp, "SLACK_BOT_TOKEN": slack.token, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.url, "SITREP_ANSWER_MODE": "extractive",
            # Many distinct users, and room to queue every event of the exactly-once run.
            "SITREP_QUEUE_SIZE": str(max(64, args.events * 2)), "SITREP_USER_RATE_PER_MINUTE": "10000",
        }
        settings = load_settings(env)
        corpus = open_corpus(settings)
        ensure_sample(corpus)
        bot = SlackBot(settings, Engine(settings, corpus), corpus)
        with ServerThread(create_http_app(bot)) as server:
            url = server.url + "/slack/events"
            asyncio.run(burst(url, [(mention(10_000 + i)[0], "application/json", None) for i in range(5)]))
            bot.wait_idle(60)  # warm-up: first auth.test, model and caches
            rows = []
            for kind in ("event", "/sitrep help", "/summarize"):
                latencies = ack_latency(url, slack, kind, args.concurrency, args.rounds)
                bot.wait_idle(600)
                rows.append((kind, len(latencies), statistics.median(latencies), percentile(latencies, 99),
                             max(latencies)))
            slack.reset()
            once = exactly_once(url, bot, slack, args.events, args.retry_rate, args.concurrency)
        bot.close()
        corpus.close()

    print(f"\nAck latency, {args.concurrency} concurrent signed requests on loopback "
          f"({settings.workers} answer workers, extractive engine)")
    print(f"{'request':<14} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  target p99 <= 100 ms")
    for kind, n, p50, p99, worst in rows:
        verdict = "ok" if p99 <= 100 else "MISSED"
        print(f"{kind:<14} {n:>5} {p50:>8.1f} {p99:>8.1f} {worst:>8.1f}  {verdict}")
    print(f"\nExactly once: {once['events']} events, {once['retries']} redelivered with X-Slack-Retry-Num")
    for key in ("answered once", "duplicated", "lost", "busy notices"):
        print(f"  {key:<14} {once[key]:>6}")
    print(f"  {'all answered':<14} {once['seconds']:>6.1f} s")
    ok = once["duplicated"] == 0 and once["lost"] == 0
    print(json.dumps({"ack": {k: {"p50_ms": round(a, 1), "p99_ms": round(b, 1)} for k, _, a, b, _ in rows},
                      "exactly_once": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
