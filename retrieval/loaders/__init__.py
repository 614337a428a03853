"""Loaders turn sources (files, folders, article URLs, feeds, JSON records) into
:class:`~retrieval.documents.Article` objects, or a :class:`~retrieval.documents.LoadFailure` per bad source.

``iter_sources`` is the entry point for ``sitrep ingest``; ``fetch_feed`` polls one feed for the scheduler.
"""

from retrieval.loaders.dates import parse_published
from retrieval.loaders.feeds import FeedFetch, fetch_feed
from retrieval.loaders.formats import SUPPORTED_SUFFIXES
from retrieval.loaders.options import FetchOptions
from retrieval.loaders.sources import count_sources, iter_sources
from retrieval.loaders.urls import canonical_url

__all__ = [
    "SUPPORTED_SUFFIXES",
    "FeedFetch",
    "FetchOptions",
    "canonical_url",
    "count_sources",
    "fetch_feed",
    "iter_sources",
    "parse_published",
]
