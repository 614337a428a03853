"""What the ingest pipeline does to a loaded article before de-duplication and chunking.

The text is normalized and cleaned of page clutter (:mod:`retrieval.cleaning`), the title loses its
site-name suffix, and an article whose source names no outlet gets one from its URL
(:mod:`retrieval.outlets`). The clutter taken out comes back alongside, to be kept with the document.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from retrieval.cleaning import Removal, clean_article
from retrieval.documents import Article
from retrieval.outlets import outlet_for_url, readable_outlet
from retrieval.text import normalize


@dataclass(frozen=True)
class Prepared:
    """An article ready for the pipeline: ``article.text`` is cleaned and normalized."""

    article: Article
    removed: tuple[Removal, ...]


def prepare(article: Article) -> Prepared:
    """Normalize and clean ``article``'s text and title, and fill in its outlet from its URL if missing."""
    outlet = readable_outlet(article.source) if article.source else outlet_for_url(article.url)
    cleaned = clean_article(normalize(article.text), article.title, outlet)
    return Prepared(replace(article, text=cleaned.text, title=cleaned.title or article.title, source=outlet),
                    cleaned.removed)
