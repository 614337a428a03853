"""The state database's one owner: where it lives, how it is opened, and its versioned schema.

The state database is the embedded SQLite file ``state.db`` in the data directory, or, when
``SITREP_DATABASE_URL`` names one, a PostgreSQL database shared by several ``sitrep serve`` replicas
(:mod:`retrieval.postgres`, which speaks the same SQL to PostgreSQL). Every part of sitrep that keeps state (the
corpus, the Slack bot, the feed registry, digest deliveries) opens it through this module and declares its
tables as a :class:`Component` with ordered :class:`Migration` steps. Opening a component brings its tables to
the newest version this release knows (``schema_versions`` records how far each component got), so an upgrade
over an existing ``sitrep-data/`` migrates it in place; a store written by a newer release is refused with one
line instead of being misread. Step 1 of every component is the schema as it stood before versioning (``CREATE …
IF NOT EXISTS``), so stores from those releases pass through it unchanged.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeAlias, TypeVar

import psycopg

from retrieval import postgres
from retrieval.errors import StoreError
from retrieval.postgres import PgConnection

T = TypeVar("T")
Connection: TypeAlias = sqlite3.Connection | PgConnection
# Where the state lives: a SQLite file's path, or a ``postgresql://`` URL.
Location: TypeAlias = Path | str
# What a failed statement raises, on either engine.
DatabaseError = (sqlite3.Error, psycopg.Error)

STATE_DB_NAME = "state.db"

_VERSIONS = """
CREATE TABLE IF NOT EXISTS schema_versions (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    migrated_at TEXT NOT NULL
)
"""


def state_path(data_dir: Path) -> Path:
    """The state database's file in a data directory."""
    return data_dir / STATE_DB_NAME


def state_location(data_dir: Path, database_url: str | None = None) -> Location:
    """Where the state database is: ``database_url`` when set (PostgreSQL), else the data directory's file."""
    return database_url if database_url else state_path(data_dir)


def is_postgres(location: Location) -> bool:
    """Whether ``location`` is a PostgreSQL URL."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def engine(conn: Connection) -> str:
    """``"sqlite"`` or ``"postgresql"``: for the few statements whose SQL differs between the two."""
    return "postgresql" if isinstance(conn, PgConnection) else "sqlite"


def engine_version(conn: Connection) -> str:
    """The engine and its version, e.g. ``PostgreSQL 15.20`` or ``SQLite 3.40.1`` (for doctor and health)."""
    if isinstance(conn, PgConnection):
        return f"PostgreSQL {postgres.server_version(conn)}"
    return f"SQLite {sqlite3.sqlite_version}"


def describe(location: Location) -> str:
    """``location`` for messages and logs (a URL without its password)."""
    return postgres.redact(location) if is_postgres(location) else str(location)


def connect(location: Location) -> Connection:
    """Open the state database: a pooled PostgreSQL connection, or a SQLite file (created if needed).

    A connection is for one thread at a time; ``close()`` it (a PostgreSQL one goes back to the pool).

    WAL lets readers (search, Slack listeners) run while an ingest writes; ``busy_timeout`` makes a
    writer wait for another process's write instead of failing at once.
    """
    if is_postgres(location):
        assert isinstance(location, str)
        return postgres.connect(location)
    return _connect_sqlite(Path(location))


def _connect_sqlite(path: Path) -> sqlite3.Connection:
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


def scratch() -> sqlite3.Connection:
    """An empty in-memory SQLite database, in autocommit mode (to learn which tables migrations make)."""
    return sqlite3.connect(":memory:", isolation_level=None)


def read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to a database file (a backup's snapshot): nothing can be written through it."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def copy_database(source: Path, target: Path, *, standalone: bool = False) -> bool:
    """Copy ``source`` onto ``target`` with SQLite's online backup API, in one step (one consistent moment).

    ``standalone``: ``target`` is a new file to keep on its own (a backup): written as one self-contained file
    and checked; returns False when SQLite's integrity check fails. Otherwise ``target`` is a live state
    database, replaced in one step (readers see the old or the new one).
    """
    src = sqlite3.connect(source, timeout=30.0)
    dst = sqlite3.connect(target) if standalone else connect(target)
    try:
        src.backup(dst)  # all pages in one step: a single read transaction
        if standalone:
            dst.execute("PRAGMA journal_mode=DELETE")
            return bool(dst.execute("PRAGMA quick_check").fetchone()[0] == "ok")
        return True
    finally:
        dst.close()
        src.close()


@contextmanager
def connection(location: Location) -> Iterator[Connection]:
    """A connection for one operation, closed after it: for code used from several threads at once."""
    conn = connect(location)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` on an autocommit connection; ``ROLLBACK`` on any exception.

    One write transaction at a time per database, on either engine (see :mod:`retrieval.postgres`).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")  # inside: a COMMIT that fails (disk full) is rolled back too
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def with_retry(fn: Callable[[], T], attempts: int = 5, delay: float = 0.2) -> T:
    """Run ``fn``, retrying when SQLite reports the database busy or locked, or PostgreSQL a deadlock."""
    for attempt in range(attempts):
        try:
            return fn()
        except DatabaseError as exc:
            if not _retryable(exc) or attempt == attempts - 1:
                raise
            time.sleep(delay * (2**attempt))
    raise AssertionError("unreachable")


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        return "locked" in message or "busy" in message
    return postgres.is_retryable(exc)


def table_exists(conn: Connection, name: str) -> bool:
    """Whether the database has a table (or, on SQLite, any schema object) called ``name``."""
    if engine(conn) == "postgresql":
        sql = "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?"
    else:
        sql = "SELECT 1 FROM sqlite_master WHERE name = ?"
    return conn.execute(sql, (name,)).fetchone() is not None


# -- the versioned schema ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Migration:
    """One step of a component's schema: SQL statements, or a function run inside the step's transaction.

    SQL is written once, in the dialect :mod:`retrieval.postgres` translates; a step that differs between
    the engines (a trigger) is a function that asks :func:`engine` and runs :func:`run_script` or
    :func:`run_native`.
    """

    version: int
    change: str | Callable[[Connection], None]
    note: str = ""


@dataclass(frozen=True)
class Component:
    """A part of sitrep's state with its own tables, brought up to date by its migrations in order."""

    name: str
    migrations: tuple[Migration, ...]

    @property
    def version(self) -> int:
        return self.migrations[-1].version


