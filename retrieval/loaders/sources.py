"""The loaders' front door: any mix of files, folders, article URLs and feed URLs, streamed."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from retrieval.documents import LoadFailure
from retrieval.errors import SourceError
from retrieval.loaders.common import LoadItem, guarded
from retrieval.loaders.feeds import iter_feed_items, parse_feed
from retrieval.loaders.files import count_path, iter_path
from retrieval.loaders.options import DEFAULT_OPTIONS, FetchOptions
from retrieval.loaders.records import records_from_json
from retrieval.loaders.urls import canonical_url, looks_like_url
from retrieval.loaders.web import HttpFetcher, article_from_response
from retrieval.outlets import outlet_for_url


def iter_sources(
    sources: Sequence[str | os.PathLike[str]],
    *,
    feed: bool | None = None,
    source_name: str | None = None,
    options: FetchOptions = DEFAULT_OPTIONS,
) -> Iterator[LoadItem]:
    """Load every source, yielding each Article or LoadFailure as soon as it is ready.

    A SOURCE is a file, a folder (recursive), an http(s) article URL or a feed URL. ``feed=True``
    treats every URL as a feed (a non-feed is a failure), ``feed=False`` as an article, ``None``
    detects feeds by content type and body. ``source_name`` replaces the outlet of everything loaded.
    A problem with one source is a LoadFailure for it; nothing is raised for a bad source.
    """
    outlet = (source_name or "").strip()
    with HttpFetcher(options) as fetcher:
        for given in sources:
            source = os.fspath(given)  # Path objects are welcome too
            if not source.strip():
                yield LoadFailure(source, "empty source: give a file, folder or URL")
            elif looks_like_url(source):
                yield from guarded(source, _load_url(source, fetcher, feed=feed, outlet=outlet))
            else:
                yield from iter_path(Path(source), outlet=outlet, options=options)


def count_sources(sources: Sequence[str | os.PathLike[str]]) -> int | None:
    """About how many items :func:`iter_sources` yields (a progress bar's total), or None when that depends on
    what a URL (an article or a feed) or a JSON file holds. Reads only local files: JSONL lines are counted."""
    total = 0
    for given in sources:
        source = os.fspath(given)
        if source.strip() and looks_like_url(source):
            return None
        found = count_path(Path(source)) if source.strip() else 1
        if found is None:
            return None
        total += found
    return total


def _load_url(url: str, fetcher: HttpFetcher, *, feed: bool | None, outlet: str) -> Iterator[LoadItem]:
    resp = fetcher.get(url)
    if resp.status == 304:  # only answered to a conditional request, which this never sends
        raise SourceError(url, f"HTTP 304 from {url} without a conditional request")
    if feed or (feed is None and resp.kind == "feed"):
        yield from iter_feed_items(parse_feed(resp), resp, fetcher, outlet=outlet)
    elif resp.kind == "json":
        yield from records_from_json(resp.text(), where=url, base_key=canonical_url(url), outlet=outlet)
    else:
        article = article_from_response(resp, outlet=outlet)
        yield article if article.source else replace(article, source=outlet_for_url(article.url))
