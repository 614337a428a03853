"""Every format sitrep reads, in one table: file suffixes and media types name a format, and each
single-article format has one parser. Adding a format is one row here plus its parser module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from retrieval.documents import Article
from retrieval.loaders.common import Origin
from retrieval.loaders.html import article_from_html
from retrieval.loaders.pdf import article_from_pdf
from retrieval.loaders.plaintext import article_from_text


@dataclass(frozen=True)
class Format:
    """A kind of input: how files of it are named and how servers label it."""

    name: str  # "text", "html", "pdf", "json" (records), "jsonl" (records), "feed"
    suffixes: tuple[str, ...]
    media_types: frozenset[str]


FORMATS = (
    Format("text", (".txt", ".md"), frozenset({"text/plain", "text/markdown"})),
    Format("html", (".html", ".htm"), frozenset({"text/html", "application/xhtml+xml"})),
    Format("pdf", (".pdf",), frozenset({"application/pdf", "application/x-pdf"})),
    Format("json", (".json",), frozenset({"application/json"})),
    Format("jsonl", (".jsonl",), frozenset()),
    Format("feed", (), frozenset({"application/rss+xml", "application/atom+xml", "application/rdf+xml",
                                  "application/x-rss+xml", "application/x-atom+xml"})),
)
SUPPORTED_SUFFIXES = tuple(suffix for fmt in FORMATS for suffix in fmt.suffixes)
FEED_MEDIA_TYPES = next(fmt.media_types for fmt in FORMATS if fmt.name == "feed")
MEDIA_TYPES = frozenset().union(*(fmt.media_types for fmt in FORMATS))

# The formats that hold one article, and what reads each (PDF from bytes; text and HTML decoded, or HTML
# as bytes for trafilatura to decode by the page's own <meta charset>).
ARTICLE_PARSERS: dict[str, Callable[..., Article]] = {
    "text": article_from_text,
    "html": article_from_html,
    "pdf": article_from_pdf,
}


def format_of_suffix(suffix: str) -> str | None:
    """The format a file name's suffix stands for (case-insensitive); None for a type sitrep doesn't read."""
    suffix = suffix.lower()
    return next((fmt.name for fmt in FORMATS if suffix in fmt.suffixes), None)


def format_of_media_type(media_type: str) -> str | None:
    """The format a (lower-case, parameter-free) media type names; ``…+json`` is JSON."""
    found = next((fmt.name for fmt in FORMATS if media_type in fmt.media_types), None)
    if found is None and media_type.endswith("+json"):
        return "json"
    return found


def parse_article(name: str, content: str | bytes, origin: Origin) -> Article:
    """The article in ``content`` of the single-article format ``name``."""
    return ARTICLE_PARSERS[name](content, origin)
