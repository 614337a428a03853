"""Copy the state in a SQLite file into PostgreSQL (``sitrep migrate --to postgresql://…``).

Every table of every component is copied, whatever the component (the corpus, the Slack bot,
digests, feeds): the tables and their columns are read from the file's schema, and the target's tables are
made by the components' own migrations, so a new component's tables are copied without changes here. The
vectors are not part of the state database and stay where they are (the Chroma folder or server).

The target is written in one PostgreSQL transaction: its tables are created, filled (``COPY``, in the order
their foreign keys need), its identity sequences moved past every id ever used (SQLite's ``sqlite_sequence``
included, so an id a removed row once had is never handed out again), and each table's row count compared
with the file's before the commit. Any failure rolls it all back: the target is as it was. The source is
read in one read transaction, so a bot still writing to it cannot tear the copy.

A target that already holds any of these tables is refused, unless every one of them holds as many rows as
the file's (a migration that already ran): then nothing is written and the counts are reported.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from retrieval import postgres
from retrieval.errors import StoreError
from retrieval.postgres import PgConnection
from retrieval.statedb import (
    Component,
    create_in,
    migrate,
    open_component,
    scratch,
    table_exists,
    transaction,
)


@dataclass(frozen=True)
class CopyReport:
    """What ``sitrep migrate`` did: each table's rows (equal in the file and the target), in copy order."""

    source: Path
    target: str  # the URL without its password
    tables: list[tuple[str, int]]
    components: dict[str, int]  # component -> schema version
    already: bool = False  # the target already held this state: nothing was written
    skipped: tuple[str, ...] = ()  # tables in the file that no component owns (left out)

    def to_json(self) -> dict[str, object]:
        return {"source": str(self.source), "target": self.target, "already_migrated": self.already,
                "tables": dict(self.tables), "components": self.components, "skipped": list(self.skipped)}


def copy_state(source: Path, target_url: str, components: Sequence[Component]) -> CopyReport:
    """Copy the SQLite state database ``source`` into the PostgreSQL database at ``target_url``.

    ``components``: every component of sitrep's state; the file is first brought to their newest schema, as
    ``sitrep serve`` opening it would, and all their tables are copied. Raises StoreError (one line) when the
    target cannot be used, holds other data, or the copy fails; nothing is then written to the target.
    """
    if not source.is_file():
        raise StoreError(f"There is no SQLite state database at {source} to copy (check SITREP_DATA_DIR).")
    src = _open_source(source, components)
    try:
        chosen = list(components)
        tables, skipped = _tables(src, chosen, target_url)
        target = postgres.connect(target_url)
        try:
            src.execute("BEGIN")  # one read snapshot of the file for the whole copy
            counts = {t: int(src.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]) for t in tables}
            found = _existing(target, tables)
            versions = {c.name: c.version for c in chosen}
            where = postgres.redact(target_url)
            if found:
                if found == counts:
                    return CopyReport(source, where, list(counts.items()), versions, already=True, skipped=skipped)
                differ = [t for t in tables if found.get(t) != counts[t]]
                held = ", ".join(f"{t} {found.get(t, 'missing')} rows, the file {counts[t]}"
                                 for t in differ[:4])
                raise StoreError(
                    f"{where} already holds sitrep tables that differ from {source} ({held}); migrate into an "
                    "empty database or schema, or drop those tables first.")
            with transaction(target):
                for component in chosen:
                    create_in(target, component)
                _add_missing_columns(src, target, tables)
                _copy_rows(src, target, tables)
                _advance_identities(src, target)
                copied = {t: int(target.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]) for t in tables}
                if copied != counts:
                    wrong = ", ".join(f"{t} {copied[t]} of {counts[t]}" for t in tables if copied[t] != counts[t])
                    raise StoreError(f"The copy's row counts differ from {source} ({wrong}); nothing was written.")
            return CopyReport(source, where, list(counts.items()), versions, skipped=skipped)
        finally:
            target.close()
    except (sqlite3.Error, postgres.psycopg.Error) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"The copy into {postgres.redact(target_url)} failed ({first}); nothing was written "
                         "there. Fix that and run `sitrep migrate` again.") from exc
    finally:
        if src.in_transaction:
            src.execute("ROLLBACK")
        src.close()


