"""Hybrid search: dense (Chroma) and lexical (BM25, :mod:`retrieval.lexical`) fused with reciprocal-rank fusion.

Both sides honour the same date window. Queries that ask for what is new ("latest", "today") get a
recency weight. By default at most two chunks of one document make the top k, so one long article
cannot crowd out the other outlets.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from retrieval.documents import SearchHit
from retrieval.embeddings import Embedder
from retrieval.errors import QueryError
from retrieval.state import StateDB
from retrieval.store import VectorStore
from retrieval.terms import STOPWORDS, terms, words

RRF_K = 60
MAX_QUERY_CHARS = 2000
MAX_QUERY_TERMS = 32

_RECENCY = re.compile(
    r"\b(latest|newest|recent(ly)?|today|tonight|yesterday|this (morning|week|evening)|now|current(ly)?|"
    r"so far|update[sd]?|last (24|48) hours|breaking)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SearchOptions:
    k: int = 8
    since: datetime | None = None
    until: datetime | None = None
    max_per_doc: int | None = 2
    recency: bool | None = None  # None: detect from the query
    candidates: int = 60  # per side, before fusion
    recency_half_life_days: float = 2.0


def wants_recency(query: str) -> bool:
    """Whether a query asks for what is new."""
    return bool(_RECENCY.search(query))


def query_words(query: str) -> list[str]:
    """The query's content words, lower-cased, de-duplicated (all its words when it has no content words)."""
    found = words(query)
    content = [w for w in found if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
    return list(dict.fromkeys(content or found))[:MAX_QUERY_TERMS]


def query_terms(query: str) -> list[str]:
    """The index terms lexical search looks up for a query (stemmed content words, at most 32)."""
    return list(dict.fromkeys(terms(query)))[:MAX_QUERY_TERMS]


def _date_where(since_ts: float | None, until_ts: float | None) -> dict[str, object] | None:
    clauses: list[dict[str, object]] = []
    if since_ts is not None:
        clauses.append({"date_ts": {"$gte": since_ts}})
    if until_ts is not None:
        clauses.append({"date_ts": {"$lte": until_ts}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def rrf(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> dict[str, float]:
    """Reciprocal-rank fusion of several best-first id lists."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return scores


def check_query(query: str) -> str:
    """Validate a query; return it stripped or raise QueryError with a clear message."""
    stripped = query.strip()
    if not stripped:
        raise QueryError("The question is empty; ask something about the ingested coverage.")
    if len(stripped) > MAX_QUERY_CHARS:
        raise QueryError(
            f"The question is {len(stripped):,} characters long; keep it under {MAX_QUERY_CHARS:,} characters."
        )
    if not words(stripped):
        raise QueryError("The question has no words in it (only punctuation or symbols).")
    return stripped


def hybrid_search(
    query: str,
    state: StateDB,
    store: VectorStore,
    embedder: Embedder,
    options: SearchOptions,
    mode: str = "hybrid",
    query_vector: np.ndarray | None = None,
) -> list[SearchHit]:
    """Search live chunks. ``mode`` is ``hybrid``, ``dense`` or ``lexical`` (the latter two for evaluation)."""
    query = check_query(query)
    since_ts = options.since.timestamp() if options.since else None
    until_ts = options.until.timestamp() if options.until else None
    if since_ts is not None and until_ts is not None and since_ts > until_ts:
        raise QueryError("--since is later than --until; nothing can match.")

    qvec = embedder.embed([query])[0] if query_vector is None else query_vector
    dense: list[tuple[str, float]] = []
    if mode in ("hybrid", "dense"):
        raw = store.query(qvec, options.candidates, _date_where(since_ts, until_ts))
        live = state.live_subset([i for i, _ in raw])
        dense = [(i, s) for i, s in raw if i in live]
    lexical: list[tuple[str, float]] = []
    if mode in ("hybrid", "lexical"):
        lexical = state.lexical(query_terms(query), options.candidates, since_ts, until_ts)

    fused = rrf([[i for i, _ in dense], [i for i, _ in lexical]])
    rows = state.chunk_rows(list(fused))
    fused = {i: s for i, s in fused.items() if i in rows}

    similarity = dict(dense)
    missing = [i for i in fused if i not in similarity]
    for cid, vec in store.vectors(missing).items():
        similarity[cid] = float(np.dot(vec, qvec))

    recency = wants_recency(query) if options.recency is None else options.recency
    if recency and fused:
        dated = {i: _ts(rows[i].published) for i in fused}
        newest = max((t for t in dated.values() if t is not None), default=None)
        if newest is not None:
            half_life = options.recency_half_life_days * 86400
            for cid, ts in dated.items():
                age = max(0.0, newest - ts) if ts is not None else 30 * 86400
                fused[cid] *= 0.5 + 0.5 * math.pow(0.5, age / half_life)

    dense_rank = {i: r for r, (i, _) in enumerate(dense, start=1)}
    lex_rank = {i: r for r, (i, _) in enumerate(lexical, start=1)}
    per_doc: dict[str, int] = {}
    hits: list[SearchHit] = []
    for cid in sorted(fused, key=lambda i: (-fused[i], i)):
        row = rows[cid]
        if options.max_per_doc is not None and per_doc.get(row.doc_id, 0) >= options.max_per_doc:
            continue
        per_doc[row.doc_id] = per_doc.get(row.doc_id, 0) + 1
        hits.append(
            SearchHit(
                rank=len(hits) + 1, score=fused[cid], chunk_id=cid, doc_id=row.doc_id, title=row.title,
                source=row.source, url=row.url, published=row.published, text=row.text, chunk_index=row.idx,
                char_start=row.char_start, char_end=row.char_end, dense_rank=dense_rank.get(cid),
                lexical_rank=lex_rank.get(cid), similarity=similarity.get(cid),
            )
        )
        if len(hits) >= options.k:
            break
    return hits


def _ts(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None
