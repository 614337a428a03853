"""Web pages to articles: main text and metadata through trafilatura."""

from __future__ import annotations

import trafilatura

from retrieval.documents import Article
from retrieval.errors import SourceError
from retrieval.loaders.common import Origin
from retrieval.loaders.dates import parse_published
from retrieval.loaders.urls import canonical_url

# Page furniture trafilatura keeps unless told: video players and their "Ad Feedback" lines, newsletter
# boxes, related-story lists, share bars, photo captions and credits, bylines. Matched by class name,
# the way news sites mark them up; what still gets through is caught by retrieval/cleaning.py.
_FURNITURE_CLASSES = ("video-player", "video-resource", "ad-feedback", "newsletter", "related", "promo", "social",
                      "share", "caption", "credit", "byline", "author-bio", "editor-note")
PRUNE_XPATH = ["//figure", "//figcaption", "//aside",
               *(f"//*[contains(@class, '{name}')]" for name in _FURNITURE_CLASSES)]
# Fewer characters than this is navigation or a cookie banner, not an article.
MIN_ARTICLE_CHARS = 25
# Ask htmldate for the time and offset too, not just the day ("since this morning" needs them), and
# prefer the page's own markup to a date in the URL, which has no time.
_DATE_PARAMS = {
    "original_date": True,
    "extensive_search": True,
    "outputformat": "%Y-%m-%dT%H:%M:%S%z",
    "deferred_url_extractor": True,
}


def article_from_html(content: str | bytes, origin: Origin) -> Article:
    """Extract a page's main text, title, date and site name.

    ``content`` is decoded text, or raw bytes that trafilatura decodes from the page's own charset
    declaration. The title falls back to ``origin.fallback_title``; the outlet is ``origin.outlet``
    when given, else the page's site name. A saved page (no ``origin.url``) gets the address its
    ``<link rel="canonical">`` declares, so citations can still link to it. Raises SourceError when the
    page has no article text.
    """
    try:
        doc = trafilatura.bare_extraction(
            content,
            url=origin.url or None,
            with_metadata=True,
            include_comments=False,
            include_tables=True,
            prune_xpath=PRUNE_XPATH,
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
        url=origin.url or _web_address(doc.url),
        source=origin.outlet or (doc.sitename or "").strip(),
        published=parse_published(doc.date),
        kind=origin.kind,
        published_raw=(doc.date or "").strip(),
    )


def _web_address(url: str | None) -> str:
    return canonical_url(url) if url and url.lower().startswith(("http://", "https://")) else ""
