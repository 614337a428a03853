"""The PostgreSQL dialect translates column types in ``ALTER TABLE … ADD COLUMN`` as in ``CREATE TABLE``:
a Unix time added as ``REAL`` must not become PostgreSQL's 4-byte ``real``."""

from __future__ import annotations

from retrieval.postgres import translate


def test_added_columns_get_the_same_types_as_created_ones() -> None:
    assert translate("ALTER TABLE t ADD COLUMN lease_until REAL NOT NULL DEFAULT 0") == (
        "ALTER TABLE t ADD COLUMN lease_until DOUBLE PRECISION NOT NULL DEFAULT 0",)
    assert translate("ALTER TABLE t ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0") == (
        "ALTER TABLE t ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0",)
    assert translate("ALTER TABLE t ADD COLUMN note TEXT DEFAULT 'REAL'") == (
        "ALTER TABLE t ADD COLUMN note TEXT DEFAULT 'REAL'",)  # not inside a literal
    assert translate("UPDATE t SET kind = 'x' WHERE n < 1.5") == ("UPDATE t SET kind = 'x' WHERE n < 1.5",)
