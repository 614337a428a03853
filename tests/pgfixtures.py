"""A real PostgreSQL for the tests: ``SITREP_TEST_DATABASE_URL`` (default: the local server), one fresh schema per test.

When no server answers, tests that need one are skipped with the reason, so a laptop without PostgreSQL
still passes. Each test gets its own schema (``search_path`` in the URL's options), dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    return os.environ.get("SITREP_TEST_DATABASE_URL", DEFAULT_URL)


def unreachable_reason() -> str | None:
    """Why PostgreSQL can't be used here, or None when it can."""
    try:
        with psycopg.connect(server_url(), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"no PostgreSQL at SITREP_TEST_DATABASE_URL ({server_url()}): {str(exc).strip().splitlines()[0]}"


_REASON: list[str | None] = []


def skip_without_postgres() -> None:
    """Skip the calling test when no PostgreSQL server is reachable (checked once per session)."""
    if not _REASON:
        _REASON.append(unreachable_reason())
    if _REASON[0]:
        pytest.skip(_REASON[0])


def with_schema(url: str, schema: str) -> str:
    """``url`` whose sessions use ``schema`` (search_path) for every table."""
    option = quote(f"-csearch_path={schema}")
    return f"{url}{'&' if '?' in url else '?'}options={option}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose tables land in a schema of this test's own."""
    skip_without_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url(), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    url = with_schema(server_url(), schema)
    try:
        yield url
    finally:
        from retrieval import postgres

        postgres.close_pools()
        with psycopg.connect(server_url(), autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def state_location(request: pytest.FixtureRequest, tmp_path) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """The state database's location on each engine: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        yield tmp_path / "state.db"
    else:
        yield request.getfixturevalue("pg_url")
