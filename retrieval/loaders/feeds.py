"""RSS/Atom feeds: each entry's article fetched, the entry's own summary kept when that fails.

feedparser only ever parses bytes sitrep fetched itself (never a URL), so the limits of
:class:`FetchOptions` hold for feeds too.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Container, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from urllib.parse import urljoin

import feedparser

from retrieval.documents import Article, LoadFailure
from retrieval.errors import SourceError
from retrieval.fetchguard import FetchRefusedError
from retrieval.loaders.common import LoadItem
from retrieval.loaders.dates import parse_published
from retrieval.loaders.options import DEFAULT_OPTIONS, FetchOptions
from retrieval.loaders.text import html_to_text
from retrieval.loaders.urls import canonical_url, looks_like_url
from retrieval.loaders.web import HttpFetcher, Response, article_from_response

log = logging.getLogger(__name__)

# Entry articles are fetched a few at a time: most of the time goes into waiting on servers.
_ENTRY_WORKERS = 4
_FEED_LINK = re.compile(
    r"""<link\b[^>]*\btype=["']application/(?:rss|atom)\+xml["'][^>]*>""", re.IGNORECASE
)
_HREF = re.compile(r"""\bhref=["']([^"']+)["']""", re.IGNORECASE)


@dataclass
class FeedFetch:
    """One poll of a feed, for the scheduler: what is new, what failed, and the validators for next time."""

    status: str  # "ok" | "not_modified"
    articles: list[Article] = field(default_factory=list)
    failures: list[LoadFailure] = field(default_factory=list)
    etag: str | None = None
    last_modified: str | None = None
    title: str = ""  # the feed's title ("" when not modified)


def fetch_feed(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    options: FetchOptions = DEFAULT_OPTIONS,
    known_links: Container[str] = (),
    source_name: str | None = None,
) -> FeedFetch:
    """Poll a feed: conditional GET, parse, and load the article of every entry not in ``known_links``.

    ``etag``/``last_modified`` are the validators of the previous poll, sent as If-None-Match /
    If-Modified-Since; a 304 gives status ``not_modified`` and no articles. ``known_links`` holds
    entry links (as given or canonical) the caller already has: they are neither fetched nor returned.
    Raises SourceError when the feed itself cannot be fetched or is not a feed; a failing entry is
    only a failure in the result.
    """
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    with HttpFetcher(options) as fetcher:
        resp = fetcher.get(url, headers=headers)
        if resp.status == 304:
            return FeedFetch("not_modified", etag=resp.etag or etag,
                             last_modified=resp.last_modified or last_modified)
        parsed = parse_feed(resp)
        result = FeedFetch("ok", etag=resp.etag, last_modified=resp.last_modified, title=feed_title(parsed))
        for item in iter_feed_items(parsed, resp, fetcher, outlet=source_name or "", known_links=known_links):
            if isinstance(item, Article):
                result.articles.append(item)
            else:
                result.failures.append(item)
        return result


def parse_feed(resp: Response) -> feedparser.FeedParserDict:
    """Parse a fetched feed. Raises SourceError for a non-feed (naming what it is) or an unreadable feed."""
    url = resp.requested_url
    if resp.kind != "feed":
        raise SourceError(url, f"{url} is not an RSS/Atom feed (got {resp.media_type or 'no content type'})"
                               f"{_discovered_feed_hint(resp)}")
    # A stream, not bytes or str: given a string, feedparser would try it as a URL or a file name.
    parsed = feedparser.parse(
        io.BytesIO(resp.body),
        response_headers={"content-location": resp.url, "content-type": resp.media_type or "application/xml"},
    )
    if parsed.bozo and not parsed.entries:
        raise SourceError(url, f"{url} is not a readable RSS/Atom feed ({parsed.get('bozo_exception')})")
    return parsed


def feed_title(parsed: feedparser.FeedParserDict) -> str:
    """The feed's title as plain text."""
    return html_to_text(parsed.feed.get("title", ""))


