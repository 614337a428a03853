"""Index terms: the words lexical search matches on, the same for chunks and for queries.

A term is a run of word characters (letters, digits, ``_``), lower-cased, stripped of diacritics and Porter-stemmed (so
"policing" matches "police"), the way SQLite FTS5's ``porter unicode61 remove_diacritics 2`` tokenizer
made them. Stopwords and single letters are left out: they would only add long posting lists.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np
import Stemmer

STOPWORDS = frozenset(
    "a an and are as at be been but by did do does for from had has have he her his how i if in into is "
    "it its me my no not of on or our she so than that the their them then there these they this to was "
    "we were what when where which who whom why will with you your about after before said says say tell "
    "show give any many much"
    .split()
)
MAX_TERM_CHARS = 64  # longer "words" are run-together junk (URLs, base64); never worth indexing

_TOKEN = re.compile(r"\w+", re.UNICODE)
_STEMMER = Stemmer.Stemmer("porter")
# Distinct words remembered; past it the cache starts again. ~200 B a word (the word, its stem, both dict
# entries): 1M words held ~200 MB, a third of the ingest memory budget; 200k (~40 MB) covers a news vocabulary's
# common words, and a rare word past it costs one stemming again.
_CACHE_LIMIT = 200_000
# Words get small integer ids so a batch of chunks is counted with numpy rather than word by word.
_word_ids: dict[str, int] = {}  # word -> term id, -1 for words that are not indexed
_term_ids: dict[str, int] = {}  # term -> term id (several words share a stem)
_names: list[str] = []  # term id -> term


def _fold(word: str) -> str:
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _register(new_words: Iterable[str]) -> None:
    for word in new_words:
        if word in STOPWORDS or len(word) > MAX_TERM_CHARS or (len(word) == 1 and not word.isdigit()):
            _word_ids[word] = -1
            continue
        term = str(_STEMMER.stemWord(_fold(word)))
        tid = _term_ids.get(term)
        if tid is None:
            tid = _term_ids[term] = len(_names)
            _names.append(term)
        _word_ids[word] = tid


def words(text: str) -> list[str]:
    """The text's words, lower-cased, in order (stopwords included)."""
    return _TOKEN.findall(text.lower())


def term_ids(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every text's index terms as ids, flattened in order, and the index of the text each comes from.

    The ids are valid until the next call (see :func:`term_name`).
    """
    per_text = [words(t) for t in texts]
    flat = list(itertools.chain.from_iterable(per_text))
    if len(_word_ids) > _CACHE_LIMIT:
        _word_ids.clear()
        _term_ids.clear()
        _names.clear()
    _register(set(flat).difference(_word_ids))
    ids = np.fromiter(map(_word_ids.__getitem__, flat), dtype=np.int64, count=len(flat))
    owner = np.repeat(np.arange(len(texts)), [len(w) for w in per_text])
    keep = ids >= 0
    return ids[keep], owner[keep]


def term_name(term_id: int) -> str:
    """The term a :func:`term_ids` id stands for."""
    return _names[term_id]


def terms(text: str) -> list[str]:
    """The index terms of ``text`` in order, repeats kept (their count is the term frequency)."""
    return [_names[i] for i in term_ids([text])[0]]
