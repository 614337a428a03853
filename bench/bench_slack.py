"""Slack bot benchmark: acknowledgement latency under concurrency, and exactly-once answering under retries.

    .venv/bin/python bench/bench_slack.py [--concurrency 50] [--rounds 10] [--events 500] [--retry-rate 0.1]

The bot's Starlette app runs under uvicorn on 127.0.0.1 in this process (the same app ``sitrep serve``
serves in HTTP mode), with the extractive engine over the sample articles. The local Slack Web API server
(``tests/slack_api_server.py``) stands in for Slack in a process of its own, and the requests come from a
third process with a lean HTTP/1.1 client, so neither competes with the bot for its interpreter. Every
request is signed (v0 HMAC).

1. Ack latency: ``--rounds`` bursts of ``--concurrency`` simultaneous requests — app_mention events (each
   one also queues a real answer, so acks compete with answering for the CPU), ``/sitrep help`` (nothing
   but the acknowledgement) and ``/summarize`` (each also queues a real summary). Target: p99 ≤ 100 ms;
   Slack's hard limit is 3 s. On a small machine the answering the requests cause is what slows the
   acknowledgements: compare with ``--workers 1``, and mind the load average printed with the table.
2. Exactly once: ``--events`` distinct mentions sent concurrently, ``--retry-rate`` of them delivered again
   with ``X-Slack-Retry-Num`` (half while the original is in flight, half after it was answered). Every
   thread must get exactly one answer: none duplicated, none lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the test helpers import `tests.…` modules
sys.path.insert(0, str(ROOT / "tests"))

from slack_signing import (  # noqa: E402
    SIGNING_SECRET,
    ServerThread,
    command_body,
    event_body,
    mention_event,
    sign,
)

from bot.answer.engine import Engine  # noqa: E402
from bot.runtime import ensure_sample, open_corpus  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.slack.app import SlackBot  # noqa: E402
from bot.slack.server import create_http_app  # noqa: E402

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


Batch = list[tuple[bytes, str, dict[str, str] | None]]  # (body, content type, extra headers)


async def _read_status(reader: asyncio.StreamReader) -> int:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return int(head[0].split()[1])


async def _bursts(url: str, batches: list[Batch]) -> list[list[tuple[float, int]]]:
    # A lean HTTP/1.1 client on keep-alive connections: a general-purpose async client spends more time per
    # request than the server does, and would measure itself.
    parts = urlsplit(url)
    size = max(len(b) for b in batches)
    connections = [await asyncio.open_connection(parts.hostname, parts.port) for _ in range(size)]

    async def one(index: int, body: bytes, content_type: str, extra: dict[str, str] | None) -> tuple[float, int]:
        reader, writer = connections[index]
        headers = {"Host": parts.netloc, "Content-Type": content_type, "Content-Length": str(len(body)),
                   **sign(body), **(extra or {})}
        request = f"POST {parts.path} HTTP/1.1\r\n".encode() + b"".join(
            f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n" + body
        started = time.perf_counter()
        writer.write(request)
        status = await _read_status(reader)
        return (time.perf_counter() - started) * 1000, status

    results = []
    for batch in batches:
        results.append(list(await asyncio.gather(*(one(i, *req) for i, req in enumerate(batch)))))
    for _, writer in connections:
        writer.close()
    return results


def run_bursts(url: str, batches: list[Batch]) -> list[list[tuple[float, int]]]:
    """Send each batch as simultaneous requests, one batch after another; (ms, status) per request."""
    return asyncio.run(_bursts(url, batches))


class LoadGenerator:
    """Sends the requests from a separate process, so the client's own work does not count as latency."""

    def __init__(self) -> None:
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))

    def send(self, url: str, batches: list[Batch]) -> list[list[tuple[float, int]]]:
        return self._pool.submit(run_bursts, url, batches).result()

    def close(self) -> None:
        self._pool.shutdown()


class SlackProcess:
    """The local Slack Web API server (tests/slack_api_server.py) in its own process, as Slack would be: its
    work does not compete with the bot's. Recorded calls are read back over HTTP."""

    token = "xoxb-test-token"

    def __enter__(self) -> SlackProcess:
        self._proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "slack_api_server.py")],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        self.url = self._proc.stdout.readline().strip()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(10)

    def response_url(self, ident: str) -> str:
        return self.url.replace("/api/", f"/response/{ident}")

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.url.replace("/api/", "/_calls"), timeout=60) as response:
            return [c for c in json.load(response)["calls"] if c["method"] == method]


