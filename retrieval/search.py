"""Hybrid search: dense (Chroma) and lexical (BM25, :mod:`retrieval.lexical`) fused with reciprocal-rank fusion.

Both sides honour the same date window. Queries that ask for the newest reports ("latest", "today") get a
strong recency prior; queries about a recent period ("recently", "this week") a gentle one. By default at most two
chunks of one document make the top k, so one long article cannot crowd out the other outlets.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from retrieval import lexical as lexical_index
from retrieval.documents import SearchHit
from retrieval.embeddings import Embedder
from retrieval.errors import QueryError
from retrieval.state import ChunkRow, StateDB
from retrieval.store import VectorStore
from retrieval.terms import STOPWORDS, terms, words

RRF_K = 60
MAX_QUERY_CHARS = 2000
MAX_QUERY_TERMS = 32

# Words asking for the newest reports, and words naming a recent period: "recently", "this week" or "so far"
# ask about the present, but a story from early in the week answers them as well as one from today. A question
# with neither ranks by relevance alone (an archive question, or a rare word only an older story has). A hyphen
# before a word makes it part of another ("record-breaking" asks for nothing new).
_NEWEST = re.compile(
    r"(?<![\w-])(latest|newest|today|tonight|yesterday|this (morning|evening)|now|current(ly)?|"
    r"update[sd]?|last (24|48) hours|breaking)\b",
    re.IGNORECASE,
)
_RECENT = re.compile(r"(?<![\w-])(recent(ly)?|lately|this (week|month|year)|so far|past few (days|weeks))\b",
                     re.IGNORECASE)


@dataclass(frozen=True)
class RecencyPrior:
    """Scores multiplied by ``floor + (1 - floor) * 0.5 ** (age / half_life)``, the age counted from the newest
    candidate (an undated one counts as 30 days older)."""

    half_life_days: float
    floor: float


# The newest reports lead: a two-day-old chunk keeps three quarters of its score.
NEWEST_FIRST = RecencyPrior(half_life_days=2.0, floor=0.5)
# A recent period: newer reporting supersedes older (figures, a state of play), so of two close candidates the
# newer wins, while a clearly better older one still leads (a month older: 0.91 of its score). Chosen on the
# RealTime QA dev weeks, where every half-life of 30–120 days with a floor of 0.6–0.8 scored alike
# (docs/benchmarks.md, "Ranking on unseen weeks").
NEWER_PREFERRED = RecencyPrior(half_life_days=60.0, floor=0.7)


@dataclass(frozen=True)
class SearchOptions:
    k: int = 8
    since: datetime | None = None
    until: datetime | None = None
    max_per_doc: int | None = 2
    recency: bool | None = None  # None: from the query's words; True: newest first; False: no recency prior
    candidates: int = 60  # per side, before fusion


def wants_recency(query: str) -> bool:
    """Whether a query asks for the newest reports ("latest", "today", "now")."""
    return bool(_NEWEST.search(query))


def recency_prior(query: str, recency: bool | None) -> RecencyPrior | None:
    """The recency prior a search applies (``recency`` as in :class:`SearchOptions`): none unless the query
    asks for the newest reports or about a recent period."""
    if recency is False:
        return None
    if recency or wants_recency(query):
        return NEWEST_FIRST
    return NEWER_PREFERRED if _RECENT.search(query) else None


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


def rrf(rankings: Sequence[Sequence[str]], k: int = RRF_K, weights: Sequence[float] | None = None) -> dict[str, float]:
    """Reciprocal-rank fusion of several best-first id lists (optionally weighted per list)."""
    scores: dict[str, float] = {}
    for n, ranking in enumerate(rankings):
        weight = weights[n] if weights else 1.0
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return scores


@dataclass(frozen=True)
class FusionWeights:
    """How hybrid search combines its evidence (chosen on two RealTime QA weeks, see docs/benchmarks.md).

    A chunk's score is a reciprocal-rank fusion of its dense and BM25 ranks, multiplied by
    ``1 + title * (share of the query's terms in its document's title) + names * (share of the query's
    names and numbers in the chunk or title)``, plus ``documents / (rrf_k + r)`` where ``r`` is its
    document's rank by whole-document BM25 among the ``doc_pool`` best documents (a third list in the
    fusion: a story about the question repeats its words across the article, a roundup or a passing
    mention in one chunk only). The title and names boosts did not carry over to unseen weeks and are off.
    """

    rrf_k: int = RRF_K
    lexical: float = 1.0
    title: float = 0.0
    names: float = 0.0
    documents: float = 0.0
    doc_pool: int = 10


SHIPPED_WEIGHTS = FusionWeights(documents=1.0)
PLAIN_RRF = FusionWeights()
_NAME = re.compile(r"\b(?:[A-Z][\w'’.-]*|\w*\d[\w.,]*)")


def query_names(query: str) -> list[str]:
    """The index terms of the query's names and numbers: capitalised words after the first, and numbers."""
    found = _NAME.findall(query)
    first = words(query)[:1]
    names = [n for n in found if not (n.lower() in first and query.lstrip().startswith(n))]
    return list(dict.fromkeys(t for n in names for t in terms(n)))


