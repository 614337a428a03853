"""PDF documents to articles, through pypdf's text extraction."""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING

from retrieval.documents import Article
from retrieval.errors import SourceError
from retrieval.loaders.common import Origin
from retrieval.loaders.dates import parse_published

if TYPE_CHECKING:
    from pypdf import PdfReader

log = logging.getLogger(__name__)


def article_from_pdf(data: bytes, origin: Origin) -> Article:
    """Extract the text of every page (pages joined by a line break), the title and the creation date.

    The creation date stands in for the publication date: agency reports (OCHA flash updates and
    the like) are created the day they are issued. Raises SourceError for a broken, encrypted or
    textless (scanned) PDF.
    """
    from pypdf import PasswordType, PdfReader  # here: ~12 MB that an ingest without PDFs never needs

    where = origin.where
    if b"%PDF-" not in data[:1024]:
        raise SourceError(where, f"{where} is not a PDF file (no %PDF header)")
    # pypdf raises a zoo of exception types (PdfReadError, ValueError, KeyError, struct.error, ...) on
    # malformed files; each means the same thing here.
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise SourceError(where, f"{where} is password-protected; save an unprotected copy and ingest that")
        pages = [page.extract_text() or "" for page in reader.pages]
    except SourceError:
        raise
    except Exception as exc:
        raise SourceError(where, f"{where} is a broken PDF ({type(exc).__name__}: {exc})") from exc
    text = "\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise SourceError(
            where,
            f"no extractable text in {where}; it may be a scanned image (run OCR on it first, e.g. with ocrmypdf)",
        )
    title, created = _metadata(reader, where)
    return Article(
        text=text,
        source_key=origin.source_key,
        title=title or origin.fallback_title,
        url=origin.url,
        source=origin.outlet,
        published=parse_published(created),
        kind=origin.kind,
        published_raw=created,
    )


def _metadata(reader: PdfReader, where: str) -> tuple[str, str]:
    """Title and creation date as written (``D:20201014093000+04'30'``); broken metadata only costs the
    metadata, never the text."""
    try:
        info = reader.metadata
        if info is None:
            return "", ""
        return (info.title or "").strip(), str(info.get("/CreationDate") or "").strip()
    except Exception as exc:
        log.info("unreadable PDF metadata source=%s error=%s", where, exc)
        return "", ""