def mention(i: int, user: str | None = None) -> tuple[bytes, str]:
    event = mention_event(QUESTIONS[i % len(QUESTIONS)], user=user or f"U{i:05d}")
    body, _ = event_body(event)
    return body, event["ts"]


def ack_latency(load: LoadGenerator, url: str, slack: SlackProcess, kind: str, concurrency: int,
                rounds: int) -> list[float]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    batches: list[Batch] = []
    for r in range(rounds):
        batch: Batch = []
        for i in range(concurrency):
            n = r * concurrency + i
            if kind == "event":
                batch.append((mention(n)[0], "application/json", None))
            else:
                command, text = ("/sitrep", "help") if kind == "/sitrep help" else ("/summarize", "Helmand 7d")
                body = command_body(command, text, slack.response_url(f"b{n}"), user=f"U{n:05d}")
                batch.append((body, "application/x-www-form-urlencoded", None))
        batches.append(batch)
    for results in load.send(url, batches):
        for ms, status in results:
            latencies.append(ms)
            statuses[status] += 1
    if set(statuses) != {200}:
        raise SystemExit(f"unexpected HTTP statuses for {kind}: {dict(statuses)}")
    return latencies


def exactly_once(load: LoadGenerator, url: str, bot: SlackBot, slack: SlackProcess, events: int,
                 retry_rate: float, concurrency: int) -> dict[str, Any]:
    rng = random.Random(7)
    sent = [mention(i) for i in range(events)]
    retried = rng.sample(range(events), int(events * retry_rate))
    early, late = retried[: len(retried) // 2], retried[len(retried) // 2 :]
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    work: Batch = [(b, "application/json", None) for b, _ in sent]
    work += [(sent[i][0], "application/json", retry) for i in early]  # while the original is in flight
    rng.shuffle(work)
    started = time.perf_counter()
    batches = [work[start : start + concurrency] for start in range(0, len(work), concurrency)]
    for results in load.send(url, batches):
        assert all(status == 200 for _, status in results), results
    if not bot.wait_idle(600):
        raise SystemExit("the bot did not finish answering within 10 minutes")
    load.send(url, [[(sent[i][0], "application/json", retry) for i in late]])  # after the answer
    bot.wait_idle(60)
    elapsed = time.perf_counter() - started

    answers: Counter[str] = Counter()
    notices = 0
    threads = [ts for _, ts in sent]
    wanted = set(threads)
    for call in slack.calls_to("chat.postMessage"):
        thread = str(call["params"].get("thread_ts"))
        if thread not in wanted or not call["response"].get("ok"):
            continue
        if any(b.get("type") == "actions" for b in call["params"].get("blocks") or []):  # feedback buttons
            answers[thread] += 1
        else:
            notices += 1
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
    parser.add_argument("--workers", type=int, default=None, help="SITREP_WORKERS (default: the setting's)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp, SlackProcess() as slack:
        env = {
            "SITREP_DATA_DIR": tmp, "SLACK_BOT_TOKEN": slack.token, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.url, "SITREP_ANSWER_MODE": "extractive",
            # Many distinct users, and room to queue every event of the exactly-once run.
            "SITREP_QUEUE_SIZE": str(max(64, args.events * 2)), "SITREP_USER_RATE_PER_MINUTE": "10000",
        }
        if args.workers:
            env["SITREP_WORKERS"] = str(args.workers)
        settings = load_settings(env)
        corpus = open_corpus(settings)
        ensure_sample(corpus)
        bot = SlackBot(settings, Engine(settings.llm, corpus), corpus)
        load = LoadGenerator()
        with ServerThread(create_http_app(bot)) as server:
            url = server.url + "/slack/events"
            load.send(url, [[(mention(10_000 + i)[0], "application/json", None) for i in range(5)]])
            bot.wait_idle(60)  # warm-up: first auth.test, model and caches
            rows = []
            for kind in ("event", "/sitrep help", "/summarize"):
                latencies = ack_latency(load, url, slack, kind, args.concurrency, args.rounds)
                bot.wait_idle(600)
                rows.append((kind, len(latencies), statistics.median(latencies), percentile(latencies, 99),
                             max(latencies)))
            once = exactly_once(load, url, bot, slack, args.events, args.retry_rate, args.concurrency)
        load.close()
        bot.close()
        corpus.close()

    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nAck latency, {args.concurrency} concurrent signed requests on loopback "
          f"({settings.workers} answer workers, extractive engine; {os.cpu_count()} CPUs, load average {load_avg})")
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
