"""The state database on PostgreSQL: connections from a pool, speaking the SQL sitrep's stores write.

sitrep's stores write one dialect, SQLite's, with ``?`` placeholders, and :mod:`retrieval.statedb` hands
them either a :class:`sqlite3.Connection` or a :class:`PgConnection` from here. This module turns that
dialect into PostgreSQL's, statement by statement (cached), for the small set of constructs the stores
use — anything else is a bug caught by the test suite running every store on both engines:

- placeholders ``?`` → ``%s`` (and a literal ``%`` → ``%%``), outside string literals;
- ``BEGIN IMMEDIATE`` → ``BEGIN`` plus a transaction-scoped advisory lock. SQLite lets one writer in at a
  time, and the stores' read-then-write transactions (a digest claim, a document swap) rely on it; the
  lock gives every replica the same guarantee without SERIALIZABLE retries, while readers go on
  unblocked (MVCC). Write transactions are short; the queue of Slack work uses row locks instead;
- ``INSERT OR IGNORE`` → ``INSERT … ON CONFLICT DO NOTHING``;
- in ``CREATE TABLE`` and ``ALTER TABLE`` (an added column): ``REAL`` → ``DOUBLE PRECISION`` (PostgreSQL's
  ``real`` is 4 bytes: it would round a Unix time to minutes), ``INTEGER`` → ``BIGINT``, ``BLOB`` →
  ``BYTEA``, ``INTEGER PRIMARY KEY [AUTOINCREMENT]`` → an identity column, ``WITHOUT ROWID`` dropped;
- ``PRAGMA`` statements are SQLite's tuning knobs and do nothing here.

Rows answer both ``row[0]`` and ``row["name"]``, as :class:`sqlite3.Row` does.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
import psycopg_pool
from psycopg.rows import RowMaker

from retrieval.errors import StoreError

# The advisory lock every write transaction takes (see module docstring); an arbitrary fixed key.
WRITE_LOCK_KEY = 0x5173_7265_7001
POOL_SIZE = 10
CONNECT_TIMEOUT = 10.0

_pools: dict[str, psycopg_pool.ConnectionPool[Any]] = {}
_pools_lock = threading.Lock()


class PgRow(tuple[Any, ...]):
    """A result row readable by position and by column name."""

    _names: dict[str, int]

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


@functools.lru_cache(maxsize=512)
def _row_type(columns: tuple[str, ...]) -> type[PgRow]:
    # One class per result shape, made once: psycopg asks for a row maker on every statement.
    return type("Row", (PgRow,), {"_names": {name: i for i, name in enumerate(columns)}})


def _row_factory(cursor: psycopg.Cursor[Any]) -> RowMaker[PgRow]:
    row_type = _row_type(tuple(col.name for col in cursor.description or ()))

    def make(values: Sequence[Any]) -> PgRow:
        return row_type(values)  # type: ignore[no-any-return]

    return make


class PgCursor:
    """The part of a DB-API cursor the stores use, over a psycopg cursor."""

    def __init__(self, cursor: psycopg.Cursor[PgRow]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> PgRow | None:
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self) -> list[PgRow]:
        return self._cursor.fetchall() if self._cursor.description else []

    def fetchmany(self, size: int) -> list[PgRow]:
        return self._cursor.fetchmany(size) if self._cursor.description else []

    def __iter__(self) -> Iterator[PgRow]:
        return iter(self.fetchall())


class PgConnection:
    """A pooled PostgreSQL connection with the interface of an autocommit :class:`sqlite3.Connection`."""

    engine = "postgresql"

    def __init__(self, pool: psycopg_pool.ConnectionPool[Any], url: str) -> None:
        self._pool = pool
        self.url = url
        self._conn: psycopg.Connection[Any] | None = pool.getconn()

    @property
    def raw(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            raise StoreError("This PostgreSQL connection was closed.")
        return self._conn

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def execute(self, sql: str, params: Sequence[Any] = ()) -> PgCursor:
        translated = translate(sql)
        if translated is None:
            return PgCursor(self.raw.cursor())
        cursor = self.raw.cursor(row_factory=_row_factory)
        for statement in translated:
            cursor.execute(statement, tuple(params) if "%s" in statement else ())
        return PgCursor(cursor)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> PgCursor:
        translated = translate(sql)
        cursor = self.raw.cursor(row_factory=_row_factory)
        if translated is not None and rows:
            (statement,) = translated
            cursor.executemany(statement, [tuple(r) for r in rows])
        return PgCursor(cursor)

    def close(self) -> None:
        if self._conn is not None:
            if self.in_transaction:
                self._conn.rollback()
            self._pool.putconn(self._conn)
            self._conn = None


def pool(url: str) -> psycopg_pool.ConnectionPool[Any]:
    """The process's connection pool for ``url`` (opened on first use, checked before each hand-out)."""
    with _pools_lock:
        found = _pools.get(url)
        if found is None:
            found = psycopg_pool.ConnectionPool(
                url, min_size=1, max_size=POOL_SIZE, open=False, name="sitrep",
                kwargs={"autocommit": True, "connect_timeout": int(CONNECT_TIMEOUT)},
                check=psycopg_pool.ConnectionPool.check_connection,
            )
            try:
                found.open(wait=True, timeout=CONNECT_TIMEOUT)
            except psycopg_pool.PoolTimeout as exc:
                found.close()
                raise StoreError(
                    f"Cannot connect to the PostgreSQL database at {redact(url)} within {CONNECT_TIMEOUT:g} s: "
                    "check SITREP_DATABASE_URL and that the server is running and accepts this user."
                ) from exc
            _pools[url] = found
        return found


