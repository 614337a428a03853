"""Replicas benchmark: acknowledgement latency and answers per second for 1, 2 and 3 ``sitrep serve`` replicas.

    .venv/bin/python bench/bench_replicas.py [--replicas 1 2 3] [--concurrency 30] [--rounds 10] [--events 300]
        [--database-url postgresql://postgres@127.0.0.1:5432/test] [--out docs/benchmarks.md]

Every replica is a real ``sitrep serve`` process in HTTP mode with its state on PostgreSQL (a fresh schema of
``--database-url``, dropped afterwards) and its vectors on one ``chroma run`` server, answering extractively over
the sample articles. The Slack Web API test server (``tests/slack_api_server.py``) runs in a process of its own;
the signed requests come from this process, spread round robin over the replicas as a load balancer would.

1. Ack latency: ``--rounds`` bursts of ``--concurrency`` simultaneous app_mention events (each also becomes a
   durable job and a real answer, so acknowledgements compete with answering for the CPU).
2. Answers/s: ``--events`` mentions sent ``--concurrency`` at a time; the time until Slack received every
   answer. Each thread must hold exactly one answer (none lost, none doubled).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from replica_cluster import ReplicaCluster, answers_per_thread, replica_env  # noqa: E402
from slack_signing import event_body, mention_event, sign  # noqa: E402

from bench.bench_slack import QUESTIONS, SlackProcess, _read_status, percentile  # noqa: E402
from bench.markdown import publish  # noqa: E402
from bot.runtime import ensure_sample, open_corpus  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from tests.pgfixtures import with_schema  # noqa: E402

from conftest import ChromaServer  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"


def mentions(count: int, start: int) -> list[tuple[bytes, str]]:
    """(signed-to-be body, thread ts) of ``count`` mentions from distinct users."""
    out = []
    for i in range(start, start + count):
        event = mention_event(QUESTIONS[i % len(QUESTIONS)], user=f"U{i:06d}")
        out.append((event_body(event)[0], str(event["ts"])))
    return out


async def _bursts(urls: list[str], batches: list[list[bytes]]) -> list[float]:
    """Send each batch as simultaneous requests, request ``i`` of a batch to ``urls[i % len(urls)]`` over a
    keep-alive connection of its own; the milliseconds each took to be acknowledged."""
    size = max(len(b) for b in batches)
    targets = [urlsplit(urls[i % len(urls)]) for i in range(size)]
    connections = [await asyncio.open_connection(t.hostname, t.port) for t in targets]

    async def one(index: int, body: bytes) -> float:
        reader, writer = connections[index]
        target = targets[index]
        headers = {"Host": target.netloc, "Content-Type": "application/json", "Content-Length": str(len(body)),
                   **sign(body)}
        request = f"POST {target.path} HTTP/1.1\r\n".encode() + b"".join(
            f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n" + body
        started = time.perf_counter()
        writer.write(request)
        status = await _read_status(reader)
        if status != 200:
            raise SystemExit(f"HTTP {status} from {target.netloc}")
        return (time.perf_counter() - started) * 1000

    latencies: list[float] = []
    for batch in batches:
        latencies += await asyncio.gather(*(one(i, body) for i, body in enumerate(batch)))
    for _, writer in connections:
        writer.close()
    return latencies


def wait_answered(slack: SlackProcess, threads: list[str], timeout: float) -> float:
    """Wait until every thread holds an answer; returns when (perf_counter)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if len(answers_per_thread(slack.calls_to("chat.postMessage"), threads)) == len(threads):
            return time.perf_counter()
        time.sleep(0.25)
    raise SystemExit(f"not every question was answered within {timeout:.0f} s")


def run(count: int, env: dict[str, str], workdir: Path, slack: SlackProcess, args: argparse.Namespace,
        offset: int) -> dict[str, float]:
    with ReplicaCluster(workdir / f"{count}-replicas", env, count) as cluster:
        urls = [r.events_url for r in cluster.replicas]
        warm = mentions(2 * count, offset)
        asyncio.run(_bursts(urls, [[b for b, _ in warm]]))
        wait_answered(slack, [t for _, t in warm], 120)

        sent = mentions(args.rounds * args.concurrency, offset + 1000)
        batches = [[b for b, _ in sent[r * args.concurrency:(r + 1) * args.concurrency]] for r in range(args.rounds)]
        latencies = asyncio.run(_bursts(urls, batches))
        wait_answered(slack, [t for _, t in sent], 300)

        load = mentions(args.events, offset + 100_000)
        started = time.perf_counter()
        asyncio.run(_bursts(urls, [[b for b, _ in load[i:i + args.concurrency]]
                                   for i in range(0, len(load), args.concurrency)]))
        finished = wait_answered(slack, [t for _, t in load], 600)
        time.sleep(2)  # anything answered twice would be posted by now
        answered = answers_per_thread(slack.calls_to("chat.postMessage"), [t for _, t in sent + load])
    return {
        "p50": statistics.median(latencies), "p99": percentile(latencies, 99), "n": len(latencies),
        "answers_s": args.events / (finished - started),
        "doubled": sum(1 for n in answered.values() if n > 1),
        "lost": len(sent) + len(load) - len(answered),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--concurrency", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--out", type=Path, help="markdown file to write the table into (e.g. docs/benchmarks.md)")
    args = parser.parse_args(argv)

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    database_url = with_schema(args.database_url, schema)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp, SlackProcess() as slack:
            workdir = Path(tmp)
            chroma = ChromaServer(workdir)
            chroma.start()
            try:
                env = replica_env(slack.url, slack.token, database_url, chroma.address, "sitrep_bench",
                                  SITREP_QUEUE_SIZE="10000", SITREP_USER_RATE_PER_MINUTE="10000")
                settings = load_settings({**env, "SITREP_DATA_DIR": str(workdir / "ingest")})
                corpus = open_corpus(settings)
                ensure_sample(corpus)
                corpus.close()
                for index, count in enumerate(args.replicas):
                    rows.append((count, run(count, env, workdir, slack, args, index * 1_000_000)))
            finally:
                chroma.stop()
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"{args.rounds} bursts of {args.concurrency} simultaneous signed app_mention events (ack), then "
        f"{args.events} events {args.concurrency} at a time (answers/s); PostgreSQL 15 + `chroma run` + the Slack "
        f"test server on this machine ({os.cpu_count()} CPUs, load average after the run {load}); extractive "
        "answers, 4 workers per replica.",
        "",
        "| replicas | acks | ack p50 ms | ack p99 ms | answers/s | doubled | lost |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for count, r in rows:
        lines.append(f"| {count} | {r['n']} | {r['p50']:.1f} | {r['p99']:.1f} | {r['answers_s']:.1f} | "
                     f"{r['doubled']} | {r['lost']} |")
    publish(args.out, "\n".join(lines), "bench_replicas.py", argv, name="bench_replicas")
    return 0 if all(r["doubled"] == 0 and r["lost"] == 0 for _, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
