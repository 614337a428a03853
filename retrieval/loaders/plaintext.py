"""Plain-text and Markdown articles: the title, outlet, date and link their own text gives.

Copied-and-pasted news arrives as plain text with its metadata written into the top of the text, in a
few common shapes (all documented in the README):

- a title: a Markdown heading (``# ...`` or a line underlined with ``===``), a ``Title:``/``Headline:``
  line, or a first line that reads as a headline (short, no full stop, followed by the story);
- header lines near the top: ``Published:``/``Date:``/``Posted:``/``Updated:``, ``Source:``/``Outlet:``/
  ``Publisher:``/``Agency:``, ``URL:``/``Link:``, ``By:``/``Author:``, or the same keys in Markdown front
  matter between ``---`` lines;
- a dateline: ``KABUL, 14 October 2020 (Reuters) - ...``, ``LASHKARGAH (AP) — ...``, or a line of its
  own such as ``*Lashkargah, 14 October 2020*``, or a date alone on a line.

Header, byline and date-only lines are metadata and leave the text; everything else (headings, datelines,
the story) stays as written. Without a title in the text, a file name made of words is used, else a
headline made from the lead sentence. Without a date, ``published`` stays None (the ingestion time stands
in later).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from retrieval.documents import Article
from retrieval.errors import SourceError
from retrieval.loaders.common import Origin
from retrieval.loaders.dates import parse_published
from retrieval.loaders.urls import canonical_url
from retrieval.outlets import outlet_for_url
from retrieval.text import sentences

# Metadata is looked for among the first lines only: further down, "Date: ..." is part of the story.
_TOP_LINES = 15
_HEADLINE_MAX_CHARS = 150
_HEADLINE_MAX_WORDS = 25
_LEAD_TITLE_CHARS = 120  # a lead sentence up to this long is a title as it is
_CLAUSE_MIN, _CLAUSE_MAX = 40, 150  # else it is cut at a clause boundary in this range
_WORD_CUT = 110  # else at a word boundary, with an ellipsis
_OUTLET_MAX_WORDS = 8
_LEAD_SCAN_CHARS = 2000

_KEYS = {
    "title": "title", "headline": "title",
    "source": "outlet", "outlet": "outlet", "publisher": "outlet", "publication": "outlet", "agency": "outlet",
    "published": "date", "published on": "date", "published at": "date", "publication date": "date",
    "date": "date", "dated": "date", "posted": "date", "posted on": "date",
    "updated": "updated", "last updated": "updated",
    "url": "url", "link": "url", "source url": "url", "original url": "url", "canonical": "url",
    "by": "byline", "author": "byline", "authors": "byline", "byline": "byline",
}
_HEADER = re.compile(r"^[*_]*(?P<key>[A-Za-z][A-Za-z ]{0,20}?)[*_]*\s*:[*_]*\s+(?P<value>\S.*?)[*_\s]*$")
_MD_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT_RULE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FRONT_MATTER_FENCE = re.compile(r"^---[ \t]*$")
_BYLINE = re.compile(r"^[*_]*By\s+[A-Z][\w.'’-]*(?:[ ,]+[\w.'’&-]+){0,8}[*_]*$")
_EMPHASIS = re.compile(r"^[*_]+|[*_]+$")
# A place (KABUL, Lashkar Gah, KABUL, Afghanistan), then a date with a year and/or an agency in
# brackets, then a dash: the wire-copy dateline. A hyphen must have spaces around it ("Nad-e Ali" is a name).
_DATELINE = re.compile(
    r"^[*_]*(?P<place>[A-Z][\w.'’-]*(?: [A-Z][\w.'’-]*){0,3}(?:, ?[A-Z][\w.'’-]*(?: [A-Z][\w.'’-]*){0,2})?)"
    r"(?:, ?(?P<date>\d{4}-\d{2}-\d{2}|[^()\n–—]{0,30}?\b(?:19|20)\d\d\b))?"
    r"(?: ?\((?P<agency>[A-Za-z][A-Za-z&.'’ -]{1,39})\))?"
    r"[*_]*(?P<end>\s*[–—]\s*|\s+--?\s+|\s*$)"
)
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_HASHLIKE = re.compile(r"^(?=.*\d)[0-9a-f]{6,}$|^\d{5,}$", re.IGNORECASE)
_TRAILING_FILLER = re.compile(
    r"[\s,;:–—-]+$|\s+(?:the|a|an|of|in|on|at|to|for|by|with|and|or|but|from|as|that|which|who)$", re.IGNORECASE
)
_CLAUSE_BREAK = re.compile(r", | – | — | - |; ")


@dataclass
class TextMeta:
    """What the top of a text says about it, and the text without its metadata lines."""

    body: str
    title: str = ""
    outlet: str = ""
    published: datetime | None = None
    url: str = ""
    updated: datetime | None = None  # an "Updated:" line: the date when there is no publication date


def article_from_text(text: str, origin: Origin) -> Article:
    """The article in a decoded plain-text or Markdown document (see the module docstring for the forms).

    ``origin.outlet`` (the user's ``--source-name``) wins over an outlet found in the text, and
    ``origin.url`` over a ``URL:`` line. Raises SourceError when nothing but metadata is left.
    """
    meta = read_metadata(text)
    if not meta.body.strip():
        raise SourceError(origin.where, f"{origin.where} has header lines but no article text")
    url = origin.url or meta.url
    return Article(
        text=meta.body,
        source_key=origin.source_key,
        title=meta.title or name_title(origin.fallback_title) or lead_headline(meta.body),
        url=url,
        source=origin.outlet or meta.outlet or (outlet_for_url(meta.url) if meta.url else ""),
        published=meta.published,
        kind=origin.kind,
    )


def read_metadata(text: str) -> TextMeta:
    """Title, outlet, date and link from the top of ``text``, and ``text`` without the metadata lines."""
    lines = text.split("\n")
    meta = TextMeta(body="")
    drop: set[int] = set()
    start = _front_matter(lines, meta, drop)
    seen_content = False
    for index in _top_lines(lines, start, drop):
        line = lines[index].strip()
        if _header_line(line, meta) or _date_only_line(line, meta) or _BYLINE.match(line):
            drop.add(index)
            continue
        dateline = _dateline(line)
        if dateline is not None and dateline.whole_line:
            dateline.apply(meta)
            drop.add(index)
            continue
        if not seen_content:
            seen_content = True
            if _title_line(lines, index, meta):
                continue  # the lead paragraph, and more metadata, may follow the title
        elif _is_heading(lines, index):
            continue
        if dateline is not None:  # the lead paragraph opens with a dateline
            dateline.apply(meta)
        break
    if meta.published is None:
        meta.published = meta.updated
    body = "\n".join(line for i, line in enumerate(lines) if i not in drop)
    meta.body = re.sub(r"\n{3,}", "\n\n", body).strip("\n")  # no gap left where metadata lines were
    return meta


def _top_lines(lines: list[str], start: int, drop: set[int]) -> list[int]:
    """The indexes of the first non-blank lines after any front matter."""
    found = [i for i in range(start, len(lines)) if lines[i].strip() and i not in drop]
    return found[:_TOP_LINES]


def name_title(name: str) -> str:
    """A file or URL name as a title when it is made of words (``Helmand clashes update``), else "".

    Names a machine gave (``000 dea670cdc552c457``, ``1602677400``) are not titles.
    """
    words = name.split()
    if sum(1 for w in words if any(c.isalpha() for c in w)) < 2 or any(_HASHLIKE.match(w) for w in words):
        return ""
    return name


def lead_headline(body: str) -> str:
    """A headline made from the story's lead sentence, cut at a clause or word boundary when long."""
    # A paragraph ends at a blank line; inside it, lines may be hard-wrapped.
    for paragraph in re.split(r"\n\s*\n", body):
        line = _strip_dateline(" ".join(_EMPHASIS.sub("", part.strip().lstrip("#").strip())
                                        for part in paragraph.split("\n") if part.strip()))
        if line:
            break
    else:
        return ""
    line = line[:_LEAD_SCAN_CHARS]  # a file without blank lines is one long "paragraph"
    lead = (sentences(line) or [line])[0].rstrip(".!?;: ")
    if len(lead) <= _LEAD_TITLE_CHARS:
        return lead
    breaks = [m.start() for m in _CLAUSE_BREAK.finditer(lead) if _CLAUSE_MIN <= m.start() <= _CLAUSE_MAX]
    if breaks:
        return lead[: breaks[0]]
    cut = lead[:_WORD_CUT].rsplit(" ", 1)[0]
    while True:
        shorter = _TRAILING_FILLER.sub("", cut)
        if shorter == cut:
            return cut + "…"
        cut = shorter


def _front_matter(lines: list[str], meta: TextMeta, drop: set[int]) -> int:
    """Read a ``---`` front-matter block at the very top; returns the index after it (0 if none)."""
    top = next((i for i, line in enumerate(lines) if line.strip()), None)
    if top is None or not _FRONT_MATTER_FENCE.match(lines[top]):
        return 0
    for end in range(top + 1, min(len(lines), top + 40)):
        if _FRONT_MATTER_FENCE.match(lines[end]):
            for index in range(top + 1, end):
                _header_line(lines[index].strip().replace('"', ""), meta)
            drop.update(range(top, end + 1))
            return end + 1
    return 0


def _header_line(line: str, meta: TextMeta) -> bool:
    """Take a ``Key: value`` line with a known key and a value of the right shape; whether it was one."""
    match = _HEADER.match(line)
    kind = _KEYS.get(match.group("key").strip().lower()) if match else None
    if match is None or kind is None:
        return False
    value = match.group("value").strip()
    is_url = bool(re.match(r"^https?://\S+$", value, re.IGNORECASE))
    if kind == "title":
        meta.title = meta.title or _EMPHASIS.sub("", value)
    elif kind in ("url", "outlet") and is_url:  # "Source: https://..." names the page, not the outlet
        meta.url = meta.url or canonical_url(value)
    elif kind == "outlet" and len(value.split()) <= _OUTLET_MAX_WORDS:
        meta.outlet = meta.outlet or value
    elif kind in ("date", "updated"):
        when = parse_published(value) if _YEAR.search(value) else None
        if when is None:
            return False  # "Date: to be confirmed" is not a header sitrep understood; it stays in the text
        if kind == "date":
            meta.published = meta.published or when
        else:
            meta.updated = meta.updated or when
    elif kind != "byline":
        return False  # "Source: officials in Lashkargah said ..." is the story, not a header
    return True


def _date_only_line(line: str, meta: TextMeta) -> bool:
    """A line that is just a date ("Thursday, 15 October 2020")."""
    bare = _EMPHASIS.sub("", line).strip()
    if len(bare) > 40 or not _YEAR.search(bare):
        return False
    when = parse_published(bare)
    if when is None:
        return False
    meta.published = meta.published or when
    return True


@dataclass(frozen=True)
class _Dateline:
    published: datetime | None
    agency: str
    whole_line: bool  # the line is only the dateline ("*Lashkargah, 14 October 2020*")
    end: int  # where the story starts after it

    def apply(self, meta: TextMeta) -> None:
        meta.published = meta.published or self.published
        meta.outlet = meta.outlet or self.agency


def _dateline(line: str) -> _Dateline | None:
    """The dateline at the start of ``line``, if it has one with a date (with a year) or an agency."""
    match = _DATELINE.match(line)
    if match is None or not (match.group("date") or match.group("agency")):
        return None
    when = parse_published(match.group("date")) if match.group("date") else None
    if match.group("date") and when is None:
        return None
    # Alone on a line, only a place and a date is a dateline: "Helmand clashes (Update)" is a title.
    whole = match.end() == len(line) and not match.group("end").strip() and when is not None
    return _Dateline(when, (match.group("agency") or "").strip(), whole, match.end())


def _strip_dateline(line: str) -> str:
    dateline = _dateline(line)
    return line[dateline.end:] if dateline is not None and not dateline.whole_line else line


def _title_line(lines: list[str], index: int, meta: TextMeta) -> bool:
    """Take the first content line as the title when it is a heading or reads as a headline."""
    if meta.title:
        return False
    line = lines[index].strip()
    heading = _MD_HEADING.match(line)
    if heading:
        meta.title = heading.group(1).strip()
    elif _is_setext(lines, index) or _reads_as_headline(line, _next_line(lines, index)):
        meta.title = _EMPHASIS.sub("", line).strip()
    return bool(meta.title)


def _is_heading(lines: list[str], index: int) -> bool:
    return bool(_MD_HEADING.match(lines[index].strip()) or _SETEXT_RULE.match(lines[index]) or _is_setext(lines, index))


def _is_setext(lines: list[str], index: int) -> bool:
    return index + 1 < len(lines) and bool(_SETEXT_RULE.match(lines[index + 1])) and bool(lines[index].strip())


def _next_line(lines: list[str], index: int) -> str | None:
    """The line after ``index``: "" when it is blank, None at the end of the text."""
    return lines[index + 1].strip() if index + 1 < len(lines) else None


def _reads_as_headline(line: str, following: str | None) -> bool:
    """Short, a few words, capitalised, no full stop, and followed by more text that is not its continuation."""
    bare = _EMPHASIS.sub("", line).strip()
    words = bare.split()
    return (
        following is not None
        and 2 <= len(words) <= _HEADLINE_MAX_WORDS
        and len(bare) <= _HEADLINE_MAX_CHARS
        and not bare.endswith((".", ",", ";", ":", "…"))
        and (bare[0].isupper() or bare[0].isdigit() or bare[0] in "\"'“‘")
        and not re.match(r"^https?://", bare, re.IGNORECASE)
        # A hard-wrapped sentence goes on in lower case on the next line.
        and not (following[:1].islower())
    )