def _open_source(source: Path, components: Sequence[Component]) -> sqlite3.Connection:
    """The file, with every component at its newest schema (as ``sitrep serve`` opening it would leave it)."""
    conn = open_component(source, components[0])
    assert isinstance(conn, sqlite3.Connection)
    try:
        for component in components[1:]:
            migrate(conn, component)
    except BaseException:
        conn.close()
        raise
    return conn


def _tables(src: sqlite3.Connection, chosen: Sequence[Component], target_url: str) -> tuple[list[str], tuple[str, ...]]:
    """The file's tables to copy, parents before children (foreign keys), and the tables left out.

    Which tables the components own is learnt by creating them in a scratch SQLite database.
    """
    owned = _owned_tables(chosen)
    names = [r[0] for r in src.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY name")]
    tables = [t for t in names if t in owned]
    parents = {t: {r[2] for r in src.execute(f'PRAGMA foreign_key_list("{t}")')} & set(tables) - {t}
               for t in tables}
    ordered: list[str] = []
    while len(ordered) < len(tables):
        ready = [t for t in tables if t not in ordered and parents[t] <= set(ordered)]
        if not ready:
            raise StoreError(f"The tables of {target_url} cannot be ordered by their foreign keys (a cycle).")
        ordered.extend(ready)
    return ordered, tuple(t for t in names if t not in owned)


def _owned_tables(chosen: Sequence[Component]) -> set[str]:
    conn = scratch()
    try:
        conn.execute("BEGIN")
        for component in chosen:
            create_in(conn, component)
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def _existing(target: PgConnection, tables: Sequence[str]) -> dict[str, int]:
    """Rows of each of ``tables`` the target already has (tables it lacks are left out)."""
    return {t: int(target.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0])  # type: ignore[index]
            for t in tables if table_exists(target, t)}


# SQLite's declared column types in PostgreSQL's words (as retrieval.postgres translates CREATE TABLE).
_TYPES = {"INTEGER": "BIGINT", "REAL": "DOUBLE PRECISION", "BLOB": "BYTEA"}


def _add_missing_columns(src: sqlite3.Connection, target: PgConnection, tables: Sequence[str]) -> None:
    """Columns a component adds when it opens rather than in a migration (so the new tables lack them)."""
    for table in tables:
        have = {r[0] for r in target.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = ?", (table,))}
        for _, name, kind, *_ in src.execute(f'PRAGMA table_info("{table}")'):
            if name not in have:
                target.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {_TYPES.get(kind.upper(), kind or "TEXT")}')


def _copy_rows(src: sqlite3.Connection, target: PgConnection, tables: Sequence[str]) -> None:
    """Fill the new tables with the file's rows (the rows the migrations seeded are replaced)."""
    for table in reversed(tables):
        target.execute(f'DELETE FROM "{table}"')
    for table in tables:
        columns = [r[1] for r in src.execute(f'PRAGMA table_info("{table}")')]
        names = ", ".join(f'"{c}"' for c in columns)
        # Triggers (the lexical index's statistics) would count the rows again: lex_stats is copied as it is.
        target.execute(f'ALTER TABLE "{table}" DISABLE TRIGGER USER')
        rows = src.execute(f'SELECT {names} FROM "{table}"')
        with target.raw.cursor().copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
            while part := rows.fetchmany(2000):
                for row in part:
                    copy.write_row(row)
        target.execute(f'ALTER TABLE "{table}" ENABLE TRIGGER USER')


def _advance_identities(src: sqlite3.Connection, target: PgConnection) -> None:
    """Move every identity sequence past the highest id in use or ever used (``sqlite_sequence``)."""
    used: dict[str, int] = {}
    if src.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
        used = {r[0]: int(r[1]) for r in src.execute("SELECT name, seq FROM sqlite_sequence")}
    identities = target.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND is_identity = 'YES'").fetchall()
    for table, column in identities:
        highest = target.execute(f'SELECT MAX("{column}") FROM "{table}"').fetchone()[0]  # type: ignore[index]
        last = max(int(highest or 0), used.get(table, 0))
        if last > 0:
            target.execute("SELECT setval(pg_get_serial_sequence(?, ?), ?)", (f'"{table}"', column, last))
