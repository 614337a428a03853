"""Where Slack work runs: a bounded pool of worker threads with a bounded queue, and a per-user rate limit.

Slack needs its HTTP request acknowledged within 3 seconds, so listeners only *admit* work here and return.
A job that has to wait learns its place in line (the bot tells the person); when the queue is full the job
is refused outright rather than piling up without bound. A job that raises is never silent: its
``on_error`` callback gets the exception (:func:`bot.errors.describe_failure` turns it into one sentence).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

Job = Callable[[], None]
ErrorHandler = Callable[[BaseException], None]


@dataclass(frozen=True)
class Admission:
    """The outcome of :meth:`WorkerPool.submit`."""

    accepted: bool
    position: int = 0  # 0: a worker took it at once; n: n-th in line behind busy workers


class WorkerPool:
    """``workers`` threads taking jobs from a queue holding at most ``queue_size`` waiting jobs."""

    def __init__(self, workers: int, queue_size: int, name: str = "sitrep-worker") -> None:
        if workers < 1 or queue_size < 1:
            raise ValueError("workers and queue_size must be at least 1")
        self._workers = workers
        self._queue_size = queue_size
        self._queue: queue.Queue[tuple[Job, ErrorHandler] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._waiting = 0
        self._busy = 0
        self._closed = False
        self._idle = threading.Condition(self._lock)
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def waiting(self) -> int:
        """Jobs in the queue that no worker has started."""
        return self._waiting

    @property
    def busy(self) -> int:
        """Jobs running now."""
        return self._busy

    def submit(self, job: Job, on_error: ErrorHandler) -> Admission:
        """Queue ``job``; refuse it (``accepted=False``) when the queue is full or the pool is closed."""
        with self._lock:
            if self._closed or self._waiting >= self._queue_size:
                return Admission(accepted=False)
            # Jobs already waiting, plus this one, beyond the workers that are free right now.
            ahead = self._waiting + self._busy - self._workers
            position = ahead + 1 if ahead >= 0 else 0
            self._waiting += 1
            self._queue.put((job, on_error))
        return Admission(accepted=True, position=position)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job, on_error = item
            with self._lock:
                self._waiting -= 1
                self._busy += 1
            try:
                job()
            except BaseException as exc:  # a worker thread must survive any job
                log.exception("job failed error=%s", type(exc).__name__)
                try:
                    on_error(exc)
                except Exception:
                    log.exception("reporting a failed job failed too")
            finally:
                with self._lock:
                    self._busy -= 1
                    if self._busy == 0 and self._waiting == 0:
                        self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is waiting or running; False on timeout."""
        with self._lock:
            return self._idle.wait_for(lambda: self._busy == 0 and self._waiting == 0, timeout)

    def shutdown(self, wait: bool = True, timeout: float | None = 30.0) -> None:
        """Stop taking jobs; let queued ones finish; stop the threads."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            deadline = None if timeout is None else time.monotonic() + timeout
            for thread in self._threads:
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))


class RateLimiter:
    """At most ``per_minute`` admissions per key within any 60-second window."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}

    def check(self, key: str) -> float:
        """0 and counts the call when allowed; otherwise the seconds until the next call is allowed."""
        now = self._clock()
        with self._lock:
            stamps = self._seen.setdefault(key, deque())
            while stamps and now - stamps[0] >= 60.0:
                stamps.popleft()
            if len(stamps) >= self._limit:
                return max(0.1, 60.0 - (now - stamps[0]))
            stamps.append(now)
            if len(self._seen) > 10_000:  # forget idle users so memory stays bounded
                self._seen = {k: v for k, v in self._seen.items() if v and now - v[-1] < 60.0}
            return 0.0
