"""Hybrid fusion: reciprocal ranks with weights, title and name/number boosts; the plain-RRF baseline mode."""

from __future__ import annotations

from retrieval.corpus import Corpus
from retrieval.search import FusionWeights, fuse_documents, fused_scores, query_names, rrf
from retrieval.state import ChunkRow


def _row(chunk_id: str, doc_id: str, title: str, text: str) -> ChunkRow:
    return ChunkRow(chunk_id, doc_id, 0, 0, len(text), text, title, "outlet", f"https://x.test/{doc_id}", None)


ROWS = {
    "a:0": _row("a:0", "a", "Floods across the region", "Rains flooded several districts, officials said."),
    "b:0": _row("b:0", "b", "Helmand floods displace families", "In Lashkargah 2,300 families fled the water."),
    "c:0": _row("c:0", "c", "Market prices", "Flour prices rose in Kabul."),
}


def test_query_names_are_capitalised_words_after_the_first_and_numbers() -> None:
    assert query_names("How many families fled Lashkargah after the 2022 floods in Helmand?") == [
        "lashkargah", "2022", "helmand"]
    assert query_names("Which floods were worst?") == []  # a capitalised first word is just grammar


def test_plain_rrf_weights_both_sides_alike() -> None:
    assert rrf([["x", "y"], ["y"]]) == {"x": 1 / 61, "y": 1 / 62 + 1 / 61}
    assert rrf([["x"], ["y"]], k=10, weights=(1.0, 2.0)) == {"x": 1 / 11, "y": 2 / 11}


def test_names_and_title_boosts_lift_the_story_that_carries_them() -> None:
    query = "How many families fled floods in Lashkargah, Helmand?"
    dense, lexical = ["a:0", "b:0", "c:0"], ["a:0", "c:0", "b:0"]
    plain = fuse_documents(query, dense, lexical, ROWS, FusionWeights())
    assert plain[0] == "a"  # first on both sides
    boosted = fuse_documents(query, dense, lexical, ROWS, FusionWeights(title=0.5, names=1.0))
    assert boosted == ["b", "a", "c"]  # b names Lashkargah and Helmand, in its title too


def test_chunks_that_are_no_longer_live_are_left_out() -> None:
    scores = fused_scores("floods", ["gone:0", "a:0"], ["a:0"], ROWS, FusionWeights(names=1.0))
    assert set(scores) == {"a:0"}


def test_every_search_mode_ranks_the_same_live_chunks(corpus: Corpus) -> None:
    found = {mode: [h.chunk_id for h in corpus.search("Stoltenberg NATO", k=5, mode=mode)]
             for mode in ("hybrid", "rrf", "dense", "lexical")}
    assert all(found.values())
    live = {r[0] for r in corpus.state.conn.execute("SELECT chunk_id FROM chunks")}
    assert set().union(*found.values()) <= live
