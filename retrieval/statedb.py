"""The state database's one owner: where it lives, how it is opened, and its versioned schema.

Every part of sitrep that keeps state in SQLite (the corpus, the Slack bot, the feed registry, digest
deliveries) opens it through this module and declares its tables as a :class:`Component` with ordered
:class:`Migration` steps. Opening a component brings its tables to the newest version this release knows
(``schema_versions`` records how far each component got), so an upgrade over an existing ``sitrep-data/``
migrates it in place; a store written by a newer release is refused with one line instead of being
misread. Step 1 of every component is the schema as it stood before versioning (``CREATE … IF NOT
EXISTS``), so stores from those releases pass through it unchanged.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from retrieval.errors import StoreError

T = TypeVar("T")

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


# -- the versioned schema ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Migration:
    """One step of a component's schema: SQL statements, or a function run inside the step's transaction."""

    version: int
    change: str | Callable[[sqlite3.Connection], None]
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


def stored_versions(conn: sqlite3.Connection) -> dict[str, int]:
    """The version each component's tables are at in this database ({} for a store from before versioning)."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_versions'").fetchone():
        return {}
    return {row[0]: int(row[1]) for row in conn.execute("SELECT component, version FROM schema_versions")}


def migrate(conn: sqlite3.Connection, component: Component) -> list[int]:
    """Bring ``component``'s tables to its newest version; refuse a database from a newer release.

    Returns the versions this call applied (another process may have applied some first).
    """
    with_retry(lambda: conn.execute(_VERSIONS))
    _check_not_newer(conn, component)
    applied = []
    for step in component.migrations:
        if _stored(conn, component) < step.version and with_retry(lambda step=step: _apply(conn, component, step)):
            applied.append(step.version)
    return applied


def open_component(path: Path, component: Component) -> sqlite3.Connection:
    """Open the state database at ``path`` with ``component``'s tables up to date."""
    conn = connect(path)
    try:
        migrate(conn, component)
    except BaseException:
        conn.close()
        raise
    return conn


def _apply(conn: sqlite3.Connection, component: Component, step: Migration) -> bool:
    with transaction(conn):
        if _stored(conn, component) >= step.version:  # another process got here first
            return False
        if isinstance(step.change, str):
            for statement in _statements(step.change):
                conn.execute(statement)
        else:
            step.change(conn)
        conn.execute(
            "INSERT INTO schema_versions(component, version, migrated_at) VALUES (?, ?, ?)"
            " ON CONFLICT(component) DO UPDATE SET version = excluded.version, migrated_at = excluded.migrated_at",
            (component.name, step.version, datetime.now(UTC).isoformat(timespec="seconds")),
        )
    return True


def _check_not_newer(conn: sqlite3.Connection, component: Component) -> None:
    stored = _stored(conn, component)
    if stored > component.version:
        raise StoreError(
            f"The state database was written by a newer sitrep ({component.name} schema version {stored}; this "
            f"release knows up to {component.version}): upgrade sitrep, or restore a backup made by this release."
        )


def _stored(conn: sqlite3.Connection, component: Component) -> int:
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
