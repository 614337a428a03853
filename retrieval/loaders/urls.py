"""URL recognition and canonical forms."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from retrieval.errors import SourceError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
# Tracking parameters: the same article shared from a newsletter and from Facebook is one source.
_TRACKING_PARAM = re.compile(r"^(utm_[a-z_]+|fbclid|gclid)$", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def looks_like_url(source: str) -> bool:
    """Whether a command-line SOURCE is a URL (``scheme://...``) rather than a path."""
    return bool(_SCHEME.match(source))


def require_http_url(url: str) -> None:
    """Raise SourceError unless ``url`` is an http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        scheme = parts.scheme or "(none)"
        raise SourceError(url, f"unsupported URL scheme '{scheme}' in {url}; only http and https URLs can be fetched")
    if not parts.hostname:
        raise SourceError(url, f"{url} has no host name")


def canonical_url(url: str) -> str:
    """The URL that identifies an article: lower-case scheme and host, no default port, no fragment,
    no ``utm_*``/``fbclid``/``gclid`` tracking parameters; other parameters keep their order."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{host}:{parts.port}"
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{userinfo}@{netloc}"
    # Filter the raw query rather than decode and re-encode it: servers differ on what escaping means.
    params = [p for p in parts.query.split("&") if p and not _TRACKING_PARAM.match(unquote_plus(p.split("=", 1)[0]))]
    return urlunsplit((scheme, netloc, parts.path or "/", "&".join(params), ""))


def url_stem(url: str) -> str:
    """The last path segment of a URL without its extension (for a fallback title), or the host."""
    path = urlsplit(url).path.rstrip("/")
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if name else (urlsplit(url).hostname or url)

