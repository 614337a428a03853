"""Text normalization, content hashing and sentence splitting (with character offsets)."""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Zero-width and bidi-control characters: invisible, but they break matching and hashing. The
# zero-width non-joiner (U+200C) stays: it is part of Dari, Pashto and Persian spelling.
_INVISIBLE = re.compile("[\u200b\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n{2,}")

# Curly quotes and dashes folded to their ASCII forms. A chain of ``str.replace`` (no replacement is itself folded,
# so the order does not matter) is far cheaper than ``str.translate`` with a table, which looks up every character.
_QUOTE_FOLD = (("\u2018", "'"), ("\u2019", "'"), ("\u201c", '"'), ("\u201d", '"'), ("\u2013", "-"), ("\u2014", "-"))
_RUNS_OF_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Canonical form of an article's text: NFC, no invisible characters, tidy whitespace.

    Paragraphs stay one per line, so offsets into the normalized text point at readable passages.
    """
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _INVISIBLE.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n", "\n".join(lines)).strip()


def content_hash(normalized_text: str) -> str:
    """Hash that identifies a story text across outlets: case, quote style and dashes don't matter."""
    folded = normalized_text
    for curly, plain in _QUOTE_FOLD:
        folded = folded.replace(curly, plain)
    folded = _RUNS_OF_SPACE.sub(" ", folded.casefold())
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()


_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "gen", "lt", "col", "maj", "capt", "sgt", "gov", "sen", "rep", "st", "jr", "sr",
    "prof", "no", "vs", "etc", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
    "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "u.n", "e.g", "i.e", "approx", "est", "dept", "mt",
}

# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before whitespace, or at a
# newline (paragraph end). Afghan names and acronyms make abbreviations common, hence the list above.
_BOUNDARY = re.compile(r"[.!?؟۔]+[\"'”’»)\]]*(?=\s)|\n")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the sentences in ``text``, whitespace trimmed."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        if match.group() != "\n":
            # Only the end of the span matters; a 5,000-character "word" must not make this quadratic.
            word = re.search(r"([\w.]+)[.!?]*[\"'”’»)\]]*$", text[max(start, end - 64) : end])
            token = word.group(1).rstrip(".").lower() if word else ""
            if token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha()):
                continue
            nxt = text[end : end + 3].lstrip()
            # "5.5 million" or "said. and" (lower-case continuation) are not sentence ends.
            if nxt[:1].islower() or nxt[:1].isdigit():
                continue
        _append_trimmed(text, start, end, spans)
        start = end
    _append_trimmed(text, start, len(text), spans)
    return spans


def _append_trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))


# How a sentence of prose ends: . ! ? … (or Arabic-script stops), a list-introducing colon, closing quotes after.
_PROSE_END = re.compile(r"[.!?…:؟۔][\"'”’»)\]]*$")
# "Patients in ICU: 113" — a labelled figure is data, whatever its punctuation ("Hearings: Name-calling, death
# threats, intense pressure on Pence", a headline after its kicker, is not).
_LABELLED_VALUE = re.compile(r":\s*[$£€]?\d")


def is_heading(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` ends a line that does not end like prose: a headline, a link to another story
    ("Pause on tax? Biden officials say …"), a subheading, or a passage cut off at a chunk's edge — not a
    sentence to quote on its own."""
    if end != len(text) and text[end] != "\n":
        return False  # a sentence inside a paragraph: its line goes on
    line = text[start:end].rstrip()
    if _PROSE_END.search(line) or _LABELLED_VALUE.search(line):
        return False
    # A line broken inside a sentence ("…after overnight fighting," / "police told travellers…") goes on.
    following = text[end:].lstrip()[:1]
    return not (line.endswith((",", ";", "-", "–", "—")) or following.islower())


def sentences(text: str) -> list[str]:
    """The sentences of ``text``."""
    return [text[s:e] for s, e in sentence_spans(text)]
