"""Several ``sitrep serve`` replicas in HTTP mode sharing one PostgreSQL and one Chroma server, for the
multi-replica test and ``bench/bench_replicas.py``: start them, send them signed events (a load balancer's
round robin, and Slack's retries when a replica does not answer), kill one with SIGKILL, and count what
reached the Slack Web API test server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from slack_signing import SIGNING_SECRET, free_port, sign

ROOT = Path(__file__).resolve().parent.parent


def replica_env(slack_url: str, token: str, database_url: str, chroma: tuple[str, int], collection: str,
                **extra: str) -> dict[str, str]:
    """The environment every replica shares: the process's own without sitrep/Slack/LLM settings, plus these."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SITREP_", "OPENAI_", "CHROMA_"))}
    return {
        **keep, "PYTHONPATH": str(ROOT), "SLACK_BOT_TOKEN": token, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_url, "SITREP_HTTP_HOST": "127.0.0.1", "SITREP_ANSWER_MODE": "extractive",
        "SITREP_DATABASE_URL": database_url, "CHROMA_HOST": chroma[0], "CHROMA_PORT": str(chroma[1]),
        "SITREP_CHROMA_COLLECTION": collection, **extra,
    }


@dataclass
class Replica:
    """One ``sitrep serve`` process."""

    index: int
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def events_url(self) -> str:
        return self.url + "/slack/events"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


class ReplicaCluster:
    """``count`` replicas started together; a context manager that stops (SIGTERM) the living ones at exit."""

    def __init__(self, workdir: Path, env: Mapping[str, str], count: int) -> None:
        self.workdir = workdir
        self.env = dict(env)
        self.replicas: list[Replica] = []
        for index in range(count):
            port = free_port()
            data = workdir / f"replica-{index}"
            data.mkdir(parents=True, exist_ok=True)
            log = data / "serve.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "bot.cli.main", "serve"], cwd=data, stdout=out, stderr=subprocess.STDOUT,
                    env={**self.env, "SITREP_DATA_DIR": str(data), "SITREP_HTTP_PORT": str(port)},
                )
            self.replicas.append(Replica(index, port, proc, log))

    def __enter__(self) -> ReplicaCluster:
        try:
            self.wait_serving()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_serving(self, timeout: float = 120.0) -> None:
        """Wait until every replica answers ``GET /healthz`` (AssertionError with its log if one exits)."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as http:
            for replica in self.replicas:
                while True:
                    try:
                        if http.get(replica.url + "/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert replica.alive, f"replica {replica.index} exited:\n{self.log_tail(replica)}"
                    assert time.monotonic() < deadline, f"replica {replica.index} did not start"
                    time.sleep(0.2)

    def living(self) -> list[Replica]:
        return [r for r in self.replicas if r.alive]

    def kill(self, index: int) -> None:
        """``kill -9``: no shutdown, no lease released, queued answers lost with the process."""
        replica = self.replicas[index]
        replica.proc.send_signal(signal.SIGKILL)
        replica.proc.wait(10)

    def stop(self) -> None:
        for replica in self.living():
            replica.proc.send_signal(signal.SIGTERM)
        for replica in self.replicas:
            try:
                replica.proc.wait(30)
            except subprocess.TimeoutExpired:
                replica.proc.kill()
                replica.proc.wait()

    @staticmethod
    def log_tail(replica: Replica, chars: int = 3000) -> str:
        return replica.log.read_text(errors="replace")[-chars:]


def send_event(http: httpx.Client, cluster: ReplicaCluster, first: int, body: bytes, retry: int = 0) -> int:
    """POST a signed event to replica ``first`` (counting from it round the cluster), as Slack behind a load
    balancer delivers it: a replica that does not answer gets the delivery retried on the next one, with
    ``X-Slack-Retry-Num``. Returns the index of the replica that acknowledged it."""
    count = len(cluster.replicas)
    for step in range(count):
        replica = cluster.replicas[(first + step) % count]
        headers = {"Content-Type": "application/json", **sign(body)}
        if retry or step:
            headers |= {"X-Slack-Retry-Num": str(retry + step), "X-Slack-Retry-Reason": "http_timeout"}
        try:
            response = http.post(replica.events_url, content=body, headers=headers)
        except httpx.TransportError:
            continue  # the replica is down: Slack retries, and the balancer sends it to another
        assert response.status_code == 200, (response.status_code, response.text)
        return replica.index
    raise AssertionError("no replica acknowledged the event")


def answers_per_thread(calls: Iterable[Any], threads: Iterable[str]) -> Counter[str]:
    """How many answers (messages with feedback buttons) Slack accepted in each of ``threads``; ``calls`` are
    the test server's recorded calls (objects or the ``/_calls`` JSON)."""
    wanted = set(threads)
    counts: Counter[str] = Counter()
    for call in calls:
        method, params, response = _fields(call)
        thread = str(params.get("thread_ts"))
        if method != "chat.postMessage" or thread not in wanted or not response.get("ok"):
            continue
        if any(block.get("type") == "actions" for block in params.get("blocks") or []):
            counts[thread] += 1
    return counts


def _fields(call: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    if isinstance(call, dict):
        return call["method"], call["params"], call["response"]
    return call.method, call.params, call.response
