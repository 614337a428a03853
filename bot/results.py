"""The result objects the answer engine returns and every front end (CLI, Slack, digest) renders."""

from __future__ import annotations

from dataclasses import dataclass, field

from retrieval.documents import SearchHit


@dataclass(frozen=True)
class Citation:
    """A numbered source behind an answer. ``quote`` is verbatim text of the cited chunk."""

    n: int
    doc_id: str
    chunk_id: str
    title: str
    source: str  # outlet
    url: str
    published: str | None  # ISO 8601
    quote: str

    @classmethod
    def from_hit(cls, n: int, hit: SearchHit, quote: str) -> Citation:
        """Citation ``n`` of a retrieved passage, with ``quote`` taken verbatim from it."""
        return cls(n=n, doc_id=hit.doc_id, chunk_id=hit.chunk_id, title=hit.title, source=hit.source,
                   url=hit.url, published=hit.published, quote=quote)

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
        }


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