def connect(url: str) -> PgConnection:
    """A connection from ``url``'s pool; ``close()`` gives it back."""
    try:
        return PgConnection(pool(url), url)
    except psycopg_pool.PoolTimeout as exc:
        raise StoreError(
            f"All {POOL_SIZE} connections to {redact(url)} stayed busy; try again, or check for stuck sitrep processes."
        ) from exc


def close_pools() -> None:
    """Close every pool of this process (tests, and a clean shutdown)."""
    with _pools_lock:
        for found in _pools.values():
            found.close()
        _pools.clear()


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def server_version(conn: PgConnection) -> str:
    """PostgreSQL's version, e.g. ``15.20``."""
    number = conn.raw.info.server_version
    return f"{number // 10000}.{number % 10000}"


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed transaction may simply be run again (a deadlock or serialization conflict)."""
    return isinstance(exc, psycopg.errors.SerializationFailure | psycopg.errors.DeadlockDetected)


# -- the dialect --------------------------------------------------------------------------------------

_LITERAL = re.compile(r"'(?:[^']|'')*'")
_DDL_TYPES = [
    (re.compile(r"\bINTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT\b", re.I),
     "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    # SQLite's INTEGER PRIMARY KEY is the rowid: an insert that leaves it out gets the next number.
    (re.compile(r"\bINTEGER\s+PRIMARY\s+KEY\b", re.I), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
    (re.compile(r"\bINTEGER\b", re.I), "BIGINT"),
    (re.compile(r"\bBLOB\b", re.I), "BYTEA"),
    (re.compile(r"\)\s*WITHOUT\s+ROWID\s*;?\s*$", re.I), ")"),
]


@functools.lru_cache(maxsize=2048)
def translate(sql: str) -> tuple[str, ...] | None:
    """PostgreSQL statements for one statement of sitrep's SQLite dialect; None for a no-op (PRAGMA)."""
    head = sql.lstrip()[:24].upper()
    if head.startswith("PRAGMA"):
        return None
    if re.match(r"BEGIN(\s+IMMEDIATE|\s+EXCLUSIVE)?\s*;?\s*$", sql.strip(), re.I):
        return ("BEGIN", f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
    text = _outside_literals(sql, lambda part: part.replace("%", "%%").replace("?", "%s"), _escape_percent)
    if head.startswith(("CREATE TABLE", "ALTER TABLE")):
        for pattern, replacement in _DDL_TYPES:
            text = _outside_literals(text, functools.partial(pattern.sub, replacement))
    if re.match(r"\s*INSERT\s+OR\s+IGNORE\s+INTO\b", text, re.I):
        text = re.sub(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO\b", "INSERT INTO", text, flags=re.I)
        returning = re.search(r"\sRETURNING\s", text, re.I)
        at = returning.start() if returning else len(text.rstrip().rstrip(";"))
        text = text[:at] + " ON CONFLICT DO NOTHING" + text[at:]
    elif re.match(r"\s*INSERT\s+OR\s+REPLACE\b", text, re.I):
        raise ValueError("INSERT OR REPLACE has no PostgreSQL form: write INSERT … ON CONFLICT (key) DO UPDATE")
    return (text,)


def _escape_percent(literal: str) -> str:
    return literal.replace("%", "%%")


def _outside_literals(sql: str, change: Callable[[str], str], in_literal: Callable[[str], str] = str) -> str:
    """Apply ``change`` to the parts of ``sql`` outside '…' string literals (``in_literal`` to the literals)."""
    out, at = [], 0
    for literal in _LITERAL.finditer(sql):
        out.append(change(sql[at : literal.start()]))
        out.append(in_literal(literal.group()))
        at = literal.end()
    out.append(change(sql[at:]))
    return "".join(out)
