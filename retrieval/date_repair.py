"""Re-reading stored publication dates, without re-embedding anything.

Three occasions: the parser changed (the first ingest after an upgrade, or ``sitrep reindex --dates``),
a store from before raw dates were kept (each record's raw date is read again from its JSON file when that
file is still there), and a source ingested again unchanged but with another declared date order. Only
the date columns in SQLite (with the lexical index's dates) and the ``date_ts`` metadata of the chunks in
Chroma change; Chroma is written first, so an interruption leaves SQLite saying the work is still to do.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from retrieval.date_store import (
    DateWrite,
    StoredDate,
    chunk_ids_of,
    mark_read,
    sources_of,
    stale_dates,
    stored_date,
    write_dates,
)
from retrieval.dating import INGESTED, PUBLISHED, DocDate, reparse
from retrieval.documents import Article, LoadWarning
from retrieval.errors import SourceError
from retrieval.loaders.dates import PARSER_VERSION
from retrieval.loaders.files import load_file
from retrieval.state import StateDB
from retrieval.store import VectorStore

log = logging.getLogger(__name__)

_META_KEY = "date_parser"
# What sitrep 0.1 stored for many values it could not read (feedparser's W3C-DTF fallback): the 1st of the
# month it ran in, at midnight UTC, with only the year taken from the value.
_INVENTED = re.compile(r"\d{4}-(\d{2})-01T00:00:00\+00:00")


@dataclass(frozen=True)
class Redated:
    """One document whose stored date changed (``after`` None: its ingestion time stands in now)."""

    doc_id: str
    source: str
    before: str | None
    after: str | None

    def to_json(self) -> dict[str, object]:
        return {"doc_id": self.doc_id, "source": self.source, "from": self.before, "to": self.after,
                "date_source": PUBLISHED if self.after else INGESTED}


@dataclass
class DateRepair:
    """What a pass over stored dates found and changed."""

    checked: int = 0
    redated: list[Redated] = field(default_factory=list)
    warnings: list[LoadWarning] = field(default_factory=list)
    unverified: int = 0  # stored by an old version with no raw value to check, and kept as they were


@dataclass(frozen=True)
class DateChange:
    """A document's date to store, whether that moves it (``redated``), and what to warn about."""

    write: DateWrite
    redated: Redated | None
    warning: LoadWarning | None


def repair_dates(state: StateDB, store: VectorStore, *, every: bool = False) -> DateRepair:
    """Re-read the dates parser ``PARSER_VERSION`` has not read yet (``every``: all of them)."""
    report = DateRepair()
    if not every and state.get_meta(_META_KEY) == PARSER_VERSION:
        return report
    records = _RecordDates()
    for batch in stale_dates(state.conn, PARSER_VERSION, every):
        report.checked += len(batch)
        sources = sources_of(state.conn, [s.doc_id for s in batch])
        changes: list[DateChange] = []
        unverified: set[str] = set()
        for stored in batch:
            found = _recheck(stored, sources.get(stored.doc_id, []), records)
            if isinstance(found, DateChange):
                changes.append(found)
            elif found:
                unverified.add(stored.doc_id)
        redated, warnings = apply_changes(state, store, changes)
        report.redated += redated
        report.warnings += warnings
        report.unverified += len(unverified)
        # Dates kept without a raw value stay marked as unread, to be checked again after the next upgrade.
        mark_read(state.conn, [s.doc_id for s in batch if s.doc_id not in unverified], PARSER_VERSION)
    state.set_meta(_META_KEY, PARSER_VERSION)
    if report.redated or report.unverified:
        log.info("dates.repaired checked=%d redated=%d unverified=%d", report.checked, len(report.redated),
                 report.unverified)
    return report


def recheck_source(state: StateDB, doc_id: str, n_sources: int, article: Article, dated: DocDate) -> DateChange | None:
    """The change to a document's date when its source arrives again with unchanged text.

    The same raw value is read again (with the order now declared, by the parser now running). Another raw
    value for the same text (a feed's date where the page gave one before) may only make an unknown date
    known, never the reverse. A document stored by an old version takes any raw value its source now gives.
    A document shared by several sources takes the date only from the source whose raw value it holds.
    """
    stored = stored_date(state.conn, doc_id)
    if stored is None:
        return None
    if stored.raw is None:
        if not dated.raw:
            return None
    elif dated.raw != stored.raw and (n_sources > 1 or dated.published is None or stored.published is not None):
        return None
    return _change(stored, dated, article.source_key)


