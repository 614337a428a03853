"""Sentence-aware chunking sized with tiktoken and checked against MiniLM's 256 word-piece limit.

A chunk is a run of whole sentences of about ``target_tokens`` cl100k tokens; consecutive chunks
share their boundary sentence (the overlap) so a fact split across a boundary is still found.
Every chunk, as it will be embedded (with its title prefix), is verified to fit the embedding
model: MiniLM silently drops word pieces past 256, which would hide text from dense search.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from retrieval.text import sentence_spans
from retrieval.tokens import count_tokens

EMBED_LIMIT = 256


@dataclass(frozen=True)
class ChunkSpan:
    """A chunk's place in the normalized document text."""

    index: int
    start: int
    end: int


@dataclass(frozen=True)
class ChunkingConfig:
    target_tokens: int = 180
    overlap_tokens: int = 40
    embed_limit: int = EMBED_LIMIT


def embedding_text(title: str, passage: str) -> str:
    """What is embedded for a chunk: the title gives short passages their topic."""
    return f"{title}\n{passage}" if title else passage


def _split_long(text: str, start: int, end: int, max_tokens: int) -> list[tuple[int, int]]:
    """Split one over-long sentence at word boundaries into pieces of at most ``max_tokens``."""
    pieces: list[tuple[int, int]] = []
    words = [(m.start() + start, m.end() + start) for m in re.finditer(r"\S+", text[start:end])]
    piece_start = words[0][0]
    budget = 0
    last_end = piece_start
    for ws, we in words:
        cost = count_tokens(text[ws:we]) + 1
        if budget + cost > max_tokens and last_end > piece_start:
            pieces.append((piece_start, last_end))
            piece_start, budget = ws, 0
        budget += cost
        last_end = we
    pieces.append((piece_start, last_end))
    return pieces


def chunk_text(
    text: str,
    title: str = "",
    config: ChunkingConfig | None = None,
    wordpieces: Callable[[str], Sequence[int]] | None = None,
) -> list[ChunkSpan]:
    """Cut normalized ``text`` into chunk spans.

    ``wordpieces`` counts the embedding tokenizer's pieces of each of several texts, [CLS]/[SEP] left out
    (see :meth:`retrieval.embeddings.WordPieceCounter.pieces`); when given, any chunk over the limit is
    re-split so nothing is truncated at embedding time.
    """
    cfg = config or ChunkingConfig()
    units: list[tuple[int, int, int]] = []  # (start, end, tokens)
    for s, e in sentence_spans(text):
        n = count_tokens(text[s:e])
        if n > cfg.target_tokens:
            units.extend((ps, pe, count_tokens(text[ps:pe])) for ps, pe in _split_long(text, s, e, cfg.target_tokens))
        else:
            units.append((s, e, n))
    if not units:
        return []

    groups: list[list[tuple[int, int, int]]] = []
    current: list[tuple[int, int, int]] = []
    size = 0
    for unit in units:
        if current and size + unit[2] > cfg.target_tokens:
            groups.append(current)
            tail = current[-1]
            current, size = ([tail], tail[2]) if tail[2] <= cfg.overlap_tokens else ([], 0)
        current.append(unit)
        size += unit[2]
    if current and (not groups or current != groups[-1][-len(current):]):
        groups.append(current)

    spans: list[tuple[int, int]] = []
    if wordpieces is None:
        spans = [(group[0][0], group[-1][1]) for group in groups]
    else:
        # Chunks are whole sentences joined by whitespace, where the tokenizer splits words anyway: a
        # chunk's pieces are its sentences' pieces, so the sentences are counted once, in one batch.
        per_unit = dict(zip(units, wordpieces([text[s:e] for s, e, _ in units]), strict=True))
        fixed = 2 + (wordpieces([title])[0] if title else 0)  # [CLS], [SEP] and the title
        for group in groups:
            if fixed + sum(per_unit[u] for u in group) <= cfg.embed_limit:
                spans.append((group[0][0], group[-1][1]))
            else:
                count = lambda s, e: fixed + wordpieces([text[s:e]])[0]  # noqa: E731
                spans.extend(_fit(text, group[0][0], group[-1][1], cfg, count))
    return [ChunkSpan(i, s, e) for i, (s, e) in enumerate(spans)]


def _fit(
    text: str,
    start: int,
    end: int,
    cfg: ChunkingConfig,
    pieces: Callable[[int, int], int],
) -> list[tuple[int, int]]:
    """Return ``[(start, end)]`` or, when the embedded form is over the limit, smaller halves."""
    if pieces(start, end) <= cfg.embed_limit:
        return [(start, end)]
    words = [m.start() + start for m in re.finditer(r"\S+", text[start:end])]
    if len(words) < 2:
        return [(start, end)]
    # Prefer a sentence boundary near the middle; fall back to a word boundary.
    inner = [s + start for s, _ in sentence_spans(text[start:end])][1:]
    middle = (start + end) // 2
    cut = min(inner, key=lambda p: abs(p - middle)) if inner else words[len(words) // 2]
    left_end = cut
    while left_end > start and text[left_end - 1].isspace():
        left_end -= 1
    return _fit(text, start, left_end, cfg, pieces) + _fit(text, cut, end, cfg, pieces)
