"""JSON and JSONL records to articles.

A record is an object with ``text`` (required) and optional ``title``, ``url``, ``published``,
``source`` and ``id``. Exports that name the date otherwise (``publish_date``, ``published_at``,
``datePublished``, ``pubDate``, ``date``) are read too when ``published`` is absent.

Each record's ``source_key`` is ``<base>#<id>`` when it has an id, else
``<base>#L<line>`` (JSONL) or ``<base>#<index>`` (JSON, 0-based), where ``<base>`` is the file's
absolute path or the canonical URL the records came from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from retrieval.documents import Article, LoadFailure
from retrieval.errors import SourceError
from retrieval.loaders.common import LoadItem
from retrieval.loaders.dates import parse_published

_LIST_KEYS = ("articles", "items", "records")
_DATE_KEYS = ("published", "publish_date", "published_at", "datePublished", "pubDate", "date")


def records_from_json(text: str, *, where: str, base_key: str, outlet: str = "") -> Iterator[LoadItem]:
    """Articles from a JSON document: a list of records, one record, or ``{"articles"|"items"|"records": [...]}``.

    A bad record is a LoadFailure naming its index; the others still load. Raises SourceError when
    the document is not JSON or holds no records.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = "; if it has one record per line, name it .jsonl" if exc.msg == "Extra data" else ""
        raise SourceError(
            where, f"{where} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}){hint}"
        ) from exc
    records = _record_list(data)
    if records is None:
        raise SourceError(
            where,
            f'{where} holds no records: expected a list of objects, an object with "text", '
            'or {"articles": [...]}',
        )
    if not records:
        raise SourceError(where, f"{where} holds an empty list of records")
    seen: dict[str, str] = {}
    for index, record in enumerate(records):
        place = _Place(where, f"{where} record [{index}]", str(index), base_key)
        yield _load_record(record, place, outlet=outlet, seen=seen)


def records_from_jsonl(text: str, *, where: str, base_key: str, outlet: str = "") -> Iterator[LoadItem]:
    """Articles from JSON Lines, one record per line; blank lines are ignored.

    A malformed line is a LoadFailure naming the file and the line number; the other lines still load.
    """
    return records_from_lines(enumerate(text.split("\n"), start=1), where=where, base_key=base_key, outlet=outlet)


def records_from_lines(lines: Iterable[tuple[int, str | LoadFailure]], *, where: str, base_key: str,
                       outlet: str = "") -> Iterator[LoadItem]:
    """Articles from numbered JSON Lines as they are read (a line that could not be read is its failure)."""
    seen: dict[str, str] = {}
    for number, line in lines:
        if isinstance(line, LoadFailure):
            yield line
            continue
        if not line.strip():
            continue
        place = _Place(where, f"{where} line {number}", f"L{number}", base_key)
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problem = f"{place.label} is not valid JSON ({exc.msg} at column {exc.colno})"
            yield LoadFailure(place.failure_source, problem)
            continue
        yield _load_record(record, place, outlet=outlet, seen=seen)


def _record_list(data: object) -> list[object] | None:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in _LIST_KEYS:
            if isinstance(data.get(key), list):
                return data[key]
        if "text" in data:
            return [data]
    return None


@dataclass(frozen=True)
class _Place:
    """Where a record sits: ``label`` names it in messages, ``position`` is ``L<line>`` or the index."""

    where: str
    label: str
    position: str
    base_key: str

    @property
    def failure_source(self) -> str:
        return f"{self.where}#{self.position}"


def _nested_hint(record: dict[str, object]) -> str:
    """A record that only wraps articles (``{"search_result": [{"text": …}, …]}``): say where they are."""
    for name, value in record.items():
        if isinstance(value, list) and any(isinstance(v, dict) and isinstance(v.get("text"), str) for v in value):
            return f' (its "{name}" field holds {len(value)} records with text: write one article per record)'
    return ""


def _load_record(record: object, place: _Place, *, outlet: str, seen: dict[str, str]) -> LoadItem:
    """One record as an Article, or a LoadFailure saying what is wrong with it.

    ``seen`` maps the ids used so far in this file to where they were used: a repeated id would make
    the second record silently replace the first.
    """
    if not isinstance(record, dict):
        return LoadFailure(place.failure_source, f"{place.label} is not a JSON object")
    text = record.get("text")
    if not isinstance(text, str):
        problem = "has no text" if text is None else '"text" is not a string'
        return LoadFailure(place.failure_source, f'{place.label} {problem}: "text" is required{_nested_hint(record)}')
    if not text.strip():
        return LoadFailure(place.failure_source, f'{place.label} has an empty "text"')
    key = f"{place.base_key}#{place.position}"
    record_id = _string(record.get("id"))
    if record_id:
        if record_id in seen:
            return LoadFailure(
                place.failure_source, f"{place.label} repeats id {record_id!r} already used by {seen[record_id]}"
            )
        seen[record_id] = place.label
        key = f"{place.base_key}#{record_id}"
    raw_date = next((record[k] for k in _DATE_KEYS if record.get(k) not in (None, "")), None)
    return Article(
        text=text,
        source_key=key,
        title=_string(record.get("title")),
        url=_string(record.get("url")),
        source=outlet or _string(record.get("source")),
        published=parse_published(raw_date),
        kind="json",
        published_raw=_string(raw_date),
    )


def _string(value: object) -> str:
    return str(value).strip() if value is not None else ""
