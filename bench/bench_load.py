"""Load benchmark: signed-request bursts against ``sitrep serve`` in HTTP mode, and a 10,000-document ingest.

    .venv/bin/python bench/bench_load.py [--requests 200] [--documents 10000] [--out docs/benchmarks.md]
                                         [--skip-http] [--skip-ingest] [--no-write]

1. HTTP mode. ``sitrep serve`` runs as its own process (uvicorn on 127.0.0.1, extractive answers over the
   sample articles, ``SITREP_QUEUE_SIZE`` large enough to hold a whole burst), talking to the local Slack Web
   API server (tests/slack_api_server.py) in a third process. This process sends ``--requests`` simultaneous
   signed requests, each on its own keep-alive connection, twice:
   - a burst of app_mention events from as many users;
   - a mixed burst: 60% new mentions, 20% ``/summarize``, 10% ``/sitrep help`` and 10% Slack retries
     (``X-Slack-Retry-Num``) of events from the first burst.
   Every request must be acknowledged (HTTP 200) within Slack's 3 s; the table gives p50/p99/max. Then every
   mention thread must hold exactly one answer (a message with feedback buttons; "busy — you're number N in
   line" notices are counted apart), every ``/summarize`` one summary, and the retries nothing new. The
   server's peak RSS is VmHWM from /proc.
2. Ingest. ``--documents`` synthetic short articles, one JSON file each, in a temporary folder, ingested by
   ``sitrep ingest FOLDER --json`` in a subprocess with the real MiniLM model; its peak RSS comes from
   ``wait4`` (the child's own ``ru_maxrss``), its rate from the chunk count ``sitrep stats --json`` reports.

The markdown table is printed and written to ``--out`` between ``<!-- bench_load:start -->`` and
``<!-- bench_load:end -->`` under a "Load" heading at the end of the file (added on the first run).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the test helpers import `tests.…` modules
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_slack import Batch, SlackProcess, percentile, run_bursts  # noqa: E402
from slack_signing import SIGNING_SECRET, command_body, event_body, mention_event  # noqa: E402

SITREP = str(Path(sys.executable).parent / "sitrep")
SAMPLE = ROOT / "retrieval" / "sample" / "articles.json"
ACK_LIMIT_MS = 3000.0
MARK_START, MARK_END = "<!-- bench_load:start -->", "<!-- bench_load:end -->"


def clean_env(**settings: str) -> dict[str, str]:
    """The process environment without any sitrep, Slack, OpenAI or Chroma setting, plus ``settings``."""
    prefixes = ("SITREP_", "SLACK_", "OPENAI_", "CHROMA_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return {**env, "SITREP_LOG_LEVEL": "warning", **settings}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """(VmHWM, VmRSS) of a running process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            fields[name] = int(value.split()[0]) / 1024
    return fields["VmHWM"], fields["VmRSS"]


