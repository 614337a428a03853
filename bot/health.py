"""What ``GET /healthz`` reports: the state database and the Chroma store, each checked at most every ``ttl`` s.

A load balancer asks every replica every few seconds, so a report is reused for ``ttl`` (2 s) and the two
checks run in worker threads with a deadline: a database or Chroma server that hangs makes the report
unhealthy after ``timeout`` seconds instead of holding the health check (and the balancer) until a TCP timeout.
A check still running when the next report is due is waited on again, never started twice.

Healthy means: the state database answers and every component's schema this release knows is at the version
it knows (a newer release may have migrated past it, or a restore from an older backup fell behind), and the
Chroma collection answers a count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from typing import Any, Protocol

from retrieval.errors import SitrepError
from retrieval.neterrors import connection_cause
from retrieval.postgres import PgConnection, server_version
from retrieval.statedb import Location, components, connection, engine, is_postgres, stored_versions

TTL_SECONDS = 2.0
TIMEOUT_SECONDS = 2.0

Check = Callable[[], dict[str, Any]]


class CountedStore(Protocol):
    """The part of :class:`retrieval.store.VectorStore` the health check uses."""

    name: str
    host: str | None

    def count(self) -> int: ...


def database_health(location: Location) -> dict[str, Any]:
    """The state database: engine, whether it answers, and its schema versions against this release's."""
    report: dict[str, Any] = {"engine": "postgresql" if is_postgres(location) else "sqlite"}
    try:
        with connection(location) as conn:
            stored = stored_versions(conn)
            if isinstance(conn, PgConnection):
                report["server_version"] = server_version(conn)
            report["engine"] = engine(conn)
    except Exception as exc:  # any failure is the report's content, never the endpoint's crash
        return {**report, "reachable": False, "ok": False, "error": _error(exc)}
    known = {c.name: c.version for c in components()}
    # A component not in this database yet is created when first opened; one at another version is not usable.
    behind_or_ahead = sorted(name for name, version in known.items() if stored.get(name, version) != version)
    schema_ok = bool(stored) and not behind_or_ahead
    report.update(reachable=True, ok=schema_ok, schema_ok=schema_ok, schema=stored, expected=known)
    if not schema_ok:
        report["error"] = (f"schema of {', '.join(behind_or_ahead)} is not at this release's version"
                           if behind_or_ahead else "no sitrep schema in this database")
    return report


def chroma_health(store: CountedStore) -> dict[str, Any]:
    """The Chroma store: server or embedded, whether it answers, and how many chunks its collection holds."""
    report: dict[str, Any] = {"mode": "server" if store.host else "embedded", "collection": store.name}
    try:
        count = store.count()
    except Exception as exc:
        return {**report, "reachable": False, "ok": False, "error": _error(exc)}
    return {**report, "reachable": True, "ok": True, "count": count}


def _error(exc: BaseException) -> str:
    # One short line, no stack trace (the report is served unauthenticated): sitrep's own errors already say
    # what to fix (URLs without their password); a library's error is reduced to its network cause.
    cause = str(exc) if isinstance(exc, SitrepError) else connection_cause(exc)
    return f"{type(exc).__name__}: {cause}"[:300]


class HealthMonitor:
    """The cached health report of one replica. Thread-safe."""

    def __init__(self, checks: dict[str, Check], *, ttl: float = TTL_SECONDS, timeout: float = TIMEOUT_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.checks = checks
        self.ttl = ttl
        self.timeout = timeout
        self.clock = clock
        self._running: dict[str, Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._report: dict[str, Any] | None = None
        self._at = 0.0

    @classmethod
    def for_state(cls, location: Location, store: Callable[[], CountedStore], **kwargs: Any) -> HealthMonitor:
        """The monitor of a replica: its state database and its Chroma store (``store()`` is asked at each
        check: after a reindex the corpus uses the generation it switched to)."""
        return cls({"database": lambda: database_health(location), "chroma": lambda: chroma_health(store())},
                   **kwargs)

    def report(self) -> dict[str, Any]:
        """``{"ok": bool, <check>: {...}}``, at most ``ttl`` seconds old; waits at most ``timeout`` seconds."""
        with self._lock:  # one refresh at a time; callers meanwhile get its result
            if self._report is not None and self.clock() - self._at < self.ttl:
                return self._report
            for name, check in self.checks.items():
                if name not in self._running:
                    self._running[name] = _start(check)
            wait(self._running.values(), timeout=self.timeout)
            report: dict[str, Any] = {}
            for name in self.checks:
                future = self._running[name]
                if future.done():
                    del self._running[name]
                    failure = future.exception()
                    report[name] = ({"ok": False, "error": _error(failure)} if failure is not None
                                    else future.result())
                else:
                    report[name] = {"reachable": False, "ok": False,
                                    "error": f"no answer within {self.timeout:g} s"}
            self._report = {"ok": all(part["ok"] for part in report.values()), **report}
            self._at = self.clock()
            return self._report


def _start(check: Check) -> Future[dict[str, Any]]:
    """Run ``check`` in a daemon thread: one hung on a dead server never holds up the process's exit."""
    future: Future[dict[str, Any]] = Future()

    def run() -> None:
        try:
            future.set_result(check())
        except BaseException as exc:  # handed to the report's reader
            future.set_exception(exc)

    threading.Thread(target=run, name="sitrep-health", daemon=True).start()
    return future
