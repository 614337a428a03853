"""RSS/Atom feeds, through iter_sources and the scheduler's fetch_feed, against a real local HTTP server."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from retrieval.documents import Article, LoadFailure
from retrieval.errors import SourceError
from retrieval.loaders import fetch_feed, iter_sources
from tests.httpfixtures import LOCAL_FETCH, LocalHTTPServer, RecordedRequest, Route

from conftest import FIXTURES

ARTICLE_HTML = (FIXTURES / "loaders" / "mixed" / "lashkargah-displaced.html").read_text()
RSS = "application/rss+xml; charset=utf-8"
LAST_MODIFIED = "Wed, 14 Oct 2020 10:00:00 GMT"


def rss(base: str, *items: str, title: str = "Helmand Herald: Afghanistan") -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>{title}</title>'
            f"<link>{base}/</link><description>News</description>{''.join(items)}</channel></rss>")


def item(title: str, link: str | None, *, summary: str = "", pub: str = "Wed, 14 Oct 2020 09:30:00 +0430",
         extra: str = "") -> str:
    link_tag = f"<link>{link}</link>" if link else ""
    summary_tag = f"<description><![CDATA[{summary}]]></description>" if summary else ""
    guid = f"<guid isPermaLink='false'>{title}</guid>"
    return f"<item><title>{title}</title>{link_tag}{guid}<pubDate>{pub}</pubDate>{summary_tag}{extra}</item>"


HELICOPTER_SUMMARY = ("<p>Two army helicopters collided in <b>Nawa</b> district, killing nine.</p>"
                      "<p>The ministry said it was an accident.</p>")


@pytest.fixture
def server() -> Iterable[LocalHTTPServer]:
    with LocalHTTPServer() as srv:
        yield srv


@pytest.fixture
def feed_url(server: LocalHTTPServer) -> str:
    """A feed with a working article link and a dead one (whose summary must be kept)."""
    base = server.base_url
    server.route("/news/lashkargah-displaced", Route(ARTICLE_HTML))
    body = rss(
        base,
        item("Thousands flee Lashkargah", f"{base}/news/lashkargah-displaced?utm_source=rss",
             summary="<p>Short teaser.</p>", pub="Tue, 13 Oct 2020 08:00:00 +0000"),
        item("Helicopters collide in Nawa", f"{base}/news/nawa-crash", summary=HELICOPTER_SUMMARY),
    )
    return server.route("/feed.xml", Route(body, content_type=RSS, etag='"v1"', last_modified=LAST_MODIFIED))


def test_feed_entries_fetched_and_summary_kept_when_the_link_fails(server: LocalHTTPServer, feed_url: str) -> None:
    fetched, kept = list(iter_sources([feed_url], options=LOCAL_FETCH))
    base = server.base_url
    assert isinstance(fetched, Article) and isinstance(kept, Article)
    assert fetched.kind == "url" and "at least 5,000 families had arrived" in fetched.text
    assert (fetched.title, fetched.source, fetched.url) == (
        "Thousands flee Lashkargah", "Helmand Herald", f"{base}/news/lashkargah-displaced")
    assert fetched.published == datetime(2020, 10, 13, 8, 0, tzinfo=UTC)  # the feed's date wins over the page's
    assert kept == Article(
        text="Two army helicopters collided in Nawa district, killing nine.\nThe ministry said it was an accident.",
        source_key=f"{base}/news/nawa-crash", title="Helicopters collide in Nawa", url=f"{base}/news/nawa-crash",
        source="Helmand Herald: Afghanistan", published=datetime(2020, 10, 14, 5, 0, tzinfo=UTC), kind="feed",
        published_raw="Wed, 14 Oct 2020 09:30:00 +0430",
    )
    assert len(server.requests_to("/news/nawa-crash")) == 1


def test_feed_detected_by_body_when_served_as_text_xml(server: LocalHTTPServer) -> None:
    xml_url = server.route("/feed-as-xml", Route(rss(server.base_url, item("Curfew", None, summary="Curfew set.")),
                                                 content_type="text/xml"))
    (article,) = iter_sources([xml_url], options=LOCAL_FETCH)
    assert isinstance(article, Article) and (article.text, article.kind) == ("Curfew set.", "feed")
    assert article.source_key == f"{xml_url}#Curfew"


def test_feed_false_refuses_to_read_a_feed_as_an_article(server: LocalHTTPServer, feed_url: str) -> None:
    (failure,) = iter_sources([feed_url], feed=False, options=LOCAL_FETCH)
    assert isinstance(failure, LoadFailure)
    assert failure.error == f"{feed_url} is an RSS/Atom feed, not an article; ingest it as a feed"
    assert server.requests_to("/news/lashkargah-displaced") == []


def test_source_name_and_entry_source_set_the_outlet(server: LocalHTTPServer) -> None:
    body = rss(server.base_url, item("Ceasefire talks", None, summary="Talks resumed in Doha.",
                                     extra=f'<source url="{server.base_url}/x">Pajhwok</source>'))
    url = server.route("/agg.xml", Route(body, content_type=RSS))
    (from_entry,) = iter_sources([url], options=LOCAL_FETCH)
    (overridden,) = iter_sources([url], source_name="Desk", options=LOCAL_FETCH)
    assert (from_entry.source, overridden.source) == ("Pajhwok", "Desk")  # type: ignore[union-attr]


def test_entry_without_article_or_summary_is_a_failure(server: LocalHTTPServer) -> None:
    url = server.route("/thin.xml", Route(rss(server.base_url, item("Gone", f"{server.base_url}/gone")),
                                          content_type=RSS))
    (failure,) = iter_sources([url], options=LOCAL_FETCH)
    assert isinstance(failure, LoadFailure) and failure.source == f"{server.base_url}/gone"
    assert failure.error == f"HTTP 404 from {server.base_url}/gone, and the feed entry 'Gone' has no summary to keep"


def test_atom_feed_content_is_used(server: LocalHTTPServer) -> None:
    atom = f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Relief wire</title><id>urn:relief</id>
<updated>2020-10-15T06:00:00Z</updated>
<entry><title>Aid convoy reaches Lashkargah</title><id>urn:relief:1</id>
<link rel="alternate" href="{server.base_url}/relief/1"/>
<updated>2020-10-15T06:00:00Z</updated>
<summary>Convoy arrives.</summary>
<content type="html">&lt;p&gt;An aid convoy reached Lashkargah on Thursday.&lt;/p&gt;
&lt;p&gt;It carried food.&lt;/p&gt;</content>
</entry></feed>"""
    url = server.route("/atom", Route(atom, content_type="application/atom+xml"))
    (article,) = iter_sources([url], options=LOCAL_FETCH)
    assert isinstance(article, Article)
    assert article.text == "An aid convoy reached Lashkargah on Thursday.\nIt carried food."
    assert article.published == datetime(2020, 10, 15, 6, 0, tzinfo=UTC) and article.source == "Relief wire"


