"""Slack text and Block Kit: answers as messages, and Slack's markup back to plain text.

Everything that reaches Slack from an article or a model passes through :func:`escape` (or
:func:`markdown_to_mrkdwn`, which escapes first): ``&``, ``<`` and ``>`` become entities, so
``<!channel>``, ``<!here>``, ``<@U123>`` and ``<javascript:…|x>`` in article text render as inert text,
plain ``@channel``/``@here``/``@everyone`` get a word joiner so they cannot notify anyone, and bidi override
characters (which could make a Sources line read backwards) are dropped. The only links sitrep emits are
built by :func:`link`, which accepts http(s) URLs only. Text objects carry ``verbatim: true`` so Slack does
not auto-link or auto-mention anything in them either. A message's fallback ``text`` (notifications, screen
readers) is plain text: :func:`markdown_to_plain`, escaped the same way.

Slack's limits: a section's text < 3,000 characters, < 50 blocks per message. A long answer is split at
paragraph/line/sentence boundaries (never inside a link or an entity) and continues in further messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from bot.answer.results import Answer, Citation

SECTION_LIMIT = 2900  # Slack rejects section text of 3,000 characters or more
MAX_BLOCKS = 45  # Slack allows 50 blocks per message; stay clear of it
MAX_MESSAGE_CHARS = 12_000  # keeps a message well under Slack's total payload limits
MAX_ANSWER_CHARS = 60_000  # beyond this an answer is cut (a runaway model), with a note
MAX_URL_CHARS = 2000
MAX_LABEL_CHARS = 300

FEEDBACK_BLOCK_ID = "sitrep_feedback"
FEEDBACK_UP = "sitrep_feedback_up"
FEEDBACK_DOWN = "sitrep_feedback_down"
FEEDBACK_REASON = "sitrep_feedback_reason"

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Bidi embeddings, overrides and isolates: an unbalanced one reorders everything after it on the line.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_BROADCAST = re.compile(r"(?<!\w)@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)
_WORD_JOINER = "\u2060"


FEEDBACK_REASONS: dict[str, str] = {
    "outdated": "Outdated",
    "wrong_figure": "Wrong figure",
    "missing_source": "Missing source",
    "misattributed": "Misattributed",
}


@dataclass(frozen=True)
class SlackMessage:
    """One Slack message: fallback ``text`` (notifications, screen readers) and ``blocks``."""

    text: str
    blocks: list[dict[str, object]] = field(default_factory=list)

    def post_kwargs(self) -> dict[str, object]:
        """Arguments for ``chat.postMessage``/``chat.update``/``respond``: link unfurling off."""
        kwargs: dict[str, object] = {"text": self.text, "unfurl_links": False, "unfurl_media": False}
        if self.blocks:
            kwargs["blocks"] = self.blocks
        return kwargs


# -- escaping and links -------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Make untrusted text inert in Slack: entities for ``& < >``, no broadcast mentions, no control chars."""
    text = _BIDI.sub("", _CONTROL.sub("", text))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub("@" + _WORD_JOINER, text)


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def safe_url(url: str) -> str | None:
    """The URL ready for a Slack link, or None unless it is a plain http(s) URL with a host."""
    url = url.strip()
    if (not url or len(url) > MAX_URL_CHARS or any(ch.isspace() for ch in url) or _CONTROL.search(url)
            or _BIDI.search(url)):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    # "|" would end the URL inside <url|label>; & < > must be entities inside Slack's link syntax.
    return url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")


def link(url: str, label: str) -> str:
    """``<url|label>`` for an http(s) URL; just the (escaped) label otherwise."""
    label = escape(_one_line(label)[:MAX_LABEL_CHARS]) or "link"
    target = safe_url(url)
    return f"<{target}|{label}>" if target else label


def _one_line(text: str) -> str:
    # Titles and outlets come from articles: no line breaks or backticks that could break the layout.
    return re.sub(r"\s+", " ", text.replace("`", "'")).strip()


# -- markdown to mrkdwn ---------------------------------------------------------------------------------

