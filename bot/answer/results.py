"""The result objects the answer engine returns and every front end (CLI, Slack, digest) renders."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from retrieval.documents import SearchHit


@dataclass(frozen=True)
class Quote:
    """A passage of a cited article and the sentence of it an answer relies on (verbatim)."""

    chunk_id: str
    text: str


@dataclass(frozen=True)
class Citation:
    """A numbered article behind an answer: one number per article, however many of its passages the
    answer uses. ``quote`` is verbatim text of ``chunk_id`` (the first passage used); ``quotes`` has one
    entry per passage used, that one first."""

    n: int
    doc_id: str
    chunk_id: str
    title: str
    source: str  # outlet
    url: str
    published: str | None  # ISO 8601
    quote: str
    date_source: str = "published"  # "ingested": ``published`` is when sitrep first saw an undated article
    quotes: tuple[Quote, ...] = ()

    @classmethod
    def from_hit(cls, n: int, hit: SearchHit, quote: str) -> Citation:
        """Citation ``n`` of a retrieved passage, with ``quote`` taken verbatim from it."""
        return cls(n=n, doc_id=hit.doc_id, chunk_id=hit.chunk_id, title=hit.title, source=hit.source,
                   url=hit.url, published=hit.published, quote=quote, date_source=hit.date_source,
                   quotes=(Quote(hit.chunk_id, quote),))

    def merged(self, other: Citation) -> Citation:
        """This citation with the passages ``other`` (of the same article) quotes that it does not."""
        known = {q.chunk_id for q in self.quotes}
        extra = tuple(q for q in other.quotes if q.chunk_id not in known)
        return replace(self, quotes=(*self.quotes, *extra)) if extra else self

    def renumbered(self, n: int) -> Citation:
        return replace(self, n=n)

    def to_json(self) -> dict[str, object]:
        return {
            "n": self.n,
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_id,
            "title": self.title,
            "source": self.source,
            "url": self.url,
            "published": self.published,
            "quote": self.quote,
            "date_source": self.date_source,
            "quotes": [{"chunk_id": q.chunk_id, "quote": q.text} for q in self.quotes],
        }


def article_key(hit: SearchHit) -> str:
    """What makes two passages one article for citing: its URL, else its document id."""
    return hit.url or hit.doc_id


def citation_key(citation: Citation) -> str:
    """:func:`article_key` of a citation."""
    return citation.url or citation.doc_id


@dataclass
class Answer:
    """An answer (or a summary, when ``topic`` is set) with markers ``[n]`` matching ``citations``."""

    question: str
    answer: str
    citations: list[Citation] = field(default_factory=list)
    mode: str = "extractive"  # "llm" | "extractive"
    abstained: bool = False
    as_of: str | None = None  # the newest cited source's published date
    topic: str | None = None  # set for summaries: JSON then carries "topic" instead of "question"
    notes: list[str] = field(default_factory=list)  # e.g. "LLM unavailable; extractive answer"
    header: str | None = None  # Slack mrkdwn shown above the answer (a /summarize header); not in JSON

    def to_json(self) -> dict[str, object]:
        head: dict[str, object] = (
            {"topic": self.topic} if self.topic is not None else {"question": self.question}
        )
        return {
            **head,
            "answer": self.answer,
            "citations": [c.to_json() for c in self.citations],
            "mode": self.mode,
            "abstained": self.abstained,
            "as_of": self.as_of,
        }


@dataclass(frozen=True)
class Turn:
    """One message of a conversation."""

    role: str  # "user" | "assistant"
    text: str
    # An answer's cited articles (title, then the quoted sentences): a follow-up's "he" or "the president"
    # may be someone only the sources name.
    sources: tuple[str, ...] = ()
