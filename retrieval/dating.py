"""The date a document is stored under: its publication date when the source gives one sitrep can read, else
its ingestion time, standing in and marked as such (``date_source`` "ingested" on search hits)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from retrieval.documents import Article
from retrieval.loaders.dates import parse_date

PUBLISHED, INGESTED = "published", "ingested"


def iso_utc(moment: datetime | None) -> str | None:
    """A datetime as ISO 8601 in UTC to the second (naive means UTC); None stays None."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class DocDate:
    """A document's publication date (UTC) or, when ``published`` is None, why it has none."""

    published: datetime | None
    raw: str  # the value the source gave, "" for none
    order: str | None  # the source's declared day/month order, if any
    problem: str = ""

    @property
    def iso(self) -> str | None:
        return iso_utc(self.published)

    @property
    def source(self) -> str:
        """``published`` or ``ingested``: what the stored date is."""
        return PUBLISHED if self.published else INGESTED

    def warning(self) -> str:
        """The ingest warning for a document dated by its ingestion time."""
        return f"{self.problem}; dated by its ingestion time instead"


def date_article(article: Article, order: str | None, now: datetime) -> DocDate:
    """The date to store ``article`` under, re-read from its raw value with the source's ``order``.

    Loaders that only had a parsed value (a datetime) give that; it is checked all the same.
    """
    parsed = parse_date(article.published_raw or article.published, date_order=order, now=now)
    if parsed.when is None:
        return DocDate(None, parsed.raw, order, parsed.explain())
    return DocDate(parsed.when, parsed.raw, order)


def reparse(raw: str, order: str | None, now: datetime) -> DocDate:
    """A stored raw value parsed again (by this version of the parser)."""
    parsed = parse_date(raw, date_order=order, now=now)
    return DocDate(parsed.when, parsed.raw, order, "" if parsed.when else parsed.explain())
