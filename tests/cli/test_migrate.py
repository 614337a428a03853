"""``sitrep migrate --to postgresql://…``: the SQLite state copied whole into PostgreSQL, counts checked, nothing
half-written on failure, and the copy in use afterwards."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from bot.cli.main import main
from bot.slack.state import SlackState
from retrieval import state_copy, statedb
from retrieval.corpus import Corpus
from retrieval.documents import Article
from retrieval.statedb import state_path

from conftest import fixture_articles, free_port


def counts(location: str | Path) -> dict[str, int]:
    """Rows of every sitrep table at ``location``."""
    from retrieval.statedb import connection

    with connection(location) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
            if isinstance(location, Path) else
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")]
        return {t: int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables}


def pg_tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")]


@pytest.fixture
def sqlite_state(cli_env: Path, corpus_factory: Callable[..., Corpus]) -> Path:
    """A SQLite state with articles (one removed), a Slack answer and a feed, as a running sitrep leaves it."""
    corpus = corpus_factory(data_dir=cli_env, articles=fixture_articles())
    corpus.close()
    assert main(["remove", "https://relief.test/displacement-update"]) == 0
    assert main(["feeds", "add", "https://feeds.test/rss.xml"]) == 0
    slack = SlackState.open(state_path(cli_env))
    assert slack.claim_event("Ev1")
    slack.mark_thread("C1", "1.0")
    slack.close()
    return state_path(cli_env)


def test_migrate_copies_every_table_and_the_copy_is_used(
        sqlite_state: Path, pg_url: str, corpus_factory: Callable[..., Corpus], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    capsys.readouterr()
    assert main(["migrate", "--to", pg_url]) == 0
    out = capsys.readouterr().out
    before = counts(sqlite_state)  # as migrate brought it to the newest schema
    assert "in one transaction; every table's row count matches" in out
    for table in ("documents", "chunks", "lex_postings", "tombstones", "slack_events", "feeds_registry"):
        assert re.search(rf"^  {table} +{before[table]:,}$", out, re.M), table
    assert re.search(r"^Schema: corpus v\d+, slack v\d+, digest v\d+, feeds v\d+\.$", out, re.M), out
    with statedb.connection(pg_url) as conn:
        assert statedb.stored_versions(conn) == {c.name: c.version for c in statedb.components()}
    assert counts(pg_url) == before
    assert before["documents"] == 3 and before["tombstones"] >= 1 and before["slack_events"] == 1

    # The copy in use: search, stats, removal refusals, and new ingests go on with fresh ids.
    corpus = corpus_factory(data_dir=sqlite_state.parent, database_url=pg_url)
    assert corpus.stats().documents == 3
    assert corpus.search("MI-17 helicopters crashed in Nawa", k=1)[0].url == "https://example-news.test/helmand-helicopters"
    assert corpus.search("Stoltenberg Khalilzad", k=1, mode="lexical")[0].url == "https://example-news.test/stoltenberg"
    report = corpus.ingest_articles([fixture_articles()[3]])
    assert report.added == 0 and len(report.refused) == 1  # the removed article stays removed
    assert corpus.ingest_articles([Article(text="Flood waters cut the Kandahar highway near Maiwand on Friday.",
                                           source_key="k1", title="Kandahar floods")]).added == 1
    assert corpus.search("Maiwand highway floods", k=1, mode="lexical")[0].title == "Kandahar floods"
    conn = corpus.state.conn
    assert conn.execute("SELECT COUNT(DISTINCT lex_id) FROM lex_docs").fetchone()[0] == corpus.stats().chunks
    monkeypatch.setenv("SITREP_DATABASE_URL", pg_url)
    assert main(["stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == 4
    assert counts(sqlite_state) == before  # the file is left as it was


def test_migrate_twice_reports_the_same_state_and_refuses_other_data(
        sqlite_state: Path, pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--to", pg_url, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["already_migrated"] is False and first["tables"]["documents"] == 3
    assert main(["migrate", "--to", pg_url]) == 0
    assert "already holds this state" in capsys.readouterr().out

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM slack_events")
    assert main(["migrate", "--to", pg_url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds sitrep tables that differ" in err, err
    assert "(slack_events 0 rows, the file 1);" in err


def test_a_failed_migrate_writes_nothing(sqlite_state: Path, pg_url: str, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise psycopg.errors.DiskFull("could not extend file: No space left on device")

    monkeypatch.setattr(state_copy, "_advance_identities", fail)  # after every row was copied
    assert main(["migrate", "--to", pg_url]) == 2
    assert capsys.readouterr().err == (
        f"sitrep: The copy into {pg_url} failed (could not extend file: No space left on device); nothing was "
        "written there. Fix that and run `sitrep migrate` again.\n")
    assert pg_tables(pg_url) == []  # one transaction: not even the tables


def test_migrate_refuses_what_is_not_a_reachable_postgresql(
        sqlite_state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["migrate", "--to", "sqlite:///tmp/x.db"]) == 2
    assert "--to needs a PostgreSQL URL" in capsys.readouterr().err
    monkeypatch.setattr("retrieval.postgres.CONNECT_TIMEOUT", 1.0)
    assert main(["migrate", "--to", f"postgresql://sitrep:s3cret@127.0.0.1:{free_port()}/sitrep"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sitrep: Cannot connect to the PostgreSQL database at postgresql://sitrep:***@127.0.0.1:")
    assert err.count("\n") == 1 and "s3cret" not in err
