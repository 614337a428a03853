"""Lexical side of search: common query words are pruned on large indexes, with FTS5's own stemming."""

from __future__ import annotations

from pathlib import Path

from retrieval.search import fts_match, fts_query, query_words
from retrieval.state import PRUNE_MIN_CHUNKS, StateDB


def _index(tmp_path: Path, n: int) -> StateDB:
    state = StateDB(tmp_path / "state.db")
    rows = [(f"c{i}", 0.0, "", f"Police officials said fighting continued near checkpoint {i}.") for i in range(n)]
    rows.append(("needle", 0.0, "", "Police officials said the Babaji bridge was destroyed."))
    state.conn.executemany("INSERT INTO chunks_fts(chunk_id, date_ts, title, body) VALUES (?, ?, ?, ?)", rows)
    return state


def test_common_words_are_pruned_on_a_large_index(tmp_path: Path) -> None:
    state = _index(tmp_path, PRUNE_MIN_CHUNKS + 100)
    words = query_words("What did policing officials say about the Babaji bridge?")
    assert words == ["policing", "officials", "babaji", "bridge"]
    kept = state.prune_common(words)
    assert kept == ["babaji", "bridge"]  # "policing" stems like "police", in every chunk
    assert state.lexical(fts_match(kept), 5, None, None)[0][0] == "needle"
    assert state.prune_common(["police", "officials"]) in (["police"], ["officials"])  # never empty


def test_small_indexes_are_not_pruned(tmp_path: Path) -> None:
    state = _index(tmp_path, 50)
    words = query_words("police Babaji")
    assert state.prune_common(words) == words


def test_fts_query_quotes_words_so_no_syntax_leaks() -> None:
    assert fts_query('NEAR(Babaji "bridge) -Lashkar* OR') == '"near" OR "babaji" OR "bridge" OR "lashkar"'