def fused_scores(query: str, dense: Sequence[str], lexical: Sequence[str], rows: dict[str, ChunkRow],
                 weights: FusionWeights) -> dict[str, float]:
    """Each candidate chunk's hybrid score (chunks missing from ``rows`` are no longer live: left out)."""
    fused = rrf([dense, lexical], weights.rrf_k, (1.0, weights.lexical))
    wanted = set(query_terms(query)) if weights.title else set()
    names = set(query_names(query)) if weights.names else set()
    if not (wanted or names):
        return {c: s for c, s in fused.items() if c in rows}
    title_terms: dict[str, set[str]] = {}
    out: dict[str, float] = {}
    for cid, value in fused.items():
        row = rows.get(cid)
        if row is None:
            continue
        title = title_terms.get(row.doc_id)
        if title is None:
            title = title_terms[row.doc_id] = set(terms(row.title))
        boost = 1.0
        if wanted:
            boost += weights.title * len(wanted & title) / len(wanted)
        if names:
            boost += weights.names * len(names & (title | set(terms(row.text)))) / len(names)
        out[cid] = value * boost
    return out


def document_pool(scores: dict[str, float], rows: dict[str, ChunkRow], size: int) -> list[str]:
    """The ``size`` documents whose best chunk scores highest, best first."""
    best: dict[str, float] = {}
    for cid, value in scores.items():
        doc = rows[cid].doc_id
        best[doc] = max(best.get(doc, 0.0), value)
    return sorted(best, key=lambda d: (-best[d], d))[:size]


def add_document_ranks(scores: dict[str, float], rows: dict[str, ChunkRow], doc_scores: dict[str, float],
                       weights: FusionWeights) -> dict[str, float]:
    """Every chunk's score plus the reciprocal rank of its document by ``doc_scores`` (documents scoring 0
    add nothing)."""
    ranked = sorted((d for d, v in doc_scores.items() if v > 0), key=lambda d: (-doc_scores[d], d))
    rank = {d: r for r, d in enumerate(ranked, start=1)}
    return {cid: value + (weights.documents / (weights.rrf_k + rank[rows[cid].doc_id])
                          if rows[cid].doc_id in rank else 0.0)
            for cid, value in scores.items()}


