"""Taking articles out for good (`sitrep remove`): by URL, document id, source key, outlet or date.

A removal is crash-safe like an ingest (see :mod:`retrieval.ingest`): one SQLite transaction deletes the
documents, their chunks, lexical rows and sources, records tombstones and journals the chunks' Chroma ids
as ``retired``; the vectors are deleted afterwards. Search only returns ids SQLite lists as live, so a
reader sees an article or not, never part of it. A ``kill -9`` before the commit changes nothing; after
it, the next ingest or removal deletes the journaled vectors.

sitrep keeps one copy of a text however many sources carried it, so removing a text removes it for all
of them (a dry run lists them). Its tombstones make ingest refuse the same source, URL or text again
unless forced.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from retrieval.errors import QueryError, StoreError
from retrieval.ingest import recover
from retrieval.loaders.urls import canonical_url, looks_like_url
from retrieval.state import StateDB
from retrieval.state_removal import StoredDocument
from retrieval.store import VectorStore
from retrieval.tombstones import document_keys

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemovalRequest:
    """What to remove. Every criterion given must match: ``targets`` (any of them), ``outlet``, ``before``."""

    targets: Sequence[str] = ()  # URLs, document ids or source keys (file paths)
    outlet: str | None = None
    before: datetime | None = None

    def __post_init__(self) -> None:
        if not self.targets and not self.outlet and self.before is None:
            raise QueryError("Say what to remove: one or more URLs or document ids, --outlet NAME, or --before WHEN.")


@dataclass
class RemovalReport:
    """The documents removed (or, in a dry run, that would be), and the targets that matched nothing."""

    documents: list[StoredDocument] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def chunks(self) -> int:
        return sum(d.n_chunks for d in self.documents)

    def to_json(self) -> dict[str, object]:
        """``{"removed": n, "documents": [...], "not_found": [...], "dry_run": bool}`` (n is 0 in a dry run)."""
        return {
            "removed": 0 if self.dry_run else len(self.documents),
            "documents": [document_json(d) for d in self.documents],
            "not_found": self.not_found,
            "dry_run": self.dry_run,
        }


def document_json(doc: StoredDocument) -> dict[str, object]:
    """One removed document as the JSON of `sitrep remove --json` shows it."""
    return {"doc_id": doc.doc_id, "title": doc.title, "source": doc.source, "url": doc.url,
            "published": doc.published, "chunks": doc.n_chunks,
            "sources": [url or key for key, url in doc.sources]}


def _reference_forms(target: str) -> list[str]:
    """The ways a target may be stored: as given, as a canonical URL, or as an absolute file path."""
    forms = [target.strip()]
    if looks_like_url(forms[0]):
        forms.append(canonical_url(forms[0]))
    else:
        forms.append(str(Path(forms[0]).expanduser().resolve()))
    return list(dict.fromkeys(forms))


def _docs_at_url(state: StateDB, target: str) -> set[str]:
    """Documents whose stored URL is ``target`` once both are in canonical form (records keep URLs as given,
    tracking parameters and all)."""
    if not looks_like_url(target):
        return set()
    wanted = canonical_url(target)
    host = urlsplit(wanted).hostname or ""
    return {doc_id for doc_id, url in state.urls_on_host(host) if host and canonical_url(url) == wanted}


def _fold(name: str) -> str:
    return unicodedata.normalize("NFKC", name).casefold().strip()


def select(state: StateDB, request: RemovalRequest) -> RemovalReport:
    """The live documents the request matches, newest first, and the targets that matched nothing."""
    chosen: set[str] | None = None
    not_found: list[str] = []
    if request.targets:
        chosen = set()
        for target in request.targets:
            found = state.docs_named(_reference_forms(target)) or _docs_at_url(state, target)
            if not found:
                not_found.append(target)
            chosen |= found
    if request.outlet:
        names = [n for n in state.outlets() if _fold(n) == _fold(request.outlet)]
        if not names:
            not_found.append(f"--outlet {request.outlet}")
        of_outlet = state.docs_of_outlets(names)
        chosen = of_outlet if chosen is None else chosen & of_outlet
    if request.before is not None:
        dated = state.docs_dated_before(request.before.timestamp())
        chosen = dated if chosen is None else chosen & dated
    return RemovalReport(state.stored_documents(sorted(chosen or ())), not_found)


def remove(state: StateDB, store: VectorStore, request: RemovalRequest, *, dry_run: bool = False) -> RemovalReport:
    """Remove what ``request`` matches (only report it with ``dry_run``). Call with the ingest lock held."""
    report = select(state, request)
    report.dry_run = dry_run
    if dry_run or not report.documents:
        return report
    removals = [(d, document_keys(d.content_hash, [k for k, _ in d.sources], [d.url, *(u for _, u in d.sources)]))
                for d in report.documents]
    retired = state.remove_documents(removals)
    try:
        recover(state, store)
    except StoreError as exc:
        # Committed: the articles are gone from search already; their vectors stay journaled until the next
        # ingest or removal deletes them.
        log.warning("remove.vectors_pending chunks=%d error=%s", len(retired), exc)
    log.info("remove.done docs=%d chunks=%d not_found=%d", len(report.documents), len(retired),
             len(report.not_found))
    return report