_FENCE = re.compile(r"```.*?```", re.DOTALL)
_CODE = re.compile(r"`[^`\n]+`")
# The URL may hold one level of balanced parentheses (Wikipedia-style links).
_MD_LINK = re.compile(r"\[([^\]\n]{1,300})\]\(((?:[^()\s]|\([^()\s]*\)){1,2000})\)")
_HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+", re.MULTILINE)
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_BOLD_MARK = "\x01"  # placeholder so a converted *bold* is not mistaken for markdown *italic*


def markdown_to_mrkdwn(markdown: str) -> str:
    """Convert the markdown a model writes into Slack mrkdwn, escaping everything first."""
    text = escape(markdown.replace("\r\n", "\n"))
    stash: list[str] = []

    def keep(match: re.Match[str]) -> str:
        stash.append(match.group(0))
        return f"\x00{len(stash) - 1}\x00"

    text = _FENCE.sub(keep, text)
    text = _CODE.sub(keep, text)
    text = _MD_LINK.sub(lambda m: _md_link(m.group(1), m.group(2)), text)
    text = _HEADING.sub(lambda m: f"{_BOLD_MARK}{m.group(1)}{_BOLD_MARK}", text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}• ", text)
    text = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m.group(1) or m.group(2)}{_BOLD_MARK}", text)
    text = _ITALIC.sub(r"_\1_", text)
    text = _STRIKE.sub(r"~\1~", text)
    text = text.replace(_BOLD_MARK, "*")
    return re.sub(r"\x00(\d+)\x00", lambda m: stash[int(m.group(1))], text)


def _md_link(label: str, escaped_url: str) -> str:
    # ``label`` is already escaped; the URL is checked after undoing the escaping.
    target = safe_url(_unescape(escaped_url))
    return f"<{target}|{label}>" if target else label


_FENCE_MARK = re.compile(r"```[^\n`]*")
_PLAIN_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (_FENCE_MARK, " "),
    (_MD_LINK, r"\1"),
    (_HEADING, r"\1:"),
    (_BULLET, r"\1• "),
    (_BOLD, r"\1\2"),
    (_ITALIC, r"\1"),
    (_STRIKE, r"\1"),
    (re.compile(r"`([^`\n]+)`"), r"\1"),
    (re.compile(r"^[ \t]*>[ \t]?", re.MULTILINE), ""),
)


def markdown_to_plain(markdown: str) -> str:
    """Markdown as plain text (no ``**``, ``#``, fences or link syntax) for a message's fallback ``text``.

    The result is not escaped; pass it through :func:`escape` before it goes to Slack."""
    text = markdown.replace("\r\n", "\n")
    for pattern, replacement in _PLAIN_RULES:
        text = pattern.sub(replacement, text)
    return text


def truncate_mrkdwn(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters (with "…"), never inside a link or an entity."""
    if len(text) <= limit:
        return text
    cut = limit - 1
    while cut > 0 and not _safe_cut(text, cut):
        cut -= 1
    return text[:cut].rstrip() + "…"


# -- splitting ------------------------------------------------------------------------------------------

_SEPARATORS = ("\n\n", "\n", ". ", " ")


def split_mrkdwn(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Split mrkdwn into pieces of at most ``limit`` characters at the most natural boundary.

    A cut never falls inside ``<…>`` (a link) or ``&…;`` (an entity); an open code fence is closed at the
    cut and reopened in the next piece.
    """
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = _cut_point(rest, limit - 3)  # room to close a code fence
        piece, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if piece.count("```") % 2:
            piece += "```"
            rest = "```" + rest
        if piece:
            pieces.append(piece)
    if rest:
        pieces.append(rest)
    return pieces


def _cut_point(text: str, limit: int) -> int:
    window = text[:limit]
    for separator in _SEPARATORS:
        index = window.rfind(separator)
        while index > 0:
            cut = index + len(separator)
            if _safe_cut(text, cut):
                return cut
            index = window.rfind(separator, 0, index)
    cut = limit
    while cut > 1 and not _safe_cut(text, cut):
        cut -= 1
    return cut if cut > 1 else limit


def _safe_cut(text: str, cut: int) -> bool:
    head = text[:cut]
    if head.count("<") != head.count(">"):  # only links have raw angle brackets after escaping
        return False
    return not re.search(r"&[a-z]{0,4}$", head)  # not inside &amp; &lt; &gt;


# -- answers --------------------------------------------------------------------------------------------


def format_date(published: str | None) -> str:
    """``12 Oct 2020`` from an ISO date or datetime; ``date unknown`` when missing."""
    if not published:
        return "date unknown"
    try:
        when = datetime.fromisoformat(published.replace("Z", "+00:00"))
        return f"{when.day} {when:%b %Y}"
    except ValueError:
        return escape(published[:25])


def source_line(citation: Citation) -> str:
    """``[n] <url|title> — outlet, date`` (the title alone when there is no usable URL)."""
    title = _one_line(citation.title) or _one_line(citation.url) or "Untitled article"
    outlet = escape(_one_line(citation.source)[:MAX_LABEL_CHARS]) or "unknown outlet"
    date = format_date(citation.published)
    if citation.published and citation.date_source == "ingested":
        date = f"ingested {date} — no publication date"
    return f"[{citation.n}] {link(citation.url, title)} — {outlet}, {date}"


def _section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}