def iter_feed_items(
    parsed: feedparser.FeedParserDict,
    resp: Response,
    fetcher: HttpFetcher,
    *,
    outlet: str = "",
    known_links: Container[str] = (),
) -> Iterator[LoadItem]:
    """An Article (or LoadFailure) per entry, in feed order, skipping entries whose link is known.

    An entry whose article loads gives that article (kind ``url``, with the entry's title and date
    preferred, being the publisher's own metadata). When the article cannot be fetched or has no
    text, the entry's longest content/summary, HTML stripped, is kept instead (kind ``feed``); when the
    fetch guard refuses the link (or a redirect from it), the entry is a failure saying why. The
    outlet is ``outlet`` if given, else the entry's ``<source>``, else the page's site name, else the
    feed's title.
    """
    title = feed_title(parsed)
    entries = [entry for entry in parsed.entries if not _is_known(entry.get("link", ""), known_links)]
    pool = ThreadPoolExecutor(max_workers=_ENTRY_WORKERS, thread_name_prefix="feed-entry")
    try:
        yield from pool.map(lambda entry: _entry_item(entry, resp.requested_url, title, fetcher, outlet), entries)
    finally:
        # A consumer that stops early must not wait for every remaining entry to download.
        pool.shutdown(wait=True, cancel_futures=True)


def _entry_item(entry: feedparser.FeedParserDict, feed_url: str, title_of_feed: str, fetcher: HttpFetcher,
                outlet: str) -> LoadItem:
    title = html_to_text(entry.get("title", ""))
    link = (entry.get("link") or "").strip()
    published_raw = _entry_date(entry)
    published = parse_published(published_raw)
    outlet = outlet or html_to_text(entry.get("source", {}).get("title", ""))
    problem = "the entry has no link"
    if looks_like_url(link):
        try:
            article = article_from_response(fetcher.get(link), outlet=outlet)
        except FetchRefusedError as exc:
            # Not a dead link but one pointing inside the network: reported, and nothing of it kept.
            log.info("feed entry refused feed=%s link=%s error=%s", feed_url, link, exc.message)
            return LoadFailure(link, exc.message)
        except SourceError as exc:
            problem = exc.message
            log.info("feed entry article unavailable, keeping its summary feed=%s link=%s error=%s",
                     feed_url, link, exc.message)
        except Exception as exc:  # an extractor choking on one page must not cost the feed's other entries
            problem = f"unexpected error loading {link}: {type(exc).__name__}: {exc}"
            log.exception("feed entry article crashed feed=%s link=%s", feed_url, link)
        else:
            # The feed's date is the publisher's own metadata: it wins over the page's when it can be read.
            if published is not None or (published_raw and article.published is None):
                article = replace(article, published=published, published_raw=published_raw)
            return replace(article, title=title or article.title, source=article.source or title_of_feed)
    text = _entry_text(entry)
    if not text:
        return LoadFailure(link or feed_url, f"{problem}, and the feed entry {title!r} has no summary to keep")
    if looks_like_url(link):
        key, url = canonical_url(link), canonical_url(link)
    else:
        key, url = f"{canonical_url(feed_url)}#{entry.get('id') or title}", ""
    return Article(text=text, source_key=key, title=title, url=url, source=outlet or title_of_feed,
                   published=published, kind="feed", published_raw=published_raw)


def _entry_date(entry: feedparser.FeedParserDict) -> str:
    """The entry's date as the feed wrote it. feedparser's own ``*_parsed`` values are not used: its
    W3C-DTF fallback reads ``2022/10/04`` as the 1st of the current month."""
    for name in ("published", "updated", "created"):
        value = entry.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _entry_text(entry: feedparser.FeedParserDict) -> str:
    """The longest of the entry's full contents and summary, as plain text."""
    candidates = [part.get("value", "") for part in entry.get("content", [])] + [entry.get("summary", "")]
    return html_to_text(max(candidates, key=len))


def _is_known(link: str, known_links: Container[str]) -> bool:
    return bool(link) and (link in known_links or canonical_url(link) in known_links)


def _discovered_feed_hint(resp: Response) -> str:
    """When an HTML page advertises its feed, say where it is."""
    if resp.kind != "html":
        return ""
    tag = _FEED_LINK.search(resp.body[:200_000].decode("utf-8", errors="replace"))
    href = _HREF.search(tag.group(0)) if tag else None
    return f"; the page links to a feed at {urljoin(resp.url, href.group(1))}" if href else ""