def run_sitrep(args: list[str], env: dict[str, str], cwd: Path) -> tuple[str, float, float]:
    """Run ``sitrep ARGS``; (stdout, seconds, the child's peak RSS in MB). Exits on failure."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen([SITREP, *args], env=env, cwd=cwd, stdout=out, stderr=err)
        # wait4, not wait(): it reaps the child and returns that child's own resource usage.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"sitrep {' '.join(args)} failed ({proc.returncode}): {err.read().strip()[-2000:]}")
        return out.read(), seconds, usage.ru_maxrss / 1024


# -- HTTP mode ---------------------------------------------------------------------------------------------

TOPICS = ["the helicopter crash in Nawa", "the fighting around Lashkargah", "displaced families in Helmand",
          "the Taliban's claims", "NATO's statement", "civilian casualties", "the defence ministry",
          "the Doha talks"]
ASKS = ["What happened with {}?", "Who said what about {}?", "What are the latest figures on {}?",
        "Summarize what is known about {}.", "Which outlets reported on {}?"]


def mention(i: int) -> tuple[bytes, str]:
    """A signed-ready app_mention from user ``i`` with a question of its own (no two alike, so no answer
    comes from a cache)."""
    question = ASKS[i % len(ASKS)].format(TOPICS[(i // len(ASKS)) % len(TOPICS)]) + f" (ref {i})"
    event = mention_event(question, user=f"U{i:06d}")
    body, _ = event_body(event)
    return body, event["ts"]


class Server:
    """``sitrep serve`` in HTTP mode, in its own process."""

    def __init__(self, data_dir: Path, slack: SlackProcess, queue_size: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = clean_env(
            SITREP_DATA_DIR=str(data_dir), SLACK_BOT_TOKEN=slack.token, SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack.url, SITREP_HTTP_HOST="127.0.0.1", SITREP_HTTP_PORT=str(self.port),
            SITREP_ANSWER_MODE="extractive", SITREP_QUEUE_SIZE=str(queue_size),
        )
        self.cwd = data_dir.parent  # no stray .env from the working directory
        self.log = data_dir.parent / "serve.log"

    def __enter__(self) -> Server:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([SITREP, "serve"], env=self.env, cwd=self.cwd, stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"sitrep serve exited: {self.log.read_text()[-2000:]}")
            try:
                self.health()
                return self
            except OSError:
                time.sleep(0.2)
        raise SystemExit("sitrep serve did not start within 3 minutes")

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/healthz", timeout=5) as response:
            return dict(json.load(response))

    def wait_idle(self, timeout: float) -> None:
        """Until no job is queued or running (the health endpoint reports both)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health()
            if not health["busy"] and not health["waiting"]:
                return
            time.sleep(0.2)
        raise SystemExit(f"sitrep serve still busy after {timeout:.0f} s")

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)  # serve finishes queued answers and exits 0
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_answered(slack: SlackProcess, server: Server, threads: list[str], summaries: int, timeout: float) -> None:
    """Until every thread has an answer and ``summaries`` summaries were posted, then until the bot is idle
    (a health check alone could catch the moment before a listener queued its job)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        per_thread, posted, _, _ = _answers(slack)
        if posted >= summaries and all(per_thread[ts] for ts in threads):
            server.wait_idle(120)
            return
        time.sleep(1.0)
    raise SystemExit(f"not every request was answered within {timeout:.0f} s")


def _answers(slack: SlackProcess) -> tuple[Counter[str], int, int, int]:
    """Answers per thread, top-level summaries, notices (messages without feedback buttons), and how many
    answers and summaries cite sources (the rest say plainly that the articles do not cover it)."""
    per_thread: Counter[str] = Counter()
    summaries = notices = sourced = 0
    for call in slack.calls_to("chat.postMessage"):
        if not call["response"].get("ok"):
            continue
        params = call["params"]
        if not any(b.get("type") == "actions" for b in params.get("blocks") or []):
            notices += 1
            continue
        sourced += "*Sources*" in json.dumps(params.get("blocks"))
        if params.get("thread_ts"):
            per_thread[str(params["thread_ts"])] += 1
        else:
            summaries += 1
    return per_thread, summaries, notices, sourced


def http_load(requests: int, tmp: Path) -> dict[str, Any]:
    data_dir = tmp / "serve-data"
    run_sitrep(["ingest", str(SAMPLE), "--json"], clean_env(SITREP_DATA_DIR=str(data_dir)), tmp)
    with SlackProcess() as slack, Server(data_dir, slack, queue_size=2 * requests) as server:
        url = server.url + "/slack/events"
        warm = [mention(900_000 + i) for i in range(4)]
        run_bursts(url, [[(body, "application/json", None) for body, _ in warm]])
        wait_answered(slack, server, [ts for _, ts in warm], 0, 300)
        _, rss_idle = peak_rss_mb(server.proc.pid)

        first = [mention(i) for i in range(requests)]
        started = time.monotonic()
        [acks_a] = run_bursts(url, [[(body, "application/json", None) for body, _ in first]])
        wait_answered(slack, server, [ts for _, ts in first], 0, 1800)
        answered_a = time.monotonic() - started

        rng = random.Random(3)
        n_mentions, n_summaries, n_help = int(requests * 0.6), int(requests * 0.2), int(requests * 0.1)
        n_retries = requests - n_mentions - n_summaries - n_help
        second = [mention(100_000 + i) for i in range(n_mentions)]
        retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        mixed: Batch = [(body, "application/json", None) for body, _ in second]
        mixed += [(command_body("/summarize", "Lashkargah 7d" if i % 2 else "", slack.response_url(f"s{i}"),
                                user=f"US{i:04d}"), "application/x-www-form-urlencoded", None)
                  for i in range(n_summaries)]
        mixed += [(command_body("/sitrep", "help", slack.response_url(f"h{i}"), user=f"UH{i:04d}"),
                   "application/x-www-form-urlencoded", None) for i in range(n_help)]
        mixed += [(body, "application/json", retry) for body, _ in rng.sample(first, n_retries)]
        rng.shuffle(mixed)
        started = time.monotonic()
        [acks_b] = run_bursts(url, [mixed])
        wait_answered(slack, server, [ts for _, ts in second], n_summaries, 1800)
        answered_b = time.monotonic() - started
        time.sleep(2.0)  # any late duplicate would arrive now
        hwm, rss_after = peak_rss_mb(server.proc.pid)
        per_thread, summaries, notices, sourced = _answers(slack)

    threads = [ts for _, ts in first + second]
    return {
        "bursts": [("app_mention", acks_a, answered_a), ("mixed", acks_b, answered_b)],
        "answered once": sum(1 for ts in threads if per_thread[ts] == 1),
        "duplicated": sum(1 for ts in threads if per_thread[ts] > 1),
        "lost": sum(1 for ts in threads if per_thread[ts] == 0),
        "mentions": len(threads),
        "summaries": summaries,
        "summaries wanted": n_summaries,
        "notices": notices,
        "sourced": sourced,
        "answers": sum(per_thread.values()) + summaries,  # the warm-up included
        "rss idle": rss_idle,
        "rss after": rss_after,
        "rss peak": hwm,
    }


# -- ingest ------------------------------------------------------------------------------------------------

PLACES = ["Lashkargah", "Nad Ali", "Nawa", "Marja", "Gereshk", "Sangin", "Musa Qala", "Kandahar", "Kabul",
          "Herat", "Kunduz", "Ghazni", "Zaranj", "Tarin Kot", "Qalat", "Farah"]
ACTORS = ["the provincial governor", "a police spokesman", "UNAMA", "the Ministry of Defense", "aid agencies",
          "the Taliban", "a district elder", "the World Food Programme", "local health officials", "NATO"]
EVENTS = ["fighting", "an airstrike", "a roadside bomb", "flooding", "a convoy ambush", "a curfew",
          "a prisoner exchange", "a cholera outbreak", "a bridge closure", "a market fire"]
OUTLETS = ["Kabul Ledger", "Frontier Wire", "Relief Monitor", "Helmand Daily", "Pajhwok Desk", "Tolo Wire"]


def synthetic_article(i: int, rng: random.Random) -> dict[str, str]:
    place, other = rng.sample(PLACES, 2)
    event = rng.choice(EVENTS)
    actor, second = rng.sample(ACTORS, 2)
    families = rng.randrange(40, 9000)
    killed = rng.randrange(0, 40)
    day = 1 + i % 60
    published = f"2020-{9 + (day - 1) // 30:02d}-{1 + (day - 1) % 30:02d}T{rng.randrange(24):02d}:00:00+00:00"
    text = (
        f"{actor.capitalize()} said {event} near {place} on day {day} left {killed} people dead and forced "
        f"{families:,} families to leave their homes. "
        f"Residents of {place} told reporters that roads to {other} were closed for {rng.randrange(2, 72)} hours. "
        f"{second.capitalize()} said {rng.randrange(2, 60)} trucks of food and medicine were waiting to enter "
        f"the district, and that report {i} would be updated. "
        f"The figures could not be independently verified."
    )
    return {"id": f"syn-{i}", "title": f"{event.capitalize()} near {place} (report {i})", "text": text,
            "url": f"https://synthetic.test/{i}", "source": rng.choice(OUTLETS), "published": published}


def ingest_load(documents: int, tmp: Path) -> dict[str, Any]:
    folder = tmp / "articles"
    rng = random.Random(11)
    for i in range(documents):
        sub = folder / f"{i // 1000:02d}"  # a thousand files a folder, as an archive would be kept
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i:05d}.json").write_text(json.dumps(synthetic_article(i, rng)), encoding="utf-8")
    env = clean_env(SITREP_DATA_DIR=str(tmp / "ingest-data"))
    out, seconds, peak = run_sitrep(["ingest", str(folder), "--json"], env, tmp)
    report = json.loads(out)
    stats = json.loads(run_sitrep(["stats", "--json"], env, tmp)[0])
    return {"documents": documents, "added": report["added"], "failed": len(report["failed"]),
            "chunks": stats["chunks"], "seconds": seconds, "peak": peak}


# -- report ------------------------------------------------------------------------------------------------


def table(http: dict[str, Any] | None, ingest: dict[str, Any] | None, requests: int) -> str:
    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [f"Measured {time.strftime('%Y-%m-%d')} with `bench/bench_load.py --requests {requests}` on "
             f"{os.cpu_count()} CPUs (load average {load_avg} at the end; other jobs share the machine).", ""]
    if http:
        lines += [
            f"**HTTP mode** (`sitrep serve`, extractive, default 4 answer workers): {requests} simultaneous "
            "signed requests per burst, each on its own connection.", "",
            "| burst | requests | HTTP 200 | ack p50 ms | ack p99 ms | ack max ms | within 3 s | all answered after |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, acks, answered in http["bursts"]:
            ms = [m for m, _ in acks]
            ok = sum(1 for _, status in acks if status == 200)
            within = sum(1 for m in ms if m <= ACK_LIMIT_MS)
            lines.append(f"| {name} | {len(acks)} | {ok} | {statistics.median(ms):.0f} | {percentile(ms, 99):.0f} | "
                         f"{max(ms):.0f} | {within}/{len(ms)} | {answered:.1f} s |")
        lines += [
            "",
            f"Mention threads answered exactly once: {http['answered once']}/{http['mentions']} "
            f"(duplicated {http['duplicated']}, lost {http['lost']}); summaries posted: {http['summaries']}/"
            f"{http['summaries wanted']}; answers with Sources: {http['sourced']} of {http['answers']} (the rest "
            "abstained, plainly); \"busy — you're number N in line\" notices: "
            f"{http['notices']}. "
            f"Server RSS: {http['rss idle']:.0f} MB after warm-up, {http['rss after']:.0f} MB after both bursts, "
            f"peak {http['rss peak']:.0f} MB.",
            "",
        ]
    if ingest:
        rate = ingest["chunks"] / ingest["seconds"] if ingest["seconds"] else 0.0
        lines += [
            "**Ingest** (`sitrep ingest FOLDER --json`, one JSON article per file, MiniLM int8 on onnxruntime):", "",
            "| documents | added | failed | chunks | seconds | chunks/s | peak RSS |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            f"| {ingest['documents']:,} | {ingest['added']:,} | {ingest['failed']} | {ingest['chunks']:,} | "
            f"{ingest['seconds']:.0f} | {rate:.0f} | {ingest['peak']:.0f} MB |",
            "",
        ]
    return "\n".join(lines)


def write_section(path: Path, body: str) -> None:
    """Put ``body`` between this benchmark's markers, adding a "Load" section at the end the first time."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    block = f"{MARK_START}\n{body}\n{MARK_END}"
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        text = head + block + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Load: `bench/bench_load.py`\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sitrep-load-") as tmp:
        http = None if args.skip_http else http_load(args.requests, Path(tmp))
        ingest = None if args.skip_ingest else ingest_load(args.documents, Path(tmp))
    body = table(http, ingest, args.requests)
    print(body)
    if not args.no_write:
        write_section(args.out, body)
        print(f"(written to {args.out})")
    ok = True
    if http:
        ok = (http["duplicated"] == 0 and http["lost"] == 0 and http["summaries"] == http["summaries wanted"]
              and all(status == 200 and ms <= ACK_LIMIT_MS for _, acks, _ in http["bursts"] for ms, status in acks))
    if ingest:
        ok = ok and ingest["failed"] == 0 and ingest["added"] == ingest["documents"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
