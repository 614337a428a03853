"""Opening the SQLite state database: WAL journal, a busy timeout, and retries on a locked database."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from retrieval.errors import StoreError

T = TypeVar("T")

STATE_DB_NAME = "state.db"


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) a SQLite database for use from one thread at a time.

    WAL lets readers (search, Slack listeners) run while an ingest writes; ``busy_timeout`` makes a
    writer wait for another process's write instead of failing at once.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
    except sqlite3.Error as exc:
        raise StoreError(f"Cannot open the state database {path}: {exc}. Check SITREP_DATA_DIR.") from exc
    conn.row_factory = sqlite3.Row
    return conn


@contextmanager
def connection(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection for one operation, closed after it: for code used from several threads at once."""
    conn = connect(path)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` on an autocommit connection; ``ROLLBACK`` on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")  # inside: a COMMIT that fails (disk full) is rolled back too
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def with_retry(fn: Callable[[], T], attempts: int = 5, delay: float = 0.2) -> T:
    """Run ``fn``, retrying when SQLite reports the database busy or locked."""
    for attempt in range(attempts):
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            message = str(exc).lower()
            if ("locked" not in message and "busy" not in message) or attempt == attempts - 1:
                raise
            time.sleep(delay * (2**attempt))
    raise AssertionError("unreachable")
