"""The lexical index: BM25 over posting segments kept in the state database.

It replaces SQLite FTS5, whose ``bm25()`` scores every row that holds any query word and counts each
word's documents by walking its whole posting list: one common word cost tens of milliseconds at
100k chunks. Here each committed batch of chunks writes one *segment*: for every term, the ids of the
chunks holding it and their BM25 term weight (saturated term frequency, length-normalised, computed
once at ingest), as two packed arrays. A query reads its few terms' arrays from every segment with
index seeks and scores them with numpy, a few nanoseconds per posting instead of FTS5's row-by-row
virtual-table walk. Segments of one size class are merged ``FANOUT`` at a time (as in an LSM tree), so
a store holds a few dozen at most.

Consistency with the crash-safe commit: a batch's segment is written in the same SQLite transaction
that makes its chunks live (:meth:`retrieval.state.StateDB.commit_batch`), and ``lex_docs`` rows
reference ``chunks`` with ``ON DELETE CASCADE``, so whatever code deletes a chunk removes it from the
index in that same transaction (:func:`drop_chunks` says so explicitly where documents are removed).
A query returns only ids that still have their ``lex_docs`` row: a chunk is found lexically exactly
when it is live. Postings of removed chunks stay in their segment (ignored) until the next merge of
that segment drops them. A chunk's date (``lex_docs.date_ts``, for date windows) changes only through
:func:`redate`, which bumps ``lex_redated.epoch`` so every process's cached dates are read again.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.statedb import Connection, engine
from retrieval.terms import term_ids, term_name, terms

K1 = 1.2
B = 0.75
DOC_K1, DOC_B = 1.2, 0.75  # whole-document BM25 (:func:`document_scores`)
DOC_CHARS = 6000  # a document is scored on its first 6,000 characters: the lede and body, at a bounded cost
TITLE_WEIGHT = 0.4  # a title word counts 0.4 of a body word: the title repeats on every chunk of a story
IMPACT_SCALE = 65535 / (K1 + 1)  # weights are stored as uint16; K1 + 1 is their upper bound
FANOUT = 8  # segments of one level merged together
MAX_MERGED_DOCS = 300_000  # no merge builds a larger segment: bounds one merge's time and memory
MAX_POSTINGS = 20_000  # a query scores at most this many postings of one term (its best-weighted ones)
_WRITE_ROWS = 2000
_MERGE_ROWS = 4000  # posting rows read (and merged together) at a time: bounds a merge's memory

SCHEMA = """
CREATE TABLE IF NOT EXISTS lex_docs (
    lex_id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so a stale posting never names a new chunk
    chunk_id TEXT NOT NULL UNIQUE REFERENCES chunks(chunk_id) ON DELETE CASCADE,
    date_ts REAL NOT NULL,
    length REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS lex_stats (
    id INTEGER PRIMARY KEY CHECK (id = 0), docs INTEGER NOT NULL, length REAL NOT NULL
);
INSERT OR IGNORE INTO lex_stats(id, docs, length) VALUES (0, 0, 0);
-- Bumped by every redate: a process whose cached dates (DateIndex) predate it loads them again.
CREATE TABLE IF NOT EXISTS lex_redated (id INTEGER PRIMARY KEY CHECK (id = 0), epoch INTEGER NOT NULL);
INSERT OR IGNORE INTO lex_redated(id, epoch) VALUES (0, 0);
CREATE TABLE IF NOT EXISTS lex_segments (
    seg INTEGER PRIMARY KEY,
    level INTEGER NOT NULL,
    docs INTEGER NOT NULL,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS lex_postings (
    seg INTEGER NOT NULL,
    term TEXT NOT NULL,
    ids BLOB NOT NULL,      -- uint32 lex ids, in the order of their weights
    weights BLOB NOT NULL,  -- uint16 BM25 term weights, IMPACT_SCALE per unit, highest first
    PRIMARY KEY (seg, term)
) WITHOUT ROWID;
"""


# lex_stats follows lex_docs, whichever statement adds or deletes (a cascade from ``chunks`` included).
TRIGGERS = {
    "sqlite": """
CREATE TRIGGER IF NOT EXISTS lex_docs_added AFTER INSERT ON lex_docs BEGIN
    UPDATE lex_stats SET docs = docs + 1, length = length + NEW.length WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS lex_docs_removed AFTER DELETE ON lex_docs BEGIN
    UPDATE lex_stats SET docs = docs - 1, length = length - OLD.length WHERE id = 0;
END;
""",
    "postgresql": """
CREATE OR REPLACE FUNCTION lex_docs_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE lex_stats SET docs = docs + 1, length = length + NEW.length WHERE id = 0;
    ELSE
        UPDATE lex_stats SET docs = docs - 1, length = length - OLD.length WHERE id = 0;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER lex_docs_added AFTER INSERT ON lex_docs FOR EACH ROW EXECUTE FUNCTION lex_docs_count();
CREATE TRIGGER lex_docs_removed AFTER DELETE ON lex_docs FOR EACH ROW EXECUTE FUNCTION lex_docs_count();
""",
}


@dataclass(frozen=True)
class LexChunk:
    """What the index needs of a chunk going live."""

    chunk_id: str
    date_ts: float
    title: str
    body: str


@dataclass(frozen=True)
class Segment:
    """A batch of chunks tokenized and counted, ready to be written as one segment (:func:`add_segment`).

    Everything here is independent of the store, so it is computed before the write transaction (by the ingest
    pipeline, while Chroma writes the batch's vectors); only the lex ids and the BM25 length normalisation,
    which depend on the store at commit time, are left to :func:`add_segment`.
    """

    chunks: Sequence[LexChunk]
    lengths: np.ndarray  # indexed length of each chunk (title words count TITLE_WEIGHT)
    names: list[str]  # the segment's terms in key order
    term: np.ndarray  # one entry per (term, chunk): the term's place in ``names``
    chunk: np.ndarray  # … the chunk's place in ``chunks``
    tf: np.ndarray  # … the term's (title-weighted) frequency in the chunk


def segment(chunks: Sequence[LexChunk]) -> Segment:
    """Tokenize and count ``chunks`` (at least one) for :func:`add_segment` (reads no database)."""
    n = len(chunks)
    titles = list(dict.fromkeys(c.title for c in chunks))
    ids, owner = term_ids([c.body for c in chunks] + titles)
    in_body = owner < n
    title_terms, title_of_term = ids[~in_body], owner[~in_body] - n
    chunk_title = np.fromiter(map({t: i for i, t in enumerate(titles)}.__getitem__, (c.title for c in chunks)),
                              dtype=np.int64, count=n)
    # Each chunk gets its title's terms: gather them from the title entries (sorted by title, stable).
    per_title = np.bincount(title_of_term, minlength=len(titles))
    title_start = np.concatenate(([0], np.cumsum(per_title)[:-1]))
    counts = per_title[chunk_title]
    chunk_of = np.repeat(np.arange(n), counts)
    within = np.arange(len(chunk_of)) - np.repeat(np.cumsum(counts) - counts, counts)
    gathered = title_terms[np.argsort(title_of_term, kind="stable")][np.repeat(title_start[chunk_title], counts)
                                                                     + within]
    term = np.concatenate((ids[in_body], gathered))
    chunk = np.concatenate((owner[in_body], chunk_of))
    weight = np.concatenate((np.ones(int(in_body.sum())), np.full(len(gathered), TITLE_WEIGHT)))
    lengths = np.bincount(chunk, minlength=n).astype(np.float64)
    # One entry per (term, chunk); terms numbered in the order of their names, the order rows are written in.
    keys, which = np.unique(term * n + chunk, return_inverse=True)
    tf = np.bincount(which, weights=weight)
    term_of, chunk_of_key = keys // n, keys % n
    distinct, term_of = np.unique(term_of, return_inverse=True)
    names = [term_name(int(t)) for t in distinct]
    by_name = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(names), dtype=np.int64)
    rank[by_name] = np.arange(len(names))
    return Segment(chunks, lengths, [names[i] for i in by_name], rank[term_of], chunk_of_key, tf)


def add_chunks(conn: Connection, chunks: Sequence[LexChunk]) -> None:
    """Index chunks as one new segment. Call inside the transaction that inserts them into ``chunks``."""
    if chunks:
        add_segment(conn, segment(chunks))


def add_segment(conn: Connection, prepared: Segment) -> None:
    """Write a :func:`segment` as one new segment. Call inside the transaction that inserts its chunks."""
    chunks, lengths = prepared.chunks, prepared.lengths
    n = len(chunks)
    if not n:
        return
    first = _allocate_ids(conn, n)
    conn.executemany("INSERT INTO lex_docs(lex_id, chunk_id, date_ts, length) VALUES (?, ?, ?, ?)",
                     [(first + i, c.chunk_id, c.date_ts, length)
                      for i, (c, length) in enumerate(zip(chunks, lengths.tolist(), strict=True))])
    n_docs, total = conn.execute("SELECT docs, length FROM lex_stats WHERE id = 0").fetchone()
    avg = total / n_docs if n_docs > 0 and total > 0 else 1.0

    tf = prepared.tf
    norm = K1 * (1.0 - B + B * lengths[prepared.chunk] / avg)
    weights = np.clip(np.rint(tf * (K1 + 1) / (tf + norm) * IMPACT_SCALE), 1, 65535).astype(np.uint16)
    lex_ids = (prepared.chunk + first).astype(np.uint32)
    by_weight = np.lexsort((lex_ids, -weights.astype(np.int32), prepared.term))  # each term's best postings first
    term_of, weights, lex_ids = prepared.term[by_weight], weights[by_weight], lex_ids[by_weight]
    bounds = np.concatenate(([0], np.flatnonzero(np.diff(term_of)) + 1, [len(term_of)])).tolist()
    seg = _new_segment(conn, 0, n, first, first + n - 1)
    _write(conn, _rows(seg, prepared.names, bounds, lex_ids, weights))


def _rows(seg: int, names: Sequence[str], bounds: Sequence[int], ids: np.ndarray,
          weights: np.ndarray) -> Iterator[tuple[int, str, bytes, bytes]]:
    """Posting rows of consecutive terms ``names``, term ``i`` holding ``ids``/``weights[bounds[i]:bounds[i + 1]]``
    (a term left without postings gets no row)."""
    ids_bytes, weights_bytes = ids.tobytes(), weights.tobytes()  # slicing bytes beats a tobytes() per term
    for name, lo, hi in zip(names, bounds, bounds[1:], strict=False):
        if hi > lo:
            yield seg, name, ids_bytes[4 * lo : 4 * hi], weights_bytes[2 * lo : 2 * hi]


def _allocate_ids(conn: Connection, n: int) -> int:
    """The first of ``n`` new contiguous lex ids, past every id ever used (a segment covers an id range).

    Called inside the write transaction, so no other writer allocates at the same time: on SQLite the ids
    follow ``sqlite_sequence`` (the explicit inserts then advance it); on PostgreSQL the block is taken from
    the identity sequence in one step, as ``nextval`` … ``setval``. A rolled-back block is never reused.
    """
    if engine(conn) == "postgresql":
        last = conn.execute("SELECT setval(seq, nextval(seq) + ? - 1) FROM"
                            " (SELECT pg_get_serial_sequence('lex_docs', 'lex_id')::regclass AS seq) s",
                            (n,)).fetchone()[0]
        return int(last) - n + 1
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'lex_docs'").fetchone()
    return (row[0] if row else 0) + 1


def _new_segment(conn: Connection, level: int, docs: int, first_id: int, last_id: int) -> int:
    row = conn.execute("INSERT INTO lex_segments(level, docs, first_id, last_id) VALUES (?, ?, ?, ?) RETURNING seg",
                       (level, docs, first_id, last_id)).fetchone()
    return int(row[0])


def _write(conn: Connection, rows: Iterator[tuple[int, str, bytes, bytes]]) -> None:
    insert = "INSERT INTO lex_postings(seg, term, ids, weights) VALUES (?, ?, ?, ?)"
    while part := list(itertools.islice(rows, _WRITE_ROWS)):
        conn.executemany(insert, part)


def drop_chunks(conn: Connection, chunk_ids: Sequence[str]) -> None:
    """Take chunks out of the index (inside the transaction that deletes them from ``chunks``)."""
    for start in range(0, len(chunk_ids), 500):
        part = list(chunk_ids[start : start + 500])
        conn.execute(f"DELETE FROM lex_docs WHERE chunk_id IN ({','.join('?' * len(part))})", part)


def redate(conn: Connection, chunk_dates: Sequence[tuple[str, float]]) -> None:
    """Give indexed chunks new dates, ``(chunk_id, date_ts)`` each (inside the caller's transaction)."""
    if not chunk_dates:
        return
    conn.executemany("UPDATE lex_docs SET date_ts = ? WHERE chunk_id = ?", [(ts, cid) for cid, ts in chunk_dates])
    conn.execute("UPDATE lex_redated SET epoch = epoch + 1 WHERE id = 0")


class DateIndex:
    """Each lex id's date, cached in memory for date-windowed queries.

    Ids are never reused; a date changes only by :func:`redate`, whose epoch makes the cache start over.
    """

    def __init__(self) -> None:
        self.dates = np.zeros(0, dtype=np.float64)
        self.known = 0  # ids up to this one are loaded
        self.epoch = 0

    def within(self, conn: Connection, ids: np.ndarray, since_ts: float | None,
               until_ts: float | None) -> np.ndarray:
        """A mask over ``ids`` (lex ids): true where the chunk's date is in the window."""
        epoch = conn.execute("SELECT epoch FROM lex_redated WHERE id = 0").fetchone()[0]
        if epoch != self.epoch:
            self.dates, self.known, self.epoch = np.zeros(0, dtype=np.float64), 0, epoch
        size = int(ids.max()) + 1 if len(ids) else 0
        if size > self.known + 1:
            rows = conn.execute("SELECT lex_id, date_ts FROM lex_docs WHERE lex_id > ? AND lex_id < ?",
                                (self.known, size)).fetchall()
            grown = np.full(size, np.nan)
            grown[: len(self.dates)] = self.dates
            if rows:
                got = np.asarray(rows, dtype=np.float64)
                grown[got[:, 0].astype(np.int64)] = got[:, 1]
            self.dates, self.known = grown, size - 1
        dates = self.dates[ids]
        mask = ~np.isnan(dates)
        if since_ts is not None:
            mask &= dates >= since_ts
        if until_ts is not None:
            mask &= dates <= until_ts
        return mask


def search(conn: Connection, query_terms: Sequence[str], limit: int, since_ts: float | None = None,
           until_ts: float | None = None, dates: DateIndex | None = None,
           max_postings: int = MAX_POSTINGS, frequencies: dict[str, int] | None = None) -> list[tuple[str, float]]:
    """BM25-ranked ``(chunk_id, score)`` of live chunks holding any of ``query_terms``, best first.

    ``frequencies``: filled with each term's posting count, which :func:`document_scores` needs too (on
    PostgreSQL, counting them again would read every posting blob a second time).

    A term found in more than ``max_postings`` chunks adds its weight only to the ``max_postings`` chunks
    where it weighs most, so the cost of a query stops growing with how common its words are. Those
    words have the lowest idf: the rest of their postings would add little to chunks ranked by rarer words.
    """
    wanted = list(dict.fromkeys(t for t in query_terms if t))
    if not wanted or limit <= 0:
        return []
    n_docs = conn.execute("SELECT docs FROM lex_stats WHERE id = 0").fetchone()[0]
    if n_docs <= 0:
        return []
    parts: dict[str, list[tuple[bytes, bytes]]] = {}
    totals: dict[str, int] = {}
    for term, total, ids, weights in conn.execute(_POSTINGS.format(marks=",".join("?" * len(wanted))),
                                                  [max_postings] * 4 + wanted):
        parts.setdefault(term, []).append((ids, weights))
        totals[term] = int(total)
    if frequencies is not None:
        frequencies.update(dict.fromkeys(wanted, 0))
        frequencies.update(totals)
    if not parts:
        return []
    all_ids, all_weights = [], []
    for term, blobs in parts.items():
        df = min(totals[term], n_docs)  # postings of removed chunks linger until a merge: never exceed N
        idf = math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
        for ids_blob, weights_blob in blobs:
            all_ids.append(np.frombuffer(ids_blob, dtype=np.uint32))
            weights = np.frombuffer(weights_blob, dtype=np.uint16)
            all_weights.append(weights.astype(np.float32) * np.float32(idf / IMPACT_SCALE))
    ids, scores = _sum_by_id(np.concatenate(all_ids), np.concatenate(all_weights))
    if since_ts is not None or until_ts is not None:
        keep = (dates or DateIndex()).within(conn, ids, since_ts, until_ts)
        ids, scores = ids[keep], scores[keep]
    return _best_live(conn, ids, scores, limit)


_SORT_FACTOR = 16  # below one posting in 16 ids of the store, sorting the postings beats a store-long array


def _sum_by_id(ids: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ids that score above 0, ascending, and each one's summed weight.

    Either way the weights of an id are added in the same order, so the sums are the same to the last bit.
    The cost follows the postings, not the store: a store-long array (``np.bincount`` by id) is only made
    when the postings are dense enough for it to be the cheaper way (no sort).
    """
    if not len(ids):
        return ids.astype(np.int64), np.zeros(0)
    top = int(ids.max()) + 1
    if len(ids) * _SORT_FACTOR < top:
        distinct, slot = np.unique(ids, return_inverse=True)
        sums = np.bincount(slot, weights=weights)
    else:
        sums = np.bincount(ids, weights=weights, minlength=top)
        distinct = np.flatnonzero(sums)
        sums = sums[distinct]
    scored = sums > 0
    return distinct[scored].astype(np.int64), sums[scored]


# A query's postings, cut in the database: each segment lists a term's best-weighted chunks first, and a
# common term is scored on its ``max_postings`` best postings, shared out in proportion to the segments' sizes
# (ceil(n * max / total) of a segment's n). Only those bytes leave the database: on PostgreSQL they cross a
# socket, and a common word's postings at 100k chunks are hundreds of kilobytes. ``total``: the term's posting
# count in every segment (its document frequency).
_POSTINGS = """
SELECT term, total,
       substr(ids, 1, CAST(4 * CASE WHEN total <= ? THEN n ELSE (n * ? + total - 1) / total END AS INTEGER)),
       substr(weights, 1, CAST(2 * CASE WHEN total <= ? THEN n ELSE (n * ? + total - 1) / total END AS INTEGER))
FROM (SELECT term, ids, weights, length(weights) / 2 AS n,
             sum(length(weights) / 2) OVER (PARTITION BY term) AS total
      FROM lex_postings WHERE seg IN (SELECT seg FROM lex_segments) AND term IN ({marks})) AS found
"""


def document_scores(conn: Connection, doc_ids: Sequence[str], query: str,
                    frequencies: Mapping[str, int] | None = None) -> dict[str, float]:
    """Whole-document BM25 of ``doc_ids`` (full text plus title) for the query's terms; 0 for no match.

    ``frequencies``: terms' posting counts already known (from :func:`search`, for the same query); only the
    others are counted here.

    Chunk BM25 sees one passage; a story about the question usually repeats its words across the whole
    article, while a roundup or a passing mention matches in one chunk only. Only the few candidate
    documents are scored, from their stored text, so the cost does not grow with the store. Term
    rarity comes from the chunk index (a term in few chunks is in few documents too). Each document is
    read up to ``DOC_CHARS`` (a news story states its subject early; the cap bounds the tokenizing
    cost), and its length is compared with the store's mean document length as the chunk index counts
    it (overlaps and per-chunk titles included: at most the capped length, so long documents are
    penalised a little less than strict BM25 would).
    """
    if not doc_ids:
        return {}
    marks = ",".join("?" * len(doc_ids))
    found = {r[0]: (r[1] or "", r[2] or "") for r in conn.execute(
        f"SELECT doc_id, substr(text, 1, {DOC_CHARS}), title FROM documents WHERE doc_id IN ({marks})",
        list(doc_ids))}
    docs = [d for d in doc_ids if d in found]
    n_chunks, total = conn.execute("SELECT docs, length FROM lex_stats WHERE id = 0").fetchone()
    avg = _mean_document_length(conn, n_chunks, total)
    if not docs or n_chunks <= 0 or avg <= 0:
        return dict.fromkeys(doc_ids, 0.0)
    counted = _document_terms([found[d] for d in docs])
    wanted = list(dict.fromkeys(terms(query)))
    known = frequencies or {}
    df = {n: known[n] for n in wanted if n in known}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        df.update(conn.execute(
            "SELECT term, sum(length(weights)) / 2 FROM lex_postings WHERE seg IN (SELECT seg FROM lex_segments)"
            f" AND term IN ({','.join('?' * len(unknown))}) GROUP BY term", unknown).fetchall())
    idf = {n: math.log(1.0 + (n_chunks - (freq := min(int(df.get(n, 0)), n_chunks)) + 0.5) / (freq + 0.5))
           for n in wanted}
    out = dict.fromkeys(doc_ids, 0.0)
    for doc, (length, tfs) in zip(docs, counted, strict=True):
        norm = DOC_K1 * (1 - DOC_B + DOC_B * length / avg)
        out[doc] = sum((idf[n] * tf * (DOC_K1 + 1) / (tf + norm) for n in wanted if (tf := tfs.get(n, 0))), 0.0)
    return out


_DOCS_CACHED = 512
# (text, title) -> (number of index terms, each term's count): the same stories are candidates for query after
# query, and tokenizing 10 documents of 6,000 characters was a third of a search's own work. Keyed by the text
# itself, so a changed document is never scored from its old terms.
_doc_terms: OrderedDict[tuple[str, str], tuple[float, dict[str, int]]] = OrderedDict()
_doc_terms_lock = threading.Lock()


def _document_terms(texts: Sequence[tuple[str, str]]) -> list[tuple[float, dict[str, int]]]:
    """Each ``(text, title)``'s number of index terms and term counts (text and title count together)."""
    with _doc_terms_lock:  # Slack answers score documents on several threads at once
        missing = [t for t in dict.fromkeys(texts) if t not in _doc_terms]
        if missing:
            ids, owner = term_ids([part for pair in missing for part in pair])
            owner //= 2
            for n, pair in enumerate(missing):
                distinct, counts = np.unique(ids[owner == n], return_counts=True)
                _doc_terms[pair] = (float(counts.sum()), dict(zip(map(term_name, distinct.tolist()), counts.tolist(),
                                                                  strict=True)))
        for pair in texts:
            _doc_terms.move_to_end(pair)
        while len(_doc_terms) > _DOCS_CACHED:  # the least recently scored go; this call's are the most recent
            _doc_terms.popitem(last=False)
        return [_doc_terms[pair] for pair in texts]


_mean_lengths: dict[tuple[int, int, float], float] = {}


def _mean_document_length(conn: Connection, n_chunks: int, total: float) -> float:
    """The store's indexed length per document; counting documents scans an index, so the figure is
    kept until the chunk statistics change (any ingest or removal changes them)."""
    key = (id(conn), n_chunks, total)
    if key not in _mean_lengths:
        n_docs = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
        if len(_mean_lengths) > 64:  # several stores in one process (tests): keep the cache small
            _mean_lengths.clear()
        _mean_lengths[key] = max(total / n_docs, 1.0) if n_docs > 0 and n_chunks > 0 else 0.0
    return _mean_lengths[key]


def _best_live(conn: Connection, ids: np.ndarray, scores: np.ndarray, limit: int) -> list[tuple[str, float]]:
    """The ``limit`` best-scoring of lex ``ids`` (ascending; ``scores`` theirs, all above 0) that are still
    live, as chunk ids (ties: older chunk first)."""
    want = min(len(ids), limit * 2 + 10)
    while want > 0:
        # The ``want`` first by (score, then id): a tie across the line is cut by id, not wherever a partition
        # happened to split it (``ids`` ascend, so the tied positions are in id order already).
        cut = np.partition(scores, len(scores) - want)[len(scores) - want]
        above = np.flatnonzero(scores > cut)
        top = np.concatenate((above, np.flatnonzero(scores == cut)[: want - len(above)]))
        top = top[np.lexsort((ids[top], -scores[top]))]
        picked = [int(i) for i in ids[top]]
        live: dict[int, str] = {}
        for start in range(0, len(picked), 500):
            part = picked[start : start + 500]
            live.update(conn.execute(
                f"SELECT lex_id, chunk_id FROM lex_docs WHERE lex_id IN ({','.join('?' * len(part))})", part
            ).fetchall())
        hits = [(live[i], float(scores[t])) for i, t in zip(picked, top.tolist(), strict=True) if i in live]
        if len(hits) >= limit or want >= len(ids):
            return hits[:limit]
        want = min(len(ids), want * 4)
    return []


# -- merging ------------------------------------------------------------------------------------------
def merge_segments(conn: Connection) -> int:
    """Merge full levels of segments, each merge in its own transaction; returns how many were made."""
    merged = 0
    while plan := _merge_plan(conn):
        conn.execute("BEGIN IMMEDIATE")
        try:
            _merge(conn, plan)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        merged += 1
    return merged


def _merge_plan(conn: Connection) -> list[tuple[int, int, int, int]] | None:
    """The oldest ``FANOUT`` segments of the lowest level that has that many, unless too big to merge."""
    levels: dict[int, list[tuple[int, int, int, int]]] = {}
    for seg, level, docs, first_id, last_id in conn.execute(
        "SELECT seg, level, docs, first_id, last_id FROM lex_segments ORDER BY seg"
    ):
        levels.setdefault(level, []).append((seg, docs, first_id, last_id))
    for level in sorted(levels):
        group = levels[level][:FANOUT]
        if len(group) == FANOUT and sum(g[1] for g in group) <= MAX_MERGED_DOCS:
            return [(seg, level, first, last) for seg, _, first, last in group]
    return None


def _merge(conn: Connection, plan: Sequence[tuple[int, int, int, int]]) -> None:
    first_id, last_id = min(p[2] for p in plan), max(p[3] for p in plan)
    live = np.zeros(last_id - first_id + 1, dtype=bool)
    live_ids = np.asarray(
        conn.execute("SELECT lex_id FROM lex_docs WHERE lex_id BETWEEN ? AND ?", (first_id, last_id)).fetchall(),
        dtype=np.int64,
    ).reshape(-1)
    live[live_ids - first_id] = True
    seg = _new_segment(conn, plan[0][1] + 1, len(live_ids), first_id, last_id)
    segs = [p[0] for p in plan]
    marks = ",".join("?" * len(segs))
    all_live = bool(live.all())  # a fresh ingest removes nothing
    # One query in term order (SQLite sorts the segments' rows) instead of merging a cursor per segment in
    # Python, and the rows merged a few thousand terms at a time with whole-array numpy calls.
    found = conn.execute(f"SELECT term, ids, weights FROM lex_postings WHERE seg IN ({marks}) ORDER BY term, seg",
                         segs)

    def rows() -> Iterator[tuple[int, str, bytes, bytes]]:
        carried: list[tuple[str, bytes, bytes]] = []
        while part := found.fetchmany(_MERGE_ROWS):
            rows = carried + part
            last = len(rows)  # the last term may go on in the next part: merged with it
            while last > 0 and rows[last - 1][0] == rows[-1][0]:
                last -= 1
            carried = rows[last:]
            yield from _merged(seg, rows[:last], None if all_live else (live, first_id))
        yield from _merged(seg, carried, None if all_live else (live, first_id))

    _write(conn, rows())
    conn.execute(f"DELETE FROM lex_postings WHERE seg IN ({marks})", segs)
    conn.execute(f"DELETE FROM lex_segments WHERE seg IN ({marks})", segs)


def _merged(seg: int, rows: Sequence[tuple[str, bytes, bytes]], live: tuple[np.ndarray, int] | None
            ) -> Iterator[tuple[int, str, bytes, bytes]]:
    """``(term, ids, weights)`` rows in term order merged into one row per term for segment ``seg``: each term's
    postings best-weighted first, without those not ``live`` (a mask over lex ids from ``live[1]``; None: all)."""
    if not rows:
        return
    sizes = np.fromiter((len(r[2]) // 2 for r in rows), dtype=np.int64, count=len(rows))
    ids = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.uint32)
    weights = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.uint16)
    starts = [0] + [i for i in range(1, len(rows)) if rows[i][0] != rows[i - 1][0]]
    names = [rows[i][0] for i in starts]
    term = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(rows))))
    term = np.repeat(term, sizes)
    if live is not None:
        keep = live[0][ids.astype(np.int64) - live[1]]
        ids, weights, term = ids[keep], weights[keep], term[keep]
    order = np.lexsort((ids, -weights.astype(np.int32), term))
    bounds = np.searchsorted(term[order], np.arange(len(names) + 1)).tolist()
    yield from _rows(seg, names, bounds, ids[order], weights[order])


def rebuild(conn: Connection, batches: Iterator[Sequence[LexChunk]]) -> None:
    """Drop the index and build it again from ``batches`` of live chunks (inside the caller's transaction)."""
    conn.execute("DELETE FROM lex_postings")
    conn.execute("DELETE FROM lex_segments")
    conn.execute("DELETE FROM lex_docs")
    conn.execute("UPDATE lex_stats SET docs = 0, length = 0 WHERE id = 0")
    for batch in batches:
        add_chunks(conn, batch)
