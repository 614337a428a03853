"""Index terms: the words lexical search matches on, the same for chunks and for queries.

A term is a run of letters or digits, lower-cased, stripped of diacritics and Porter-stemmed (so
"policing" matches "police"), the way SQLite FTS5's ``porter unicode61 remove_diacritics 2`` tokenizer
made them. Stopwords and single letters are left out: they would only add long posting lists.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import Stemmer

STOPWORDS = frozenset(
    "a an and are as at be been but by did do does for from had has have he her his how i if in into is "
    "it its me my no not of on or our she so than that the their them then there these they this to was "
    "we were what when where which who whom why will with you your about after before said says say tell "
    "show give any many much"
    .split()
)
MAX_TERM_CHARS = 64  # longer "words" are run-together junk (URLs, base64); never worth indexing

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_STEMMER = Stemmer.Stemmer("porter")
_CACHE_LIMIT = 500_000
_cache: dict[str, str] = {}  # word -> term ("" for words that are not indexed)


def _fold(word: str) -> str:
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _term(word: str) -> str:
    if word in STOPWORDS or len(word) > MAX_TERM_CHARS or (len(word) == 1 and not word.isdigit()):
        return ""
    return str(_STEMMER.stemWord(_fold(word)))


def words(text: str) -> list[str]:
    """The text's words, lower-cased, in order (stopwords included)."""
    return _TOKEN.findall(text.lower())


def terms(text: str) -> list[str]:
    """The index terms of ``text`` in order, repeats kept (their count is the term frequency)."""
    out: list[str] = []
    cache = _cache
    for word in words(text):
        term = cache.get(word)
        if term is None:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            term = cache[word] = _term(word)
        if term:
            out.append(term)
    return out


def unique_terms(texts: Iterable[str]) -> list[str]:
    """The distinct terms of several texts, in first-seen order."""
    return list(dict.fromkeys(t for text in texts for t in terms(text)))
