"""Local files and folders to articles."""

from __future__ import annotations

import codecs
import logging
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from retrieval.documents import LoadFailure
from retrieval.errors import SourceError
from retrieval.loaders.common import LoadItem, Origin, guarded, readable_title
from retrieval.loaders.formats import SUPPORTED_SUFFIXES, format_of_suffix, parse_article
from retrieval.loaders.options import DEFAULT_OPTIONS, FetchOptions, format_size
from retrieval.loaders.records import records_from_json, records_from_jsonl, records_from_lines
from retrieval.loaders.text import NotUTF8Error, decode_text, looks_binary

log = logging.getLogger(__name__)

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


def count_path(path: Path) -> int | None:
    """About how many items :func:`iter_path` yields for ``path`` (a progress bar's total), or None when only
    loading tells (a JSON file's records). A JSONL file counts its lines, read in blocks (so a long line never
    sits in memory); anything unreadable counts as one item, its failure."""
    if not path.is_dir():
        return _count_file(path)
    total = 0
    for item in _walk(path):
        found = 1 if isinstance(item, LoadFailure) else _count_file(item)
        if found is None:
            return None
        total += found
    return total or 1  # no supported files: one failure


def _count_file(path: Path) -> int | None:
    fmt = format_of_suffix(path.suffix) if path.suffix.lower() in SUPPORTED_SUFFIXES else None
    if fmt == "json":
        return None
    if fmt != "jsonl":
        return 1
    lines, last = 0, b"\n"
    try:
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                lines, last = lines + block.count(b"\n"), block[-1:]
    except OSError:
        return 1
    return max(1, lines + (last != b"\n"))


def load_file(path: Path, *, outlet: str = "", options: FetchOptions = DEFAULT_OPTIONS) -> Iterator[LoadItem]:
    """Articles from one file of a supported type; ``source_key`` is its absolute path (``path#...`` for records).

    Raises SourceError when the whole file is unusable; bad records inside a JSON file are yielded as
    LoadFailures instead.
    """
    where = str(path)
    fmt = format_of_suffix(path.suffix)
    if fmt == "jsonl":
        yield from _stream_jsonl(path, where, outlet, options.max_file_bytes)
        return
    data = _read(path, where, options.max_file_bytes)
    if not data.strip():
        raise SourceError(where, f"{where} is empty")
    key = str(path.resolve())
    origin = Origin(where=where, source_key=key, outlet=outlet, fallback_title=readable_title(path.stem))
    if fmt == "json":
        yield from records_from_json(decode_text(data, where), where=where, base_key=key, outlet=outlet)
    elif fmt == "pdf":
        yield parse_article(fmt, data, replace(origin, kind="pdf"))
    elif fmt == "html":
        yield parse_article(fmt, _html_content(data, where), replace(origin, kind="html"))
    else:
        yield parse_article("text", decode_text(data, where), origin)


def _html_content(data: bytes, where: str) -> str | bytes:
    """HTML as text when it is UTF-8/UTF-16; otherwise the bytes, for trafilatura to decode by the page's
    own ``<meta charset>`` (web pages declare their encoding, unlike plain text files)."""
    try:
        return decode_text(data, where)
    except NotUTF8Error:
        return data


def _stream_jsonl(path: Path, where: str, outlet: str, max_line_bytes: int) -> Iterator[LoadItem]:
    """A JSONL file read line by line, so a file of any size never sits in memory.

    ``max_line_bytes`` (SITREP_MAX_FILE_BYTES) caps each line instead of the whole file. UTF-16 files
    (rare) are read whole, under the file cap.
    """
    key = str(path.resolve())
    try:
        _check_regular(path, where)
        handle = path.open("rb")
    except OSError as exc:
        raise _unreadable(where, exc) from exc
    with handle:
        head = handle.read(4096)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = decode_text(_read(path, where, max_line_bytes), where)
            yield from records_from_jsonl(text, where=where, base_key=key, outlet=outlet)
            return
        if looks_binary(head):
            raise SourceError(where, f"{where} looks like a binary file, not text")
        handle.seek(0)
        found = False
        for item in records_from_lines(_lines(handle, where, max_line_bytes), where=where, base_key=key,
                                       outlet=outlet):
            found = True
            yield item
    if not found:
        raise SourceError(where, f"{where} is empty")


def _lines(handle: BinaryIO, where: str, max_bytes: int) -> Iterator[tuple[int, str | LoadFailure]]:
    number = offset = 0
    while raw := handle.readline(max_bytes + 1):
        number += 1
        offset += len(raw)
        if len(raw) > max_bytes and not raw.endswith(b"\n"):
            while (rest := handle.readline(max_bytes + 1)) and not rest.endswith(b"\n"):
                pass  # the rest of the over-long line
            problem = f"{where} line {number} is over the {format_size(max_bytes)} limit (SITREP_MAX_FILE_BYTES)"
            yield number, LoadFailure(f"{where}#L{number}", problem)
            continue
        try:
            yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:  # the whole file is in another encoding, most likely
            raise NotUTF8Error(
                where,
                f"{where} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {offset - len(raw) + exc.start}); "
                "convert it (e.g. iconv -f cp1252 -t utf-8)",
            ) from exc


def _check_regular(path: Path, where: str) -> int:
    """The file's size; SourceError unless it is a regular file (a pipe or device would block or never end)."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise SourceError(where, f"{where} is not a regular file")
    return info.st_size


def _unreadable(where: str, exc: OSError) -> SourceError:
    if isinstance(exc, PermissionError):
        return SourceError(where, f"cannot read {where}: permission denied")
    if isinstance(exc, FileNotFoundError):
        return SourceError(where, f"no such file or folder: {where}")
    return SourceError(where, f"cannot read {where}: {exc.strerror or exc}")


def _read(path: Path, where: str, max_bytes: int) -> bytes:
    try:
        size = _check_regular(path, where)
        if size > max_bytes:
            raise _too_big(where, size, max_bytes)
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)  # the file may have grown since stat()
    except OSError as exc:
        raise _unreadable(where, exc) from exc
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
