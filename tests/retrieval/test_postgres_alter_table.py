"""Added columns on PostgreSQL: the dialect translates their types in ``ALTER TABLE … ADD COLUMN`` as in
``CREATE TABLE`` (a Unix time added as ``REAL`` must not become PostgreSQL's 4-byte ``real``), and
:func:`add_column` sees a column that exists (``PRAGMA table_info`` is a no-op there)."""

from __future__ import annotations

from retrieval.date_store import add_column, has_column
from retrieval.postgres import translate
from retrieval.statedb import Location, connection


def test_added_columns_get_the_same_types_as_created_ones() -> None:
    assert translate("ALTER TABLE t ADD COLUMN lease_until REAL NOT NULL DEFAULT 0") == (
        "ALTER TABLE t ADD COLUMN lease_until DOUBLE PRECISION NOT NULL DEFAULT 0",)
    assert translate("ALTER TABLE t ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0") == (
        "ALTER TABLE t ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0",)
    assert translate("ALTER TABLE t ADD COLUMN note TEXT DEFAULT 'REAL'") == (
        "ALTER TABLE t ADD COLUMN note TEXT DEFAULT 'REAL'",)  # not inside a literal
    assert translate("UPDATE t SET kind = 'x' WHERE n < 1.5") == ("UPDATE t SET kind = 'x' WHERE n < 1.5",)


def test_add_column_twice_on_both_engines(state_location: Location) -> None:
    with connection(state_location) as conn:
        conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
        assert not has_column(conn, "t", "note")
        add_column(conn, "t", "note", "TEXT")
        add_column(conn, "t", "note", "TEXT")  # a second replica opening the same store: nothing to do
        assert has_column(conn, "t", "note")