def _context(text: str) -> dict[str, object]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text, "verbatim": True}]}


def _feedback_block(answer_id: str) -> dict[str, object]:
    return {
        "type": "actions",
        "block_id": FEEDBACK_BLOCK_ID,
        "elements": [
            {
                "type": "button",
                "action_id": FEEDBACK_UP,
                "text": {"type": "plain_text", "text": "👍 Helpful", "emoji": True},
                "value": answer_id,
            },
            {
                "type": "button",
                "action_id": FEEDBACK_DOWN,
                "text": {"type": "plain_text", "text": "👎 Not right", "emoji": True},
                "value": answer_id,
            },
        ],
    }


def _meta_line(answer: Answer) -> str:
    parts = []
    if answer.as_of and not answer.abstained:
        parts.append(f"As of {format_date(answer.as_of)}")
    parts.append("from ingested articles only" + (" (extractive)" if answer.mode == "extractive" else ""))
    parts.extend(escape(_one_line(note)) for note in answer.notes if note.strip())
    return " · ".join(parts)


def answer_blocks(answer: Answer, answer_id: str | None = None) -> list[dict[str, object]]:
    """All blocks of an answer, in order, before they are packed into messages."""
    body = answer.answer.strip() or "No answer was produced."
    if len(body) > MAX_ANSWER_CHARS:
        body = body[:MAX_ANSWER_CHARS].rstrip() + "\n\n… (cut here: too long for Slack)"
    blocks = [_section(piece) for piece in split_mrkdwn(markdown_to_mrkdwn(body))]
    if answer.header:  # built by sitrep itself (untrusted parts escaped), so shown as mrkdwn
        blocks.insert(0, _section(truncate_mrkdwn(answer.header, SECTION_LIMIT)))
    blocks.append(_context(_meta_line(answer)))
    if answer.citations and not answer.abstained:
        lines = "\n".join(source_line(c) for c in sorted(answer.citations, key=lambda c: c.n))
        pieces = split_mrkdwn(lines)
        blocks.append({"type": "divider"})
        blocks.append(_section("*Sources*\n" + pieces[0]))
        blocks.extend(_section(piece) for piece in pieces[1:])
    if answer_id:
        blocks.append(_feedback_block(answer_id))
    return blocks


def _block_chars(block: dict[str, object]) -> int:
    text = block.get("text")
    if isinstance(text, dict):
        return len(str(text.get("text", "")))
    return 200  # context, divider, actions: small


def pack_blocks(blocks: list[dict[str, object]], fallback: str) -> list[SlackMessage]:
    """Pack blocks into as few messages as Slack's per-message limits allow, in order."""
    messages: list[list[dict[str, object]]] = [[]]
    size = 0
    for block in blocks:
        chars = _block_chars(block)
        if messages[-1] and (len(messages[-1]) >= MAX_BLOCKS or size + chars > MAX_MESSAGE_CHARS):
            messages.append([])
            size = 0
        messages[-1].append(block)
        size += chars
    first_text = truncate_mrkdwn(fallback, SECTION_LIMIT)
    return [
        SlackMessage(text=first_text if i == 0 else f"(continued, part {i + 1} of {len(messages)})", blocks=b)
        for i, b in enumerate(messages)
    ]


