"""Bytes to text: strict decoding with actionable errors, binary detection, and HTML stripping."""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser

from retrieval.errors import SourceError


class NotUTF8Error(SourceError):
    """Text in an encoding sitrep does not guess (cp1252, Latin-1, ...)."""


_SNIFF_BYTES = 8192
# Bytes below 0x20 that ordinary text contains: tab, newline, form feed, carriage return, escape.
_TEXT_CONTROLS = {0x09, 0x0A, 0x0C, 0x0D, 0x1B}
_MAX_CONTROL_RATIO = 0.05


def looks_binary(data: bytes) -> bool:
    """Whether ``data`` is evidently not text: a NUL byte, or many control bytes, near its start."""
    sample = data[:_SNIFF_BYTES]
    if b"\x00" in sample:
        return True
    controls = sum(1 for b in sample if b < 0x20 and b not in _TEXT_CONTROLS)
    return bool(sample) and controls / len(sample) > _MAX_CONTROL_RATIO


def decode_text(data: bytes, where: str) -> str:
    """Decode a text file: UTF-8 with or without BOM, or UTF-16 with a BOM. Newlines become ``\\n``.

    Raises SourceError for empty, binary or otherwise-encoded data: guessing an encoding silently
    corrupts names and figures, so the user is told how to convert the file instead.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            problem = f"{where} starts with a UTF-16 byte-order mark but is not valid UTF-16 ({exc.reason})"
            raise SourceError(where, problem) from exc
    else:
        if looks_binary(data):
            raise SourceError(where, f"{where} looks like a binary file, not text")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            bad = data[exc.start]
            raise NotUTF8Error(
                where,
                f"{where} is not UTF-8 text (byte 0x{bad:02x} at offset {exc.start}); "
                "convert it (e.g. iconv -f cp1252 -t utf-8)",
            ) from exc
    if not text.strip():
        raise SourceError(where, f"{where} is empty")
    return text.replace("\r\n", "\n").replace("\r", "\n")


_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "figure",
    "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre",
    "section", "table", "tbody", "td", "th", "thead", "tr", "ul",
})
_SKIP_TAGS = frozenset({"script", "style", "template", "noscript"})


class _TextCollector(HTMLParser):
    """Collects text, turning block-element boundaries into line breaks and dropping scripts/styles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment (a feed summary): one line per paragraph, whitespace tidied."""
    collector = _TextCollector()
    collector.feed(fragment)
    collector.close()
    lines = (re.sub(r"\s+", " ", line).strip() for line in "".join(collector.parts).split("\n"))
    return "\n".join(line for line in lines if line)