def fuse_documents(query: str, dense: Sequence[str], lexical: Sequence[str], rows: dict[str, ChunkRow],
                   weights: FusionWeights = SHIPPED_WEIGHTS, doc_scores: dict[str, float] | None = None) -> list[str]:
    """Documents best first by their best chunk's hybrid score (``doc_scores``: whole-document BM25 of the
    document pool, used when ``weights.documents`` is set)."""
    scores = fused_scores(query, dense, lexical, rows, weights)
    if weights.documents and doc_scores:
        scores = add_document_ranks(scores, rows, doc_scores, weights)
    ranked = sorted(scores, key=lambda c: (-scores[c], c))
    return list(dict.fromkeys(rows[c].doc_id for c in ranked))


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
    """Search live chunks. ``mode`` is ``hybrid``, or for evaluation ``rrf`` (plain reciprocal-rank fusion),
    ``dense`` or ``lexical``."""
    query = check_query(query)
    since_ts = options.since.timestamp() if options.since else None
    until_ts = options.until.timestamp() if options.until else None
    if since_ts is not None and until_ts is not None and since_ts > until_ts:
        raise QueryError("--since is later than --until; nothing can match.")

    qvec = embedder.embed([query])[0] if query_vector is None else query_vector
    raw: list[tuple[str, float]] = []
    if mode in ("hybrid", "rrf", "dense"):
        raw = store.query(qvec, options.candidates, _date_where(since_ts, until_ts))
    lexical: list[tuple[str, float]] = []
    frequencies: dict[str, int] = {}
    if mode in ("hybrid", "rrf", "lexical"):
        lexical = state.lexical(query_terms(query), options.candidates, since_ts, until_ts, frequencies)

    # Chroma may still hold vectors of chunks no longer live (see retrieval.state): a chunk is live when the
    # state has its row, so one read gives both the live dense hits and the passages (each query counts on
    # PostgreSQL, where it is a round trip).
    lexical_ids = [i for i, _ in lexical]
    rows = state.chunk_rows(list(dict.fromkeys([i for i, _ in raw] + lexical_ids)))
    dense = [(i, s) for i, s in raw if i in rows]
    dense_ids = [i for i, _ in dense]
    weights = SHIPPED_WEIGHTS if mode == "hybrid" else PLAIN_RRF
    fused = fused_scores(query, dense_ids, lexical_ids, rows, weights)
    if weights.documents and fused:
        pool = document_pool(fused, rows, weights.doc_pool)
        doc_scores = lexical_index.document_scores(state.conn, pool, query, frequencies)
        fused = add_document_ranks(fused, rows, doc_scores, weights)

    prior = recency_prior(query, options.recency)
    if fused and prior is not None:
        # An undated chunk's date is when it was ingested, which says nothing about how new its news is.
        dated = {i: _ts(rows[i].published) if rows[i].date_source == "published" else None for i in fused}
        apply_recency(fused, dated, prior)

    picked: list[str] = []
    per_doc: dict[str, int] = {}
    for cid in sorted(fused, key=lambda i: (-fused[i], i)):
        doc = rows[cid].doc_id
        if options.max_per_doc is not None and per_doc.get(doc, 0) >= options.max_per_doc:
            continue
        per_doc[doc] = per_doc.get(doc, 0) + 1
        picked.append(cid)
        if len(picked) >= options.k:
            break

    # Only the returned hits need their similarity: a lexical-only candidate's vector is read from the store
    # for those few, not for every candidate of the fusion (each read is a Chroma round of a few ms).
    similarity = dict(dense)
    for cid, vec in store.vectors([i for i in picked if i not in similarity]).items():
        similarity[cid] = float(np.dot(vec, qvec))
    dense_rank = {i: r for r, (i, _) in enumerate(dense, start=1)}
    lex_rank = {i: r for r, (i, _) in enumerate(lexical, start=1)}
    hits: list[SearchHit] = []
    for rank, cid in enumerate(picked, start=1):
        row = rows[cid]
        hits.append(SearchHit(
            rank=rank, score=fused[cid], chunk_id=cid, doc_id=row.doc_id, title=row.title, source=row.source,
            url=row.url, published=row.published, text=row.text, chunk_index=row.idx, char_start=row.char_start,
            char_end=row.char_end, dense_rank=dense_rank.get(cid), lexical_rank=lex_rank.get(cid),
            similarity=similarity.get(cid), date_source=row.date_source,
        ))
    return hits


def apply_recency(scores: dict[str, float], dated: dict[str, float | None], prior: RecencyPrior) -> None:
    """Multiply each candidate's score by ``prior`` for its age (``dated``: its timestamp, None when undated)."""
    newest = max((t for t in dated.values() if t is not None), default=None)
    if newest is None:
        return
    half_life = prior.half_life_days * 86400
    for cid, ts in dated.items():
        age = max(0.0, newest - ts) if ts is not None else 30 * 86400
        scores[cid] *= prior.floor + (1.0 - prior.floor) * math.pow(0.5, age / half_life)


def _ts(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None
