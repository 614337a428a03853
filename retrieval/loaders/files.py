"""Local files and folders to articles."""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from retrieval.documents import LoadFailure
from retrieval.errors import SourceError
from retrieval.loaders.common import LoadItem, Origin, guarded, readable_title
from retrieval.loaders.html import article_from_html
from retrieval.loaders.options import DEFAULT_OPTIONS, FetchOptions, format_size
from retrieval.loaders.pdf import article_from_pdf
from retrieval.loaders.plaintext import article_from_text
from retrieval.loaders.records import records_from_json, records_from_jsonl
from retrieval.loaders.text import NotUTF8Error, decode_text

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".json", ".jsonl")
_DOMAIN_LIKE = re.compile(r"^(www\.[\w-]+(\.[\w-]+)+|[\w-]+(\.[\w-]+)+/)")


def iter_path(path: Path, *, outlet: str = "", options: FetchOptions = DEFAULT_OPTIONS) -> Iterator[LoadItem]:
    """Articles from a file, or from every supported file under a folder.

    A folder is walked recursively in name order, skipping hidden files and folders and, silently,
    files of other types; a file named explicitly must be of a supported type.
    """
    where = str(path)
    if path.is_dir():
        yield from _iter_folder(path, outlet=outlet, options=options)
    elif not os.path.lexists(path):
        hint = "; if it is a web address, add https:// in front" if _DOMAIN_LIKE.match(where) else ""
        yield LoadFailure(where, f"no such file or folder: {where}{hint}")
    elif path.suffix.lower() not in SUPPORTED_SUFFIXES:
        kind = f"'{path.suffix}'" if path.suffix else "(no extension)"
        yield LoadFailure(where, f"{where}: unsupported file type {kind}; sitrep reads {', '.join(SUPPORTED_SUFFIXES)}")
    else:
        yield from guarded(where, load_file(path, outlet=outlet, options=options))


def load_file(path: Path, *, outlet: str = "", options: FetchOptions = DEFAULT_OPTIONS) -> Iterator[LoadItem]:
    """Articles from one file of a supported type; ``source_key`` is its absolute path (``path#...`` for records).

    Raises SourceError when the whole file is unusable; bad records inside a JSON file are yielded as
    LoadFailures instead.
    """
    where = str(path)
    data = _read(path, where, options.max_file_bytes)
    if not data.strip():
        raise SourceError(where, f"{where} is empty")
    key = str(path.resolve())
    origin = Origin(where=where, source_key=key, outlet=outlet, fallback_title=readable_title(path.stem))
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        yield article_from_pdf(data, replace(origin, kind="pdf"))
    elif suffix in (".html", ".htm"):
        yield article_from_html(_html_content(data, where), replace(origin, kind="html"))
    elif suffix == ".json":
        yield from records_from_json(decode_text(data, where), where=where, base_key=key, outlet=outlet)
    elif suffix == ".jsonl":
        yield from records_from_jsonl(decode_text(data, where), where=where, base_key=key, outlet=outlet)
    else:
        yield article_from_text(decode_text(data, where), origin)


def _html_content(data: bytes, where: str) -> str | bytes:
    """HTML as text when it is UTF-8/UTF-16; otherwise the bytes, for trafilatura to decode by the page's
    own ``<meta charset>`` (web pages declare their encoding, unlike plain text files)."""
    try:
        return decode_text(data, where)
    except NotUTF8Error:
        return data


def _read(path: Path, where: str, max_bytes: int) -> bytes:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a pipe or device would block or never end
            raise SourceError(where, f"{where} is not a regular file")
        size = info.st_size
        if size > max_bytes:
            raise _too_big(where, size, max_bytes)
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)  # the file may have grown since stat()
    except PermissionError as exc:
        raise SourceError(where, f"cannot read {where}: permission denied") from exc
    except FileNotFoundError as exc:
        raise SourceError(where, f"no such file or folder: {where}") from exc
    except OSError as exc:
        raise SourceError(where, f"cannot read {where}: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise _too_big(where, len(data), max_bytes)
    return data


def _too_big(where: str, size: int, max_bytes: int) -> SourceError:
    return SourceError(
        where, f"{where} is {format_size(size)}, over the {format_size(max_bytes)} limit for a file "
        "(SITREP_MAX_FILE_BYTES)"
    )


def _iter_folder(folder: Path, *, outlet: str, options: FetchOptions) -> Iterator[LoadItem]:
    found = 0
    for item in _walk(folder):
        if isinstance(item, LoadFailure):
            yield item
            continue
        found += 1
        yield from guarded(str(item), load_file(item, outlet=outlet, options=options))
    if not found:
        yield LoadFailure(str(folder), f"no supported files ({', '.join(SUPPORTED_SUFFIXES)}) in {folder}")


def _walk(folder: Path) -> Iterator[Path | LoadFailure]:
    """Supported files under ``folder`` in name order, one directory listing in memory at a time.

    Symbolic links to folders are not followed (they can loop); links to files are.
    """
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as exc:
        yield LoadFailure(str(folder), f"cannot read folder {folder}: {exc.strerror or exc}")
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(path)
        elif path.suffix.lower() in SUPPORTED_SUFFIXES and entry.is_file():
            yield path
        else:
            log.debug("skipping unsupported file path=%s", path)