def test_html_page_given_as_feed_is_a_failure_that_points_to_its_feed(server: LocalHTTPServer) -> None:
    html = ARTICLE_HTML.replace("</head>", '<link rel="alternate" type="application/rss+xml" href="/rss">\n</head>')
    url = server.route("/afghanistan", Route(html))
    (failure,) = iter_sources([url], feed=True, options=LOCAL_FETCH)
    assert isinstance(failure, LoadFailure)
    assert failure.error == (f"{url} is not an RSS/Atom feed (got text/html); "
                             f"the page links to a feed at {server.base_url}/rss")
    plain = server.route("/plain", Route(ARTICLE_HTML))
    assert [f.error for f in iter_sources([plain], feed=True, options=LOCAL_FETCH)] == [  # type: ignore[union-attr]
        f"{plain} is not an RSS/Atom feed (got text/html)"]


def test_malformed_feed_is_a_failure(server: LocalHTTPServer) -> None:
    url = server.route("/broken.xml", Route("<rss><channel><title>Half", content_type=RSS))
    (failure,) = iter_sources([url], options=LOCAL_FETCH)
    assert isinstance(failure, LoadFailure) and failure.error.startswith(f"{url} is not a readable RSS/Atom feed (")


# ---------------------------------------------------------------- fetch_feed (the scheduler's poll)


