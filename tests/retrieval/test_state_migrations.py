"""The state database's versioned schema: an existing store is upgraded in place, a newer one refused."""

from __future__ import annotations

import sqlite3
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.digest.delivery import DELIVERIES, DeliveryStore
from bot.feeds.registry import FEEDS
from bot.slack.state import SLACK, SlackState
from retrieval.corpus import Corpus
from retrieval.errors import StoreError
from retrieval.state import CORPUS, StateDB
from retrieval.statedb import (
    Location,
    Migration,
    components,
    connect,
    connection,
    is_postgres,
    migrate,
    register,
    state_path,
    stored_versions,
)

from conftest import FIXTURES

# A data folder written by sitrep 0.1 (main at 87ac9c7, before schema versions): the sample corpus
# ingested, one feed added, one Slack event claimed and one thread answered, one digest slot claimed.
OLD_STORE = FIXTURES / "stores" / "sitrep-data-0.1.tar.gz"


@pytest.fixture
def old_data_dir(tmp_path: Path) -> Path:
    # Extraction filters came in Python 3.11.4; our own fixture needs none on older 3.11 releases.
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(OLD_STORE) as archive:
        archive.extractall(tmp_path, **safe)  # type: ignore[arg-type]
    return tmp_path / "sitrep-data"


def test_a_store_from_before_schema_versions_opens_and_works(
        old_data_dir: Path, corpus_factory: Callable[..., Corpus]) -> None:
    with connection(state_path(old_data_dir)) as conn:
        assert stored_versions(conn) == {}
        documents_before = conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]

    corpus = corpus_factory(data_dir=old_data_dir)
    hits = corpus.search("Lashkargah", k=3)
    assert hits and "Lashkar" in hits[0].text
    assert corpus.state.counts()[0] == documents_before
    assert corpus.ingest([]).added == 0

    slack = SlackState.open(state_path(old_data_dir), retention_days=100_000)
    try:
        assert slack.claim_event("Ev0OLDSTORE") is False  # the retry of an event the old release answered
        assert slack.is_bot_thread("C0NEWS", "1700000000.000100")
    finally:
        slack.close()
    deliveries = DeliveryStore(state_path(old_data_dir))
    assert deliveries.claim("C0NEWS", "2020-10-16", "new-host", datetime(2020, 10, 16, 7, 1, tzinfo=UTC)) is None

    with connection(state_path(old_data_dir)) as conn:
        versions = stored_versions(conn)
    assert versions["corpus"] == CORPUS.version
    assert versions["slack"] == SLACK.version
    assert versions["digest"] == DELIVERIES.version


def test_the_vector_journal_gets_a_key_and_old_entries_keep_their_ids(old_data_dir: Path) -> None:
    conn = sqlite3.connect(state_path(old_data_dir))
    conn.execute("INSERT INTO vector_journal(rowid, chunk_ids, state, pid, created_ts) VALUES (7, '[\"a:v:0\"]',"
                 " 'retired', 1, 0)")
    conn.commit()
    conn.close()
    state = StateDB(state_path(old_data_dir))
    assert state.stale_journal() == [(7, ["a:v:0"], "retired")]
    assert state.journal(["b:v:0"], "writing") == 8  # new entries go on from the old ids
    state.drop_journal([7, 8])
    assert state.stale_journal() == []
    state.close()


def test_a_store_from_a_newer_release_is_refused_with_one_line(state_location: Location) -> None:
    path = state_location
    StateDB(path).close()
    with connection(path) as conn:
        conn.execute("UPDATE schema_versions SET version = version + 1 WHERE component = 'corpus'")
    with pytest.raises(StoreError) as caught:
        StateDB(path)
    message = str(caught.value)
    assert "newer sitrep" in message and "upgrade sitrep" in message and "\n" not in message


def test_migrations_run_in_order_once_and_a_failed_step_leaves_the_store_as_it_was(state_location: Location) -> None:
    calls: list[int] = []

    def fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO notes VALUES ('half-done')")
        raise sqlite3.OperationalError("disk I/O error")

    path, engine = state_location, "pg" if is_postgres(state_location) else "sqlite"
    first = register(f"test-notes-{engine}", [Migration(1, "CREATE TABLE notes (text TEXT);")])
    conn = connect(path)
    assert migrate(conn, first) == [1]
    assert migrate(conn, first) == []

    second = register(f"test-notes-2-{engine}", [Migration(1, "CREATE TABLE notes2 (text TEXT);"),
                                       Migration(2, lambda c: calls.append(2) or None), Migration(3, fail)])
    with pytest.raises(StoreError, match="disk I/O error") as failed:
        migrate(conn, second)
    assert isinstance(failed.value.__cause__, sqlite3.OperationalError)  # the step's own error, kept as the cause
    assert calls == [2]
    assert stored_versions(conn)[f"test-notes-2-{engine}"] == 2
    assert conn.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == 0  # step 3 rolled back
    conn.close()


def test_every_subsystem_registers_its_tables_with_the_one_owner() -> None:
    names = {component.name for component in components()}
    assert {CORPUS.name, SLACK.name, FEEDS.name, DELIVERIES.name} <= names


def test_migration_numbers_must_go_up_by_one() -> None:
    with pytest.raises(ValueError, match="numbered"):
        register("test-bad", [Migration(1, "SELECT 1;"), Migration(3, "SELECT 1;")])
