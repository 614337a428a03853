"""Hybrid fusion: reciprocal ranks with weights, title and name/number boosts, recency; the plain-RRF baseline mode."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from retrieval.corpus import Corpus
from retrieval.documents import Article
from retrieval.lexical import document_scores
from retrieval.search import (
    NEWER_PREFERRED,
    NEWEST_FIRST,
    FusionWeights,
    add_document_ranks,
    apply_recency,
    document_pool,
    fuse_documents,
    fused_scores,
    query_names,
    recency_prior,
    rrf,
)
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


def _article(key: str, title: str, text: str) -> Article:
    return Article(text=text, source_key=f"https://x.test/{key}", title=title, url=f"https://x.test/{key}",
                   source="outlet", published=datetime(2022, 6, 20, tzinfo=UTC), kind="url")


STORY = ("Floods in Helmand displaced thousands of families this week. The Helmand river burst its banks near "
         "Lashkargah after days of rain. Officials in Helmand said the floods destroyed crops and roads. Aid groups "
         "sent tents to families displaced by the floods.")
ROUNDUP = ("Five things to know today. Markets fell in Tokyo as investors weighed rate rises. A football club "
           "named a new coach for the coming season. Floods hit Helmand. A museum in Paris reopened its east wing "
           "after repairs. Fuel prices rose again across Europe, and a tech company recalled a charger.")


def test_whole_document_bm25_prefers_the_story_over_a_passing_mention(corpus_factory: Callable[..., Corpus]) -> None:
    corpus = corpus_factory(articles=[_article("story", "Helmand floods", STORY),
                                      _article("roundup", "Five things to know", ROUNDUP),
                                      _article("other", "Museum reopens", "A museum in Paris reopened its wing.")])
    docs = {r[1]: r[0] for r in corpus.state.conn.execute("SELECT doc_id, url FROM documents")}
    story, roundup, other = (docs[f"https://x.test/{k}"] for k in ("story", "roundup", "other"))
    scores = document_scores(corpus.state.conn, [roundup, story, other, "missing"], "Where did floods hit Helmand?")
    assert scores[story] > scores[roundup] > 0
    assert scores[other] == 0.0 and scores["missing"] == 0.0
    assert document_scores(corpus.state.conn, [], "floods") == {}


def test_document_ranks_are_a_third_list_in_the_fusion() -> None:
    scores = {"a:0": 1 / 61 + 1 / 61, "b:0": 1 / 62 + 1 / 62, "c:0": 1 / 63}
    weights = FusionWeights(documents=1.0)
    added = add_document_ranks(scores, ROWS, {"a": 0.0, "b": 3.0, "c": 1.0}, weights)
    assert added["a:0"] == scores["a:0"]  # no whole-document match: nothing added
    assert added["b:0"] == scores["b:0"] + 1 / 61 and added["c:0"] == scores["c:0"] + 1 / 62
    assert document_pool(added, ROWS, 2) == ["b", "a"]
    assert fuse_documents("floods", ["a:0", "b:0"], ["a:0", "b:0"], ROWS, weights, {"b": 2.0}) == ["b", "a"]
    assert fuse_documents("floods", ["a:0", "b:0"], ["a:0", "b:0"], ROWS, FusionWeights(), {"b": 2.0}) == ["a", "b"]


def test_words_asking_for_the_newest_reports_choose_the_strong_recency_prior() -> None:
    for query in ("What is the latest on Lashkargah?", "What happened in Helmand today?", "Is the road open now?",
                  "Breaking: who fired on the convoy?"):
        assert recency_prior(query, None) is NEWEST_FIRST, query
    # A recent period: newer reporting is preferred; no time word at all: relevance alone.
    for query in ("Which show was recently renewed?", "What did senators agree on this week?",
                  "How many families have fled so far?"):
        assert recency_prior(query, None) is NEWER_PREFERRED, query
    for query in ("Who paid for the record-breaking lunch?", "Who leads the police in Helmand?"):
        assert recency_prior(query, None) is None, query
    assert recency_prior("Who leads the police?", True) is NEWEST_FIRST
    assert recency_prior("What is the latest?", False) is None


def test_the_gentle_prior_breaks_near_ties_and_the_strong_one_puts_the_newest_first() -> None:
    day = 86400.0
    scores = {"older:0": 0.0330, "newer:0": 0.0325, "weak:0": 0.0200, "undated:0": 0.0330}
    dated: dict[str, float | None] = {"older:0": 0.0, "newer:0": 20 * day, "weak:0": 30 * day, "undated:0": None}
    gentle = dict(scores)
    apply_recency(gentle, dated, NEWER_PREFERRED)
    assert gentle["weak:0"] == scores["weak:0"]  # the newest candidate keeps its score
    assert gentle["newer:0"] > gentle["older:0"] > gentle["weak:0"]  # a close call goes to the newer story …
    assert gentle["undated:0"] < gentle["newer:0"]  # … and an undated one counts as 30 days older than the newest
    strong = dict(scores)
    apply_recency(strong, dated, NEWEST_FIRST)
    assert strong["weak:0"] > strong["newer:0"] > strong["older:0"]
    unchanged = dict(scores)
    apply_recency(unchanged, dict.fromkeys(scores), NEWEST_FIRST)  # nothing dated: nothing to compare with
    assert unchanged == scores
