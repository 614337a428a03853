"""Plain data types shared by the ingestion pipeline, the store and search."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Article:
    """One story text as a loader found it, before de-duplication and chunking.

    ``source_key`` identifies where the text came from (a URL, an absolute file path, or
    ``path#record-id`` for JSON records): the same key arriving again with other text is an update.
    """

    text: str
    source_key: str
    title: str = ""
    url: str = ""
    source: str = ""  # the outlet, e.g. "TOLOnews"
    published: datetime | None = None  # timezone-aware (UTC) when known
    kind: str = "file"  # file | url | feed | json | pdf | html
    # The date exactly as the source gave it (kept in the store, so a later version can parse it again);
    # "" when the loader had only a parsed value or nothing.
    published_raw: str = ""


@dataclass(frozen=True)
class LoadFailure:
    """A source that could not be loaded, with a message a user can act on."""

    source: str
    error: str


@dataclass(frozen=True)
class LoadWarning:
    """Something about a source that was ingested but that the user should know (e.g. its unknown date)."""

    source: str
    warning: str


@dataclass(frozen=True)
class SearchHit:
    """One search result: a chunk with its document's metadata and how it ranked."""

    rank: int
    score: float
    chunk_id: str
    doc_id: str
    title: str
    source: str
    url: str
    published: str | None  # ISO 8601, UTC
    text: str
    chunk_index: int = 0
    char_start: int = 0
    char_end: int = 0
    dense_rank: int | None = None
    lexical_rank: int | None = None
    # Cosine similarity of the chunk to the query (computed for every hit, dense-ranked or not):
    # the engine's relevance signal for abstaining, since fused RRF scores are only ranks.
    similarity: float | None = None
    # "published" when the date came from the source; "ingested" when the ingestion time stands in
    # for a date the source did not give or that could not be parsed (shown as such in citations).
    date_source: str = "published"

    def to_json(self) -> dict[str, object]:
        """The contract's JSON shape for one search result."""
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "title": self.title,
            "source": self.source,
            "url": self.url,
            "published": self.published,
            "date_source": self.date_source,
            "text": self.text,
        }
