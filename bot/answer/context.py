"""Packing retrieved passages into the prompt as numbered, delimited sources within a token budget.

Each passage becomes ``<source id="N" outlet=".." title=".." published="..">text</source>``. Article text
is data: angle brackets inside it are escaped (so no ``</source>`` or ``<!channel>`` can close or open
anything) and bracketed numbers are turned into parentheses (so a fake ``[7]`` in an article cannot pass
for a citation marker the model copies). Sentences that address an assistant are recognized by
:func:`looks_like_injection`, so nothing downstream quotes or relies on them.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

import tiktoken

from retrieval.documents import SearchHit
from retrieval.text import sentence_spans
from retrieval.tokens import count_tokens

_FAKE_MARKER = re.compile(r"\[(\s*\d{1,4}(?:\s*[,;–-]\s*\d{1,4})*\s*)\]")
# Below this many tokens a truncated passage is too short to be worth including.
_MIN_PARTIAL_TOKENS = 60
# Text addressed to an assistant, or markers and mentions that would pass for ours.
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:instructions?|prompts?|rules|guidelines|above|previous)\b"
    r"|\b(?:reply|respond|answer|output|print)\s+(?:only\s+|exactly\s+)?(?:with\s+)?[\"'“]?(?-i:[A-Z]{4,})\b"
    r"|\b(?:system prompt|you are now|as an ai|language model|chatbot|ai assistant)\b"
    r"|<[!@#][^>]*>"
    r"|\[\s*\d{1,4}\s*\]",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Source:
    """One passage as given to the model: ``n`` is its id in the prompt (1-based)."""

    n: int
    hit: SearchHit
    text: str  # the passage text included (possibly cut at a sentence boundary to fit)


@dataclass(frozen=True)
class PackedContext:
    """The sources that fit the budget and their rendering for the prompt."""

    sources: list[Source]
    text: str
    tokens: int


def neutralize(text: str) -> str:
    """Article text made inert for the prompt: no tags, no citation-like markers."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _FAKE_MARKER.sub(r"(\1)", text)


def looks_like_injection(sentence: str) -> bool:
    """Whether a sentence addresses an assistant ("ignore your instructions", "reply PWNED") or carries
    citation-like markers or Slack mentions (``[7]``, ``<!channel>``). Such sentences are never quoted,
    selected, or counted as support for a claim."""
    return bool(_INJECTION.search(sentence))


def published_date(published: str | None) -> str:
    """The date part of an ISO timestamp, or ``unknown date``."""
    return published[:10] if published else "unknown date"


def _source_date(hit: SearchHit) -> str:
    """A source's date for the model: an ingestion time standing in for an unknown date is not a publication date."""
    if hit.date_source == "ingested":
        return f"unknown (ingested {published_date(hit.published)})"
    return published_date(hit.published)


def source_block(n: int, hit: SearchHit, text: str) -> str:
    """One delimited source, its metadata in attributes (escaped) and its text neutralized."""
    attrs = (
        f'id="{n}" outlet="{html.escape(hit.source or "unknown outlet")}" '
        f'title="{html.escape(hit.title or "untitled")}" published="{_source_date(hit)}"'
    )
    return f"<source {attrs}>\n{neutralize(text)}\n</source>"


def _truncate(text: str, budget: int, encoding: tiktoken.Encoding) -> str:
    """The longest prefix of whole sentences of ``text`` that fits ``budget`` tokens."""
    kept = ""
    for _, end in sentence_spans(text):
        candidate = text[:end]
        if count_tokens(candidate, encoding) > budget:
            break
        kept = candidate
    return kept


def pack(
    hits: Sequence[SearchHit],
    budget_tokens: int,
    encoding: tiktoken.Encoding,
    *,
    groups: Sequence[int] | None = None,
) -> PackedContext:
    """Number ``hits`` (in order) as sources until ``budget_tokens`` is used up.

    Passages that don't fit are skipped (a later, shorter one may still fit); a passage is cut at a
    sentence boundary only when the remaining budget is worth it. ``groups`` (one group number per hit)
    wraps consecutive sources of one event in ``<event id="G">`` so the model can summarize by event.
    """
    blocks: list[tuple[int | None, str]] = []
    sources: list[Source] = []
    used = 0
    for i, hit in enumerate(hits):
        n = len(sources) + 1
        text = hit.text
        block = source_block(n, hit, text)
        cost = count_tokens(block, encoding)
        if used + cost > budget_tokens:
            overhead = count_tokens(source_block(n, hit, ""), encoding)
            room = budget_tokens - used - overhead
            if room < _MIN_PARTIAL_TOKENS:
                continue
            text = _truncate(hit.text, room, encoding)
            if not text:
                continue
            block = source_block(n, hit, text)
            cost = count_tokens(block, encoding)
        sources.append(Source(n=n, hit=hit, text=text))
        blocks.append((groups[i] if groups is not None else None, block))
        used += cost
    return PackedContext(sources=sources, text=_join(blocks), tokens=used)


def _join(blocks: list[tuple[int | None, str]]) -> str:
    parts: list[str] = []
    current: int | None = None
    for group, block in blocks:
        if group != current:
            if current is not None:
                parts.append("</event>")
            if group is not None:
                parts.append(f'<event id="{group}">')
            current = group
        parts.append(block)
    if current is not None:
        parts.append("</event>")
    return "\n".join(parts)
