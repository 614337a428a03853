"""Lexical side of search: BM25 over posting segments, live exactly when the chunks are, and old FTS5 stores.

Tests taking ``state_location`` run on both engines (the SQLite file and PostgreSQL)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from retrieval import lexical
from retrieval.date_store import DateWrite, write_dates
from retrieval.search import query_terms, query_words
from retrieval.state import NewVersion, StateDB
from retrieval.statedb import Location


def _version(doc_id: str, texts: list[str], title: str = "", date_ts: float = 0.0) -> NewVersion:
    text = "\n".join(texts)
    spans, at = [], 0
    for i, part in enumerate(texts):
        spans.append((f"{doc_id}:v:{i}", i, at, at + len(part)))
        at += len(part) + 1
    return NewVersion(doc_id=doc_id, content_hash=f"h-{doc_id}-{hash(text)}", version="v", title=title, source="s",
                      url=f"https://x.test/{doc_id}", published=None, date_ts=date_ts, text=text, chunks=spans)


def _store(location: Location, n_common: int, batch: int = 50) -> StateDB:
    state = StateDB(location)
    docs = [_version(f"d{i}", [f"Police officials said fighting continued near checkpoint {i}."], date_ts=float(i))
            for i in range(n_common)]
    docs.append(_version("needle", ["Police officials said the Babaji bridge was destroyed."], date_ts=5.0))
    for start in range(0, len(docs), batch):
        state.commit_batch(docs[start : start + batch], [], [], [])
    return state


def test_stems_match_and_rare_words_outrank_common_ones(state_location: Location) -> None:
    state = _store(state_location, 300)
    terms = query_terms("What did policing officials say about the Babaji bridges?")
    assert terms == ["polic", "offici", "babaji", "bridg"]  # "policing" stems like "police", "bridges" like "bridge"
    hits = state.lexical(terms, 5, None, None)
    assert hits[0][0] == "needle:v:0"
    assert len(hits) == 5 and hits[0][1] > hits[1][1] > 0  # the common words still score the rest
    assert state.lexical(query_terms("police"), 1000, None, None).__len__() == 301


def test_merging_keeps_the_ranking_and_drops_removed_chunks(state_location: Location) -> None:
    state = StateDB(state_location)
    docs = [_version(f"d{i}", [f"Fighting continued near checkpoint {i}."]) for i in range(10 * lexical.FANOUT)]
    for n in range(lexical.FANOUT - 1):
        state.commit_batch(docs[n * 10 : n * 10 + 10], [], [], [])
    before = state.lexical(query_terms("fighting near checkpoint 3"), 3, None, None)
    assert before[0][0] == "d3:v:0"
    state.conn.execute("DELETE FROM documents WHERE doc_id = 'd3'")  # any deletion path: cascades to the index
    assert "d3:v:0" not in {c for c, _ in state.lexical(query_terms("checkpoint 3"), 200, None, None)}

    state.commit_batch(docs[-10:], [], [], [])  # the 8th segment of level 0: merged into one
    assert [tuple(r) for r in state.conn.execute("SELECT level, docs FROM lex_segments")] == [(1, 79)]
    postings = state.conn.execute("SELECT SUM(length(ids)) / 4 FROM lex_postings").fetchone()[0]
    assert postings == 79 * 5  # fight, continu, near, checkpoint, the number; d3's five are gone
    assert state.lexical(query_terms("fighting near checkpoint 13"), 3, None, None)[0][0] == "d13:v:0"
    assert state.lexical(query_terms("checkpoint 75"), 3, None, None)[0][0] == "d75:v:0"


def test_a_merge_of_live_segments_gives_the_same_scores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = [_version(f"d{i}", [f"Convoy {'delayed ' * (i % 3)}near checkpoint {i} and bridge {i % 7}."])
            for i in range(8 * lexical.FANOUT)]
    queries = ["convoy delayed bridge 3", "checkpoint 12", "bridge 5 delayed", "near"]

    def build(name: str) -> StateDB:
        state = StateDB(tmp_path / name)
        for n in range(lexical.FANOUT):
            state.commit_batch(docs[n * 8 : n * 8 + 8], [], [], [])
        return state

    merged = build("merged.db")  # nothing removed: a term one segment holds is copied as it is
    assert [tuple(r) for r in merged.conn.execute("SELECT level, docs FROM lex_segments")] == [(1, 64)]
    monkeypatch.setattr(lexical, "FANOUT", 100)
    apart = build("apart.db")
    assert apart.conn.execute("SELECT COUNT(*) FROM lex_segments").fetchone()[0] == 8
    for q in queries:
        assert merged.lexical(query_terms(q), 20, None, None) == apart.lexical(query_terms(q), 20, None, None)
    assert merged.lexical(query_terms("checkpoint 12"), 1, None, None)[0][0] == "d12:v:0"
    terms = dict(merged.conn.execute("SELECT term, length(ids) / 4 FROM lex_postings").fetchall())
    assert terms["convoi"] == 64 and terms["checkpoint"] == 64 and terms["12"] == 1


def test_date_window_and_replaced_versions(state_location: Location) -> None:
    state = _store(state_location, 30)
    found = [c for c, _ in state.lexical(query_terms("checkpoint"), 100, 10.0, 12.0)]
    assert sorted(found) == ["d10:v:0", "d11:v:0", "d12:v:0"]
    newer = _version("needle", ["The Babaji bridge reopened to traffic."], date_ts=6.0)
    state.commit_batch([newer], [], [], [])
    assert state.lexical(query_terms("destroyed"), 5, None, None) == []  # the old version is gone
    assert state.lexical(query_terms("reopened"), 5, None, None)[0][0] == "needle:v:0"


def test_a_date_repair_moves_chunks_in_and_out_of_date_windows_in_every_process(state_location: Location) -> None:
    state = _store(state_location, 30)
    window = [c for c, _ in state.lexical(query_terms("checkpoint"), 100, 10.0, 12.0)]  # caches the dates
    assert sorted(window) == ["d10:v:0", "d11:v:0", "d12:v:0"]
    other = StateDB(state_location)  # e.g. `sitrep reindex --dates` while the bot keeps serving
    write_dates(other.conn, [DateWrite("d20", "1970-01-01T00:00:11+00:00", 11.0, "11", None, "p"),
                             DateWrite("d11", None, 99.0, "", None, "p")])
    other.close()
    window = [c for c, _ in state.lexical(query_terms("checkpoint"), 100, 10.0, 12.0)]
    assert sorted(window) == ["d10:v:0", "d12:v:0", "d20:v:0"]


def test_removed_documents_leave_the_lexical_index(state_location: Location) -> None:
    state = _store(state_location, 30)
    (doc,) = state.stored_documents(["needle"])
    retired = state.remove_documents([(doc, ["text:h-needle"])])
    assert retired == ["needle:v:0"]
    assert state.conn.execute("SELECT COUNT(*) FROM lex_docs WHERE chunk_id = 'needle:v:0'").fetchone()[0] == 0
    assert state.lexical(query_terms("Babaji"), 5, None, None) == []


def test_a_store_with_the_old_fts5_index_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE documents (doc_id TEXT PRIMARY KEY, content_hash TEXT NOT NULL UNIQUE, version TEXT NOT NULL,"
        " title TEXT NOT NULL DEFAULT '', source TEXT NOT NULL DEFAULT '', url TEXT NOT NULL DEFAULT '',"
        " published TEXT, date_ts REAL NOT NULL, first_seen TEXT NOT NULL, first_seen_ts REAL NOT NULL,"
        " updated_at TEXT NOT NULL, text TEXT NOT NULL, n_chunks INTEGER NOT NULL);"
        "CREATE TABLE chunks (chunk_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL REFERENCES documents(doc_id)"
        " ON DELETE CASCADE, idx INTEGER NOT NULL, char_start INTEGER NOT NULL, char_end INTEGER NOT NULL,"
        " text TEXT NOT NULL, date_ts REAL NOT NULL);"
        "CREATE VIRTUAL TABLE chunks_fts USING fts5(chunk_id UNINDEXED, date_ts UNINDEXED, title, body);"
        "CREATE VIRTUAL TABLE chunks_vocab USING fts5vocab(chunks_fts, 'row');"
    )
    text = "Floods cut the Kabul highway."
    conn.execute("INSERT INTO documents VALUES ('d1', 'h1', 'v', 'Flood news', '', '', NULL, 1.0, 'x', 1.0, 'x', ?, 1)",
                 (text,))
    conn.execute("INSERT INTO chunks VALUES ('d1:v:0', 'd1', 0, 0, ?, ?, 1.0)", (len(text), text))
    conn.execute("INSERT INTO chunks_fts VALUES ('d1:v:0', 1.0, 'Flood news', ?)", (text,))
    conn.commit()
    conn.close()

    state = StateDB(path)
    assert state.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunks_fts'").fetchone() is None
    assert state.lexical(query_terms("highway floods"), 5, None, None)[0][0] == "d1:v:0"


def test_query_words_and_terms_ignore_search_syntax() -> None:
    assert query_words('NEAR(Babaji "bridge) -Lashkar* OR') == ["near", "babaji", "bridge", "lashkar"]
    assert query_terms("the of and") == []  # only stopwords: nothing to look up lexically
    assert query_terms("Kabul's 2022 élection") == ["kabul", "2022", "elect"]


def test_a_common_word_is_scored_on_its_best_weighted_postings_only(state_location: Location) -> None:
    state = _store(state_location, 300)  # "police" in all 301 chunks, spread over seven segments
    state.commit_batch([_version("loud", ["Police police police: the police said so."])], [], [], [])
    hits = lexical.search(state.conn, query_terms("police"), 1000, max_postings=20)
    assert 20 <= len(hits) < 30  # about 20 of 302, shared out over the segments
    assert hits[0][0] == "loud:v:0"  # the chunk where the word weighs most is among them
    both = lexical.search(state.conn, query_terms("police Babaji"), 5, max_postings=20)
    assert both[0][0] == "needle:v:0"  # a rare word still finds its chunk
    exact = lexical.search(state.conn, query_terms("police"), 1000, max_postings=10_000)
    assert len(exact) == 302


def test_both_engines_give_identical_scores(tmp_path: Path, pg_url: str) -> None:
    """The same segment BM25 code over the same tables: PostgreSQL ranks and scores exactly as SQLite does."""
    stores = [_store(tmp_path / "state.db", 120, batch=9), _store(pg_url, 120, batch=9)]  # merges happen
    stores[1].commit_batch([_version("d7", ["Checkpoint seven was rebuilt after the police left."], date_ts=7.0)],
                           [], [], [])
    stores[0].commit_batch([_version("d7", ["Checkpoint seven was rebuilt after the police left."], date_ts=7.0)],
                           [], [], [])
    for q in ["police checkpoint 7", "Babaji bridge destroyed", "fighting continued", "rebuilt"]:
        for window in ((None, None), (5.0, 50.0)):
            sqlite_hits, pg_hits = (s.lexical(query_terms(q), 30, *window) for s in stores)
            assert sqlite_hits and pg_hits == sqlite_hits
    ids = [lexical.document_scores(s.conn, ["d7", "needle", "d3"], "police checkpoint bridge") for s in stores]
    assert ids[0] == ids[1] and ids[0]["d7"] > 0
    for s in stores:
        s.close()


def test_sparse_and_dense_scoring_give_the_same_hits(state_location: Location, monkeypatch: pytest.MonkeyPatch) -> None:
    """Postings summed per id by sorting them or through a store-long array: the same ids, scores to the bit."""
    state = _store(state_location, 300, batch=40)
    queries = ["police checkpoint 7", "Babaji bridge destroyed", "fighting", "checkpoint 150 continued"]
    runs = []
    for factor in (10**9, 0):  # always sort the postings; never
        monkeypatch.setattr(lexical, "_SORT_FACTOR", factor)
        runs.append([state.lexical(query_terms(q), 25, *window) for q in queries
                     for window in ((None, None), (100.0, 200.0))])
    assert runs[0] == runs[1] and sum(bool(hits) for hits in runs[0]) == 7  # the needle (dated 5) is outside 100-200


def test_a_tie_across_the_limit_is_cut_by_age_not_by_chance(state_location: Location) -> None:
    state = StateDB(state_location)
    same = [_version(f"t{i:03d}", ["Convoy halted at the border crossing."]) for i in range(120)]
    for start in range(0, len(same), 30):
        state.commit_batch(same[start : start + 30], [], [], [])
    hits = state.lexical(query_terms("convoy border"), 7, None, None)
    assert len({s for _, s in hits}) == 1  # every chunk scores alike
    assert [c for c, _ in hits] == [f"t{i:03d}:v:0" for i in range(7)]  # the oldest seven, in order
    state.conn.execute("DELETE FROM documents WHERE doc_id < 't020'")  # most of the first look are gone
    assert [c for c, _ in state.lexical(query_terms("convoy border"), 7, None, None)] == [
        f"t{i:03d}:v:0" for i in range(20, 27)]


def test_whole_document_scores_follow_a_changed_text(state_location: Location) -> None:
    """Documents' terms are cached between queries, keyed by their text: a new version is scored anew."""
    state = _store(state_location, 5)
    before = lexical.document_scores(state.conn, ["needle", "d1"], "Babaji bridge")
    assert before["needle"] > 0 and before["d1"] == 0.0
    assert lexical.document_scores(state.conn, ["needle", "d1"], "Babaji bridge") == before
    state.commit_batch([_version("needle", ["The Kandahar road reopened."])], [], [], [])
    assert lexical.document_scores(state.conn, ["needle"], "Babaji bridge") == {"needle": 0.0}
    assert lexical.document_scores(state.conn, ["needle"], "Kandahar road")["needle"] > 0


def test_the_document_cache_keeps_what_it_is_asked_for(state_location: Location,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Past its size the cache forgets the least recently scored documents, never the ones being scored."""
    monkeypatch.setattr(lexical, "_DOCS_CACHED", 3)
    monkeypatch.setattr(lexical, "_doc_terms", type(lexical._doc_terms)())
    state = _store(state_location, 6)
    first = lexical.document_scores(state.conn, ["d0", "d1", "d2"], "checkpoint 1")
    assert first["d1"] > first["d0"] > 0
    both = lexical.document_scores(state.conn, ["d0", "d3", "d4"], "checkpoint 1")  # d0 cached, two new ones
    assert both == {"d0": first["d0"], "d3": first["d0"], "d4": first["d0"]}
    assert len(lexical._doc_terms) == 3
