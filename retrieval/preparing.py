"""Cleaning, hashing and chunking one article: the pure, CPU-bound part of ingest.

:class:`retrieval.ingest.Ingestor` runs it inline for short runs and in a worker process for long ones
(so it overlaps with embedding and writing on another core). This module imports nothing heavy (no
Chroma, no onnxruntime), which keeps that worker small.
"""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from retrieval.chunking import ChunkingConfig, ChunkSpan, chunk_text
from retrieval.documents import Article
from retrieval.prepare import Prepared, prepare
from retrieval.text import content_hash
from retrieval.wordpieces import WordPieceCounter

NEVER_CHUNK = "*"  # a ``skip_hash`` that matches every text


def raw_hash(article: Article) -> str:
    """A hash of everything cleaning reads (text, title, outlet, URL) and of the kind of source, before cleaning.

    A source whose stored version was made from input with this hash, by the current cleaner and chunker,
    is unchanged without cleaning it again (a re-ingest of unchanged input then costs a lookup per article).
    """
    parts = (article.text, article.title, article.source, article.url, article.kind)
    return hashlib.blake2b("\0".join(parts).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@dataclass
class Prepped:
    """An article cleaned, hashed and (unless its stored version was already current) chunked."""

    prepared: Prepared
    digest: str  # of the cleaned text; empty when no text is left
    spans: list[ChunkSpan] | None = None  # None: not chunked
    raw: str = ""  # :func:`raw_hash` of the article as loaded
    cleaned: bool = True  # False: not cleaned, ``digest`` is the stored version's (see :func:`unchanged`)


def unchanged(article: Article, stored_hash: str, raw: str) -> Prepped:
    """An article whose raw input made the stored version ``stored_hash``: it is neither cleaned nor chunked."""
    return Prepped(Prepared(article, ()), stored_hash, None, raw, cleaned=False)


def prepare_article(article: Article, chunking: ChunkingConfig, wordpieces: Callable[[str], Sequence[int]] | None,
                    skip_hash: str | None) -> Prepped:
    """Clean and hash ``article``; chunk it too unless its text hashes to ``skip_hash`` (``NEVER_CHUNK``: never)."""
    prepared = prepare(article)
    text = prepared.article.text
    digest = content_hash(text) if text else ""
    spans = None
    if text and skip_hash != NEVER_CHUNK and digest != skip_hash:
        spans = chunk_text(text, prepared.article.title, chunking, wordpieces)
    return Prepped(prepared, digest, spans, raw_hash(article))


_worker_pieces: WordPieceCounter | None = None


# A worker's niceness: cleaning and chunking take only the CPU that embedding and writing leave.
WORKER_NICENESS = 10


def worker_init(count_pieces: bool) -> None:
    """Set up a worker process: a lower priority, Ctrl-C left to the ingest process, and its own word-piece
    counter when chunks are checked against MiniLM's limit."""
    global _worker_pieces
    if hasattr(os, "nice"):
        os.nice(WORKER_NICENESS)
    # Ctrl-C reaches every process of the terminal's group: the ingest process stops the run and its workers,
    # which would otherwise each print a traceback of where the interrupt found them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_pieces = WordPieceCounter() if count_pieces else None


def worker_prepare(articles: Sequence[Article], chunking: ChunkingConfig, skip_hashes: Sequence[str | None]
                   ) -> list[Prepped]:
    """:func:`prepare_article` for each article (with its ``skip_hash``), in a worker process set up by
    :func:`worker_init`."""
    pieces = _worker_pieces.pieces if _worker_pieces else None
    return [prepare_article(a, chunking, pieces, skip) for a, skip in zip(articles, skip_hashes, strict=True)]


def worker_ready(_: int) -> bool:
    """A no-op task: running it means the worker process is up."""
    return True
