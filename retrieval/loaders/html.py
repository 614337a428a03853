"""Web pages to articles: main text and metadata through trafilatura."""

from __future__ import annotations

import trafilatura

from retrieval.documents import Article
from retrieval.errors import SourceError
from retrieval.loaders.common import Origin
from retrieval.loaders.dates import parse_published

# Fewer characters than this is navigation or a cookie banner, not an article.
MIN_ARTICLE_CHARS = 25
# Ask htmldate for the time and offset too, not just the day: "since this morning" needs them.
_DATE_PARAMS = {"original_date": True, "extensive_search": True, "outputformat": "%Y-%m-%dT%H:%M:%S%z"}


def article_from_html(content: str | bytes, origin: Origin) -> Article:
    """Extract a page's main text, title, date and site name.

    ``content`` is decoded text, or raw bytes that trafilatura decodes from the page's own charset
    declaration. The title falls back to ``origin.fallback_title``; the outlet is ``origin.outlet``
    when given, else the page's site name. Raises SourceError when the page has no article text.
    """
    try:
        doc = trafilatura.bare_extraction(
            content,
            url=origin.url or None,
            with_metadata=True,
            include_comments=False,
            include_tables=True,
            date_extraction_params=_DATE_PARAMS,
        )
    except ValueError:  # trafilatura's signal for input it cannot parse as HTML at all
        doc = None
    text = (doc.text or "").strip() if doc is not None else ""
    if len(text) < MIN_ARTICLE_CHARS:
        raise SourceError(origin.where, f"no article text found in {origin.where}")
    return Article(
        text=text,
        source_key=origin.source_key,
        title=(doc.title or "").strip() or origin.fallback_title,
        url=origin.url,
        source=origin.outlet or (doc.sitename or "").strip(),
        published=parse_published(doc.date),
        kind=origin.kind,
    )
