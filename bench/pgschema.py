"""A throwaway PostgreSQL schema for a benchmark run (``--database-url``): created, used, dropped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg


@contextmanager
def scratch_schema(url: str, prefix: str) -> Iterator[str]:
    """``url`` whose sessions keep their tables in a new schema of its own, dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    option = quote(f"-csearch_path={schema}")
    try:
        yield f"{url}{'&' if '?' in url else '?'}options={option}"
    finally:
        from retrieval import postgres

        postgres.close_pools()
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
