"""Terminal rendering of an :class:`~bot.answer.results.Answer`: the text, then its numbered sources."""

from __future__ import annotations

from bot.answer.results import Answer, Citation


def source_line(citation: Citation) -> str:
    """``[n] title — outlet, 2020-10-15 <url>`` (the URL only when there is one); an undated article's
    date reads ``ingested 2020-10-15 — no publication date``."""
    date = citation.published[:10] if citation.published else "date unknown"
    if citation.published and citation.date_source == "ingested":
        date = f"ingested {date} — no publication date"
    line = f"[{citation.n}] {citation.title or '(untitled)'} — {citation.source or 'unknown outlet'}, {date}"
    return f"{line} <{citation.url}>" if citation.url else line


def render_sources(answer: Answer) -> str:
    """The "Sources:" block and any notes, or an empty string when there are neither."""
    lines = []
    if answer.citations:
        lines.append("Sources:")
        lines.extend(source_line(c) for c in answer.citations)
    lines.extend(f"Note: {note}" for note in answer.notes)
    return "\n".join(lines)


def render_answer(answer: Answer) -> str:
    """The whole answer for a terminal."""
    tail = render_sources(answer)
    return f"{answer.answer}\n\n{tail}" if tail else answer.answer