_components: dict[str, Component] = {}


def register(name: str, migrations: Sequence[Migration]) -> Component:
    """Declare a component's tables; versions must start at 1 and go up by one."""
    steps = tuple(migrations)
    if [m.version for m in steps] != list(range(1, len(steps) + 1)):
        raise ValueError(f"migrations of {name!r} must be numbered 1, 2, 3, …")
    if name in _components and _components[name] != Component(name, steps):
        raise ValueError(f"schema component {name!r} is registered twice")
    _components[name] = Component(name, steps)
    return _components[name]


def components() -> list[Component]:
    """Every component registered in this process (what ``sitrep doctor`` reports)."""
    return sorted(_components.values(), key=lambda c: c.name)


def stored_versions(conn: Connection) -> dict[str, int]:
    """The version each component's tables are at in this database ({} for a store from before versioning)."""
    if not table_exists(conn, "schema_versions"):
        return {}
    return {row[0]: int(row[1]) for row in conn.execute("SELECT component, version FROM schema_versions")}


def migrate(conn: Connection, component: Component) -> list[int]:
    """Bring ``component``'s tables to its newest version; refuse a database from a newer release.

    Returns the versions this call applied (another process may have applied some first). A database that
    refuses the tables (no schema to create them in, no permission) is a :class:`StoreError` saying so.
    """
    try:
        with_retry(lambda: _create_versions(conn))
        _check_not_newer(conn, component)
        applied = []
        for step in component.migrations:
            if _stored(conn, component) < step.version and with_retry(lambda s=step: _apply(conn, component, s)):
                applied.append(step.version)
    except DatabaseError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(conn, PgConnection):
            where, advice = describe(conn.url), ("the database (and the schema its search_path names) exists and "
                                                 "that this user may create tables in it")
        else:
            where, advice = "the SQLite file", "the disk and SITREP_DATA_DIR"
        raise StoreError(f"Cannot set up sitrep's {component.name} tables in the state database ({where}): "
                         f"{reason}. Check {advice}.") from exc
    return applied


def _create_versions(conn: Connection) -> None:
    # Inside the write lock: two PostgreSQL sessions creating one table at once can collide on its type.
    with transaction(conn):
        conn.execute(_VERSIONS)


def open_component(location: Location, component: Component) -> Connection:
    """Open the state database at ``location`` with ``component``'s tables up to date."""
    conn = connect(location)
    try:
        migrate(conn, component)
    except BaseException:
        conn.close()
        raise
    return conn


def _apply(conn: Connection, component: Component, step: Migration) -> bool:
    with transaction(conn):
        if _stored(conn, component) >= step.version:  # another process got here first
            return False
        _run_step(conn, component, step)
    return True


def create_in(conn: Connection, component: Component) -> None:
    """Create ``component``'s tables at its newest version inside the caller's transaction, in a database that
    has none of them yet (``sitrep migrate`` builds its whole target in one transaction)."""
    conn.execute(_VERSIONS)
    for step in component.migrations:
        _run_step(conn, component, step)


def _run_step(conn: Connection, component: Component, step: Migration) -> None:
    if isinstance(step.change, str):
        run_script(conn, step.change)
    else:
        step.change(conn)
    conn.execute(
        "INSERT INTO schema_versions(component, version, migrated_at) VALUES (?, ?, ?)"
        " ON CONFLICT(component) DO UPDATE SET version = excluded.version, migrated_at = excluded.migrated_at",
        (component.name, step.version, datetime.now(UTC).isoformat(timespec="seconds")),
    )


def run_script(conn: Connection, script: str) -> None:
    """Run a script of statements in the shared dialect, one by one (inside the caller's transaction)."""
    for statement in _statements(script):
        conn.execute(statement)


def run_native(conn: Connection, script: str) -> None:
    """Run a script written for this connection's own engine as it is (a PostgreSQL function body, say)."""
    if isinstance(conn, PgConnection):
        conn.raw.execute(script.encode())  # no parameters: the simple protocol, several statements at once
    else:
        for statement in _statements(script):
            conn.execute(statement)


def _check_not_newer(conn: Connection, component: Component) -> None:
    stored = _stored(conn, component)
    if stored > component.version:
        raise StoreError(
            f"The state database was written by a newer sitrep ({component.name} schema version {stored}; this "
            f"release knows up to {component.version}): upgrade sitrep, or restore a backup made by this release."
        )


def _stored(conn: Connection, component: Component) -> int:
    row = conn.execute("SELECT version FROM schema_versions WHERE component = ?", (component.name,)).fetchone()
    return int(row[0]) if row else 0


def _statements(script: str) -> Iterator[str]:
    """Split a script into complete statements (``executescript`` would commit the step's transaction)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {pending.strip()[:60]}")