def render_answer(answer: Answer, answer_id: str | None = None) -> list[SlackMessage]:
    """An answer as Slack messages: answer text, an as-of line, Sources, and 👍/👎 buttons (when
    ``answer_id`` is given). Usually one message; a long answer continues in further messages."""
    fallback = escape(_one_line(markdown_to_plain(answer.answer[:MAX_ANSWER_CHARS])))
    if answer.header:
        fallback = f"{answer.header}: {fallback}"
    return pack_blocks(answer_blocks(answer, answer_id), fallback or "sitrep answer")


def render_notice(text: str) -> SlackMessage:
    """A short notice (refusal, error, busy) as one message; the text is treated as untrusted."""
    safe = escape(text)
    return SlackMessage(text=truncate_mrkdwn(safe, SECTION_LIMIT),
                        blocks=[_section(piece) for piece in split_mrkdwn(safe)][:MAX_BLOCKS])


def feedback_reason_message(answer_id: str) -> SlackMessage:
    """The follow-up to a 👎: a menu of reasons."""

    options = [
        {"text": {"type": "plain_text", "text": label}, "value": f"{answer_id}:{key}"}
        for key, label in FEEDBACK_REASONS.items()
    ]
    return SlackMessage(
        text="Thanks. What was wrong with the answer?",
        blocks=[
            {
                "type": "section",
                "block_id": FEEDBACK_BLOCK_ID,
                "text": {"type": "mrkdwn", "text": "Thanks. What was wrong with the answer?"},
                "accessory": {
                    "type": "static_select",
                    "action_id": FEEDBACK_REASON,
                    "placeholder": {"type": "plain_text", "text": "Choose a reason"},
                    "options": options,
                },
            }
        ],
    )


# -- streaming -----------------------------------------------------------------------------------------

_BROADCAST_WORDS = ("channel", "here", "everyone")
# Streamed text is shown as markdown: "](" would start an inline link and "]:" a link definition, whatever
# the URL's scheme. A word joiner between the two characters keeps the brackets and breaks the syntax.
_MD_LINK_START = re.compile(r"\](?=[(:])")


class StreamNeutralizer:
    """:func:`escape` for text that arrives in pieces (a streamed model answer), plus no markdown links.

    Escaping ``& < >`` is per character, so it works piecewise; a broadcast word split across pieces
    (``"@chan"`` + ``"nel"``) and a ``]`` that may be followed by ``(`` are held back until the next piece.
    """

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, delta: str) -> str:
        """The safe text that can be sent now."""
        text = self._pending + delta
        hold = len(text)
        at = text.rfind("@")
        tail = text[at + 1 :].lower() if at != -1 else None
        if tail is not None and any(w.startswith(tail) and w != tail for w in _BROADCAST_WORDS):
            hold = at
        elif text.endswith("]"):
            hold = len(text) - 1
        self._pending, text = text[hold:], text[:hold]
        return self._neutralize(text)

    def flush(self) -> str:
        """Whatever was held back, escaped."""
        text, self._pending = self._pending, ""
        return self._neutralize(text)

    @staticmethod
    def _neutralize(text: str) -> str:
        return _MD_LINK_START.sub("]" + _WORD_JOINER, escape(text))


# -- Slack markup to plain text (incoming messages) -------------------------------------------------------

_SLACK_MARKUP = re.compile(r"<([^<>]+)>")


def plain_text_from_slack(text: str, bot_user_id: str | None = None) -> str:
    """A user's Slack message as plain text: the bot's own mention removed, links and mentions readable."""

    def replace(match: re.Match[str]) -> str:
        target, _, label = match.group(1).partition("|")
        if target.startswith("@"):
            return "" if target[1:] == bot_user_id else "@" + (label or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            return ""
        return label or target

    plain = _unescape(_SLACK_MARKUP.sub(replace, text))
    return re.sub(r"[ \t]+", " ", plain).strip()


def slack_urls(text: str) -> list[str]:
    """The http(s) URLs in a Slack message (Slack wraps them as ``<url>`` or ``<url|label>``)."""
    urls = []
    for match in _SLACK_MARKUP.finditer(text):
        target = _unescape(match.group(1).partition("|")[0])
        if safe_url(target):
            urls.append(target)
    return urls
