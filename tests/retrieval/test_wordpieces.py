"""MiniLM word-piece counts: counted word by word from a cache, they equal the tokenizer's count of the whole text;
embedding batches stay within their word-piece budget."""

from __future__ import annotations

import numpy as np

from retrieval.embeddings import MAX_BATCH_PIECES, MiniLMEmbedding
from retrieval.wordpieces import WordPieceCounter

TEXTS = [
    "Officials in Lashkargah said 1,200 families were displaced by the floods.",
    "Naïve café owners in Zürich reopened—despite the rain—on Monday.",
    "東京タワー is tall; 北京 too.",
    "Ukraine's President Volodymyr Zelenskyy (R) met U.S. officials at 10:30 a.m.",
    "A run-together link https://example.com/" + "x" * 120 + " stays one unknown word.",
    "Words\u2028across a line separator\u3000and\u00a0spaces.",
    "Control characters\x1cjoin\x85words that Python would split.",
    "د افغانستان اسلامي امارت وايي چې",
    "",
]


def test_counts_from_the_word_cache_equal_the_tokenizers_count_of_the_whole_text() -> None:
    counter = WordPieceCounter()
    exact = [len(counter._tok.encode(t, add_special_tokens=False)) for t in TEXTS]
    assert counter.pieces(TEXTS) == exact
    assert counter.pieces(list(reversed(TEXTS))) == list(reversed(exact))  # the words are known now
    assert counter.pieces([" ".join(TEXTS)]) == [sum(exact)]


def test_embedding_batches_stay_within_their_word_piece_budget(embedder: MiniLMEmbedding) -> None:
    lengths = np.array([5] * 40 + [100] * 12 + [256] * 9)
    order = np.argsort(lengths, kind="stable")
    batches = embedder._batches(lengths, order)
    assert np.array_equal(np.concatenate(batches), order)
    assert all(len(b) <= 32 and (len(b) == 1 or len(b) * lengths[b].max() <= MAX_BATCH_PIECES) for b in batches)
    assert [len(b) for b in batches][:2] == [32, 8]  # short texts (queries) still go 32 at a time