def test_fetch_feed_then_etag_gives_not_modified(server: LocalHTTPServer, feed_url: str) -> None:
    first = fetch_feed(feed_url, options=LOCAL_FETCH)
    assert (first.status, first.title, first.etag, first.last_modified) == (
        "ok", "Helmand Herald: Afghanistan", '"v1"', LAST_MODIFIED)
    assert [a.title for a in first.articles] == ["Thousands flee Lashkargah", "Helicopters collide in Nawa"]
    assert first.failures == []

    second = fetch_feed(feed_url, etag=first.etag, last_modified=first.last_modified, options=LOCAL_FETCH)
    assert (second.status, second.articles, second.failures, second.etag) == ("not_modified", [], [], '"v1"')
    conditional = server.requests_to("/feed.xml")[-1]
    assert conditional.headers["if-none-match"] == '"v1"'
    assert conditional.headers["if-modified-since"] == LAST_MODIFIED
    assert len(server.requests_to("/news/lashkargah-displaced")) == 1  # not fetched again


def test_fetch_feed_last_modified_alone(server: LocalHTTPServer) -> None:
    url = server.route("/lm.xml", Route(rss(server.base_url, item("Curfew", None, summary="Curfew set.")),
                                        content_type=RSS, last_modified=LAST_MODIFIED))
    assert fetch_feed(url, last_modified=LAST_MODIFIED, options=LOCAL_FETCH).status == "not_modified"
    assert fetch_feed(url, last_modified="Tue, 13 Oct 2020 10:00:00 GMT", options=LOCAL_FETCH).status == "ok"


def test_fetch_feed_changed_etag_gives_the_new_feed(server: LocalHTTPServer, feed_url: str) -> None:
    assert fetch_feed(feed_url, etag='"v0"', options=LOCAL_FETCH).status == "ok"


def test_fetch_feed_skips_known_links(server: LocalHTTPServer, feed_url: str) -> None:
    known = {f"{server.base_url}/news/lashkargah-displaced"}  # canonical form of the entry's link
    result = fetch_feed(feed_url, known_links=known, options=LOCAL_FETCH)
    assert [a.title for a in result.articles] == ["Helicopters collide in Nawa"]
    assert server.requests_to("/news/lashkargah-displaced") == []


def test_fetch_feed_reports_entries_that_failed(server: LocalHTTPServer) -> None:
    url = server.route("/thin.xml", Route(rss(server.base_url, item("Gone", f"{server.base_url}/gone")),
                                          content_type=RSS))
    result = fetch_feed(url, options=LOCAL_FETCH)
    assert result.articles == [] and [f.source for f in result.failures] == [f"{server.base_url}/gone"]


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        (Route("boom", status=500), "HTTP 500 from {url}"),
        (Route(ARTICLE_HTML), "{url} is not an RSS/Atom feed (got text/html)"),
        (Route("<rss><channel><title>Half", content_type=RSS), "{url} is not a readable RSS/Atom feed ("),
    ],
    ids=["http-500", "html", "garbage"],
)
def test_fetch_feed_raises_source_error(server: LocalHTTPServer, route: Route, expected: str) -> None:
    url = server.route("/feed", route)
    with pytest.raises(SourceError) as raised:
        fetch_feed(url, options=LOCAL_FETCH)
    assert raised.value.message.startswith(expected.format(url=url)) and raised.value.source == url


def test_fetch_feed_times_out(server: LocalHTTPServer) -> None:
    url = server.route("/slow-feed", Route("<rss/>", content_type=RSS, delay=5))
    with pytest.raises(SourceError, match=r"timed out after 0\.5s"):
        fetch_feed(url, options=replace(LOCAL_FETCH, timeout=0.5))


def test_feed_that_changes_between_polls(server: LocalHTTPServer) -> None:
    versions = iter([("v1", "First report."), ("v2", "Second report.")])

    def answer(request: RecordedRequest) -> Route:
        tag, text = next(versions)
        return Route(rss(server.base_url, item(tag, None, summary=text)), content_type=RSS, etag=f'"{tag}"')

    url = server.route("/live.xml", answer)
    first = fetch_feed(url, options=LOCAL_FETCH)
    second = fetch_feed(url, etag=first.etag, options=LOCAL_FETCH)
    assert [(r.etag, r.articles[0].text) for r in (first, second)] == [('"v1"', "First report."),
                                                                        ('"v2"', "Second report.")]
