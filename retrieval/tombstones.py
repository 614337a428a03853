"""Tombstones: what `sitrep remove` took out, so ingest refuses it again unless forced.

A removed document leaves one tombstone per way it could come back: each of its source keys
(``source:<key>``), each URL that carried it (``url:<canonical URL>``), and its text
(``text:<content hash>``). Ingest looks up an article's keys before anything else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from retrieval.loaders.urls import canonical_url, looks_like_url


@dataclass(frozen=True)
class Tombstone:
    """A key that was removed, and the document it belonged to."""

    key: str
    doc_id: str
    title: str
    removed_at: str  # ISO 8601, UTC

    def refusal(self, source: str) -> str:
        """The per-source ingest error for an article this tombstone blocks."""
        title = f" (“{self.title}”)" if self.title else ""
        if self.key.startswith("text:"):
            what = f"{source}: its text is the same as an article{title} removed"
        else:
            what = f"{source}: this source{title} was removed"
        return (f"{what} with `sitrep remove` on {self.removed_at[:10]}; it is not ingested again. "
                "Ingest it with --force to bring it back.")


def url_key(url: str) -> str | None:
    """The tombstone key of a URL, or None when ``url`` is not one."""
    return f"url:{canonical_url(url)}" if url and looks_like_url(url) else None


def article_keys(source_key: str, url: str, content_hash: str) -> list[str]:
    """The keys an incoming article is checked against, most specific first."""
    keys = [f"source:{source_key}", url_key(url), url_key(source_key), f"text:{content_hash}"]
    return list(dict.fromkeys(k for k in keys if k))


def document_keys(content_hash: str, source_keys: Iterable[str], urls: Iterable[str]) -> list[str]:
    """The keys a removed document leaves: its sources, every URL that carried it, and its text."""
    keys = [f"source:{k}" for k in source_keys]
    keys += [k for k in (url_key(u) for u in (*urls, *source_keys)) if k]
    keys.append(f"text:{content_hash}")
    return list(dict.fromkeys(keys))
