"""Fetching URLs within sitrep's limits, and turning a fetched page into an article."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

import httpx

from retrieval.documents import Article
from retrieval.errors import SourceError
from retrieval.fetchguard import FetchGuard, FetchRefusedError, Resolver, guarded_transport, resolve
from retrieval.loaders.common import Origin, readable_title
from retrieval.loaders.formats import MEDIA_TYPES, format_of_media_type, parse_article
from retrieval.loaders.options import DEFAULT_OPTIONS, FetchOptions, format_size
from retrieval.loaders.text import decode_text, looks_binary
from retrieval.loaders.urls import canonical_url, require_http_url, url_stem

MAX_REDIRECTS = 5
_ACCEPT = (
    "text/html,application/xhtml+xml,application/rss+xml,application/atom+xml,application/pdf,"
    "application/xml;q=0.9,text/xml;q=0.9,application/json;q=0.8,text/plain;q=0.8,*/*;q=0.1"
)
# Besides the formats' own types: none at all, generic binary (PDFs are often served so) and generic XML.
_ACCEPTED_MEDIA_TYPES = MEDIA_TYPES | {"", "application/octet-stream", "application/xml"}
_FEED_ROOT = re.compile(rb"<(?:rss|feed|rdf:RDF)[\s>]")
_HTML_ROOT = re.compile(rb"<html[\s>]", re.IGNORECASE)


@dataclass(frozen=True)
class Response:
    """A fetched URL: its final address after redirects, status, type and (capped) body."""

    requested_url: str
    url: str
    status: int
    media_type: str  # lower-case, without parameters; "" when the server sent none
    charset: str | None
    body: bytes
    etag: str | None = None
    last_modified: str | None = None

    @property
    def kind(self) -> str:
        """What the body is: ``pdf``, ``feed``, ``json``, ``text`` or ``html`` (the default).

        The body is sniffed as well as the declared type: feeds are often served as text/xml or
        even text/html, and PDFs as application/octet-stream.
        """
        head = self.body[:4096]
        declared = format_of_media_type(self.media_type)
        if declared == "pdf" or head.lstrip().startswith(b"%PDF-"):
            return "pdf"
        if declared == "feed" or (_FEED_ROOT.search(head) and not _HTML_ROOT.search(head)):
            return "feed"
        if declared in ("json", "text"):
            return declared
        return "html"

    def text(self) -> str:
        """The body decoded by the declared charset, else strictly as UTF-8/UTF-16 (see ``decode_text``)."""
        if self.charset:
            try:
                return self.body.decode(self.charset, errors="replace").replace("\r\n", "\n")
            except LookupError:  # a charset name Python does not know: fall back to the strict rules
                pass
        return decode_text(self.body, self.requested_url)


class HttpFetcher:
    """GETs URLs with the user agent, timeouts, redirect limit, size cap and allowlist of :class:`FetchOptions`.

    Every connection, redirect hops included, goes through the fetch guard (:mod:`retrieval.fetchguard`):
    only http(s), only public addresses unless allowed, at most ``MAX_REDIRECTS`` redirects, each one
    checked before it is followed. One instance shares one connection pool across a run, and may be used
    from several threads. Every failure is raised as a SourceError (FetchRefusedError for what the guard
    stopped) whose message says what happened to which URL. ``resolver`` replaces DNS in tests.
    """

    def __init__(self, options: FetchOptions = DEFAULT_OPTIONS, *, resolver: Resolver = resolve) -> None:
        self.options = options
        self.guard = FetchGuard(options.allow, resolver)
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> HttpFetcher:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (a later ``get`` opens a new one)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _http(self) -> httpx.Client:
        with self._lock:  # created on first use: a run of local files never opens a pool
            if self._client is None:
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.options.timeout),
                    follow_redirects=False,  # followed in get(), so each hop is checked first
                    transport=guarded_transport(self.guard),
                    trust_env=False,
                    headers={"User-Agent": self.options.user_agent, "Accept": _ACCEPT},
                )
            return self._client

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Response:
        """Fetch ``url``. A 304 is returned (with an empty body); any other non-2xx status raises."""
        require_http_url(url)
        timeout = self.options.timeout
        # httpx's timeout bounds each read; the deadline also bounds a server trickling bytes slowly.
        deadline = time.monotonic() + timeout
        hops = [url]
        try:
            for _ in range(MAX_REDIRECTS + 1):
                self._check_hop(hops)
                with self._http().stream("GET", hops[-1], headers=dict(headers or {})) as resp:
                    if not resp.has_redirect_location:
                        return self._read(url, resp, deadline)
                    hops.append(_redirect_target(hops, resp))
        except FetchRefusedError as exc:
            raise FetchRefusedError(url, f"refused to fetch {_route(hops)}: {exc.message}") from exc
        except httpx.TimeoutException as exc:
            raise _timed_out(url, timeout) from exc
        except httpx.ConnectError as exc:
            raise SourceError(url, f"could not connect to {_route(hops)}: {_connect_reason(exc)}") from exc
        except httpx.HTTPError as exc:
            raise SourceError(url, f"could not fetch {_route(hops)}: {exc or type(exc).__name__}") from exc
        except httpx.InvalidURL as exc:
            raise SourceError(url, f"{hops[-1]} is not a valid URL ({exc})") from exc
        raise SourceError(url, f"{url} redirected more than {MAX_REDIRECTS} times")

    def _check_hop(self, hops: list[str]) -> None:
        """Refuse the next hop before connecting when its scheme is not http(s) or its host is written as a
        forbidden address. (Host names are checked when connecting, by the transport.)"""
        target = hops[-1]
        if len(hops) > 1:
            try:
                require_http_url(target)
            except SourceError as exc:
                raise FetchRefusedError(target, exc.message) from exc
        self.guard.check_host(urlsplit(target).hostname or "")

    def _read(self, url: str, resp: httpx.Response, deadline: float) -> Response:
        final = str(resp.url)
        if resp.status_code != 304 and not 200 <= resp.status_code < 300:
            via = f" (redirected from {url})" if final != url else ""
            raise SourceError(url, f"HTTP {resp.status_code} from {final}{via}")
        media_type = resp.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if not _accepted(media_type):
            raise SourceError(url, f"{final} is {media_type}, not a web page, feed, PDF or JSON")
        cap = self.options.max_bytes
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise SourceError(url, f"{final} is {format_size(int(declared))}, over the {format_size(cap)} limit "
                                   "(SITREP_MAX_FETCH_BYTES)")
        body = bytearray()
        for piece in resp.iter_bytes():
            body += piece
            if len(body) > cap:
                raise SourceError(url, f"{final} is larger than the {format_size(cap)} limit; stopped reading "
                                       "(SITREP_MAX_FETCH_BYTES)")
            if time.monotonic() > deadline:
                raise _timed_out(url, self.options.timeout)
        return Response(
            requested_url=url,
            url=final,
            status=resp.status_code,
            media_type=media_type,
            charset=resp.charset_encoding,
            body=bytes(body),
            etag=resp.headers.get("etag"),
            last_modified=resp.headers.get("last-modified"),
        )


def article_from_response(resp: Response, *, outlet: str = "", kind: str = "url") -> Article:
    """The article in a fetched web page, PDF or plain-text document.

    ``source_key`` is the canonical form of the URL as *given* (so the same link is recognised on every
    run, whatever it redirects to today); ``url`` is the canonical *final* URL after redirects, the
    address a reader should follow. Raises SourceError when there is no article in it.
    """
    where = resp.requested_url
    if resp.kind == "feed":
        raise SourceError(where, f"{where} is an RSS/Atom feed, not an article; ingest it as a feed")
    if resp.kind == "json":
        raise SourceError(where, f"{where} is a JSON document, not an article")
    origin = Origin(
        where=where,
        source_key=canonical_url(where),
        url=canonical_url(resp.url),
        kind=kind,
        outlet=outlet,
        fallback_title=readable_title(url_stem(resp.url)),
    )
    if not resp.body.strip():
        raise SourceError(where, f"{where} returned an empty body")
    if resp.kind == "pdf":
        return parse_article("pdf", resp.body, origin)
    if resp.kind == "text":
        return parse_article("text", resp.text(), origin)
    if looks_binary(resp.body) and not resp.charset:
        raise SourceError(where, f"{where} returned binary data ({resp.media_type or 'no content type'}), not a page")
    # Without a declared charset, trafilatura reads the page's own <meta charset>.
    return parse_article("html", resp.text() if resp.charset else resp.body, origin)


def _accepted(media_type: str) -> bool:
    return (
        media_type in _ACCEPTED_MEDIA_TYPES
        or media_type.startswith("text/")
        or media_type.endswith(("+xml", "+json"))
    )


def _redirect_target(hops: list[str], resp: httpx.Response) -> str:
    location = resp.headers["location"]
    try:
        return str(resp.url.join(location))
    except httpx.InvalidURL as exc:
        raise SourceError(hops[0], f"{hops[-1]} redirected to an invalid address {location!r} ({exc})") from exc


def _route(hops: list[str]) -> str:
    """``url`` or ``url (redirected to last)`` for messages."""
    return hops[0] if len(hops) == 1 else f"{hops[0]} (redirected to {hops[-1]})"


def _timed_out(url: str, timeout: float) -> SourceError:
    return SourceError(url, f"{url} timed out after {timeout:g}s")


def _connect_reason(exc: httpx.ConnectError) -> str:
    detail = str(exc)
    lowered = detail.lower()
    if "refused" in lowered:
        return "connection refused (is the server up?)"
    if "name or service not known" in lowered or "nodename nor servname" in lowered or "name resolution" in lowered:
        return "host not found"
    return detail or type(exc).__name__