def apply_changes(state: StateDB, store: VectorStore,
                  changes: Sequence[DateChange]) -> tuple[list[Redated], list[LoadWarning]]:
    """Write the changes (Chroma's chunk metadata first, then SQLite); what moved and what to warn about."""
    moved = [c for c in changes if c.redated is not None]
    chunks = chunk_ids_of(state.conn, [c.write.doc_id for c in moved])
    ids, metadatas = [], []
    for change in moved:
        for chunk_id in chunks.get(change.write.doc_id, []):
            ids.append(chunk_id)
            metadatas.append({"date_ts": change.write.date_ts})
    if ids:
        store.update_metadata(ids, metadatas)
    write_dates(state.conn, [c.write for c in changes])
    return [c.redated for c in moved if c.redated], [c.warning for c in changes if c.warning]


def _recheck(stored: StoredDate, sources: list[tuple[str, str]], records: _RecordDates) -> DateChange | bool | None:
    """The change for one stored date; True when it is kept unverified (an old version kept no raw value)."""
    ingested_at = datetime.fromisoformat(stored.updated_at)  # a date after this was a parsing accident
    label = sources[0][0] if sources else stored.doc_id
    if stored.parser is not None:
        return _change(stored, reparse(stored.raw or "", stored.order, ingested_at), label)
    found = records.raw_date([key for key, kind in sources if kind == "json"])
    if found is not None:
        key, raw = found
        return _change(stored, reparse(raw, None, ingested_at), key)
    kinds = {kind for _, kind in sources}
    if stored.published and kinds & {"json", "feed"} and _looks_invented(stored, ingested_at):
        problem = (f"stored date {stored.published[:10]} looks invented by an older sitrep (the 1st of the month "
                   "it was ingested in) and its raw value was not kept; ingest the source again to recover it")
        return _change(stored, DocDate(None, "", None, problem), label)
    return bool(stored.published)


def _change(stored: StoredDate, dated: DocDate, label: str) -> DateChange | None:
    raw = dated.raw if dated.raw or stored.raw is not None else None  # no raw value stays NULL, not ""
    if (dated.iso, raw, dated.order, PARSER_VERSION) == (stored.published, stored.raw, stored.order, stored.parser):
        return None
    if dated.published is not None:
        date_ts = dated.published.timestamp()
    else:  # the ingestion time stands in: keep it if it already did, else when the document was first seen
        date_ts = stored.date_ts if stored.published is None else stored.first_seen_ts
    write = DateWrite(stored.doc_id, dated.iso, date_ts, raw, dated.order, PARSER_VERSION)
    if dated.iso == stored.published:
        return DateChange(write, None, None)
    redated = Redated(stored.doc_id, label, stored.published, dated.iso)
    return DateChange(write, redated, None if dated.published else LoadWarning(label, dated.warning()))


def _looks_invented(stored: StoredDate, ingested_at: datetime) -> bool:
    m = _INVENTED.fullmatch(stored.published or "")
    first_seen = datetime.fromtimestamp(stored.first_seen_ts, ingested_at.tzinfo)
    return bool(m) and int(m.group(1)) in (ingested_at.month, first_seen.month)


class _RecordDates:
    """Raw dates of JSON/JSONL records, read again from their files (each file once)."""

    def __init__(self) -> None:
        self._files: dict[str, dict[str, str]] = {}

    def raw_date(self, source_keys: list[str]) -> tuple[str, str] | None:
        """(source key, raw date) of the first of ``source_keys`` whose file still holds that record."""
        for key in source_keys:
            dates = self._file_of(key)
            if dates is not None and key in dates:
                return key, dates[key]
        return None

    def _file_of(self, key: str) -> dict[str, str] | None:
        # A key is "<absolute path>#<record>"; the path itself may contain "#".
        for at in (i for i, ch in enumerate(key) if ch == "#"):
            path = key[:at]
            if path not in self._files and path.lower().endswith((".json", ".jsonl")) and Path(path).is_file():
                self._files[path] = self._load(Path(path))
            if path in self._files:
                return self._files[path]
        return None

    @staticmethod
    def _load(path: Path) -> dict[str, str]:
        try:
            return {a.source_key: a.published_raw for a in load_file(path) if isinstance(a, Article)}
        except SourceError as exc:
            log.info("dates.legacy_unreadable path=%s error=%s", path, exc)
            return {}
