"""Checking the citation markers of a generated answer against the sources it was given.

Rules (the contract: every ``[n]`` in an output maps to a citation, no citation names a passage that
was not retrieved):

- A marker must name a source that was in the prompt (``[1]``, ``[1, 2]``, ``[1-3]``, ``[Source 2]`` are
  understood); unknown markers are removed.
- **A sentence with no valid marker is dropped**, not kept with a warning: an editor reading the answer
  must be able to trust that every sentence shown is backed by a cited article, and a "marked" sentence
  would still end up in a Slack channel or a digest as if it were sourced. This includes preambles such as
  "Here is what the sources say:". There are no exceptions. A sentence whose content words appear in
  none of the passages it cites (a citation pasted on an unrelated claim) is dropped the same way. The
  number of dropped sentences is reported (``Verified.dropped``) and logged.
- Markers are renumbered 1..m in order of first use and written as ``[1][2]``.
- Each citation's ``quote`` is a sentence found verbatim in the cited chunk: the one that best supports
  the answer sentences citing it (``quote_for``; the default scores word overlap).
- ``as_of`` is the newest published date among the cited sources.

:class:`CitationChecker` works incrementally, so a streamed answer can be shown sentence by sentence as
each sentence is verified: the text it emits is exactly the final answer text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.context import Source, looks_like_injection
from bot.prompts import ABSTAIN_TOKEN
from bot.results import Citation
from retrieval.text import sentence_spans

_ID = r"(?:sources?\s*)?\d{1,4}"
MARKER = re.compile(rf"\[\s*({_ID}(?:\s*(?:,|;|and|–|-)\s*{_ID})*)\s*\]", re.IGNORECASE)
# Leading markers of a span belong to the sentence before it ("... killed. [1] Next ...").
_LEADING_MARKERS = re.compile(rf"(?:{MARKER.pattern}\s*)+", re.IGNORECASE)
# "killed.[1]" -> "killed. [1]" so the sentence boundary is seen before the marker.
_GLUED_MARKER = re.compile(r"([.!?][\"'”’)]*)(\[)")
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([.,;:!?])")
_MAX_RANGE = 20

QuoteFn = Callable[[Source, list[str]], str]


@dataclass
class Verified:
    """A checked answer: text whose markers all map to ``citations``."""

    text: str
    citations: list[Citation]
    as_of: str | None
    abstained: bool  # nothing supported survived (the model abstained or cited nothing valid)
    model_abstained: bool  # the model replied with the abstain token
    dropped: int = 0  # sentences dropped: no valid marker, or no word in common with what they cite
    removed_markers: int = 0  # markers naming no given source
    claims: dict[int, list[str]] = field(default_factory=dict)  # new n -> answer sentences citing it


def marker_ids(group: str) -> list[int]:
    """The source numbers in one marker's inside (``"1, 2"``, ``"1-3"``, ``"Source 4"``)."""
    numbers: list[int] = []
    for part in re.split(r"\s*(?:,|;|and)\s*", group, flags=re.IGNORECASE):
        bounds = [int(x) for x in re.findall(r"\d+", part)]
        if len(bounds) == 2 and 0 < bounds[1] - bounds[0] <= _MAX_RANGE:
            numbers.extend(range(bounds[0], bounds[1] + 1))
        else:
            numbers.extend(bounds)
    return numbers


def answer_spans(text: str) -> list[tuple[int, int]]:
    """Sentence spans of answer text, with markers that follow a sentence's full stop kept with it."""
    spans: list[tuple[int, int]] = []
    for start, end in sentence_spans(text):
        lead = _LEADING_MARKERS.match(text, start, end)
        if spans and lead:
            prev_start, _ = spans[-1]
            cut = lead.end()
            while cut > start and text[cut - 1].isspace():
                cut -= 1
            spans[-1] = (prev_start, cut)
            if cut >= end:
                continue
            start = lead.end()
        spans.append((start, end))
    return spans


def strip_markers(text: str) -> str:
    """``text`` without any citation markers (for scoring a claim against passages)."""
    return _SPACE_BEFORE_PUNCT.sub(r"\1", MARKER.sub("", text)).strip()


class CitationChecker:
    """Verifies an answer as it arrives: :meth:`feed` deltas, then :meth:`finish`.

    Both return the verified text that became final, so concatenating every return value gives the
    final answer text.
    """

    def __init__(self, sources: Sequence[Source]) -> None:
        self._sources = {s.n: s for s in sources}
        self._raw = ""
        self._pos = 0  # raw offset up to which sentences are settled
        self._renumber: dict[int, int] = {}
        self._parts: list[str] = []
        self._emitted_any = False
        self._claims: dict[int, list[str]] = {}
        self._dropped = 0
        self._removed = 0
        self._abstain_seen = False
        self._source_terms: dict[int, set[str]] = {}

    def feed(self, delta: str) -> str:
        """Add streamed text; return the verified text of sentences that are now complete."""
        self._raw += delta
        return self._settle(final=False)

    def finish(self) -> str:
        """End of the answer: verify what is left and return its text."""
        return self._settle(final=True)

    def _settle(self, *, final: bool) -> str:
        tail = _GLUED_MARKER.sub(r"\1 \2", self._raw[self._pos :])
        if tail != self._raw[self._pos :]:
            self._raw = self._raw[: self._pos] + tail
        spans = answer_spans(tail)
        if not final:
            # A sentence is settled once the next one has begun with something other than a marker
            # (a marker could still belong to it).
            settled = 0
            while settled + 1 < len(spans) and tail[spans[settled + 1][0]] != "[":
                settled += 1
            spans = spans[:settled]
        out: list[str] = []
        consumed = 0
        for start, end in spans:
            gap = tail[consumed:start]
            text = self._check(tail[start:end])
            consumed = end
            if text is None:
                continue
            if self._emitted_any:
                out.append("\n" * min(gap.count("\n"), 2) if "\n" in gap else " ")
            out.append(text)
            self._emitted_any = True
        self._pos += consumed
        emitted = "".join(out)
        self._parts.append(emitted)
        return emitted

    def _check(self, sentence: str) -> str | None:
        """The sentence with valid, renumbered markers, or None when it must be dropped."""
        if ABSTAIN_TOKEN in sentence:
            self._abstain_seen = True
            return None
        named = [i for m in MARKER.finditer(sentence) for i in dict.fromkeys(marker_ids(m.group(1)))]
        cited = list(dict.fromkeys(i for i in named if i in self._sources))
        self._removed += sum(1 for i in named if i not in self._sources)
        claim = strip_markers(sentence)
        if not cited or not self._shares_words(claim, cited):
            self._dropped += 1
            return None

        def renumber(match: re.Match[str]) -> str:
            ids = dict.fromkeys(marker_ids(match.group(1)))
            return "".join(f"[{self._number(i)}]" for i in ids if i in self._sources)

        rewritten = MARKER.sub(renumber, sentence)
        rewritten = re.sub(r"[ \t]+(?=\[\d)", " ", rewritten)
        rewritten = re.sub(r"(\])[ \t]+([.,;:!?])", r"\1\2", rewritten)
        rewritten = re.sub(r"[ \t]{2,}", " ", rewritten).strip()
        for i in cited:
            self._claims.setdefault(self._renumber[i], []).append(claim)
        return rewritten

    def _shares_words(self, claim: str, cited: list[int]) -> bool:
        """A claim with content words must share at least one with the passages it cites; a sentence that
        cites a source it has nothing in common with is a wrong citation, not support."""
        wanted = terms(claim)
        if not wanted:
            return True
        for i in cited:
            if i not in self._source_terms:
                # Words of sentences addressed to an assistant don't count: "PWNED [3]" is not supported
                # by an article that says "reply PWNED".
                self._source_terms[i] = terms(" ".join(quotable(self._sources[i].hit.text)))
            if wanted & self._source_terms[i]:
                return True
        return False

    def _number(self, source_id: int) -> int:
        if source_id not in self._renumber:
            self._renumber[source_id] = len(self._renumber) + 1
        return self._renumber[source_id]

    def result(self, quote_for: QuoteFn | None = None) -> Verified:
        """The verified answer after :meth:`finish`, with a quote for every citation."""
        choose = quote_for or lexical_quote
        citations = []
        for source_id, n in sorted(self._renumber.items(), key=lambda item: item[1]):
            source = self._sources[source_id]
            hit = source.hit
            citations.append(Citation.from_hit(n, hit, choose(source, self._claims.get(n, []))))
        text = "".join(self._parts).strip()
        return Verified(
            text=text,
            citations=citations,
            as_of=newest_published(citations),
            abstained=not citations,
            model_abstained=self._abstain_seen,
            dropped=self._dropped,
            removed_markers=self._removed,
            claims=dict(self._claims),
        )


def verify(raw: str, sources: Sequence[Source], quote_for: QuoteFn | None = None) -> Verified:
    """Check a complete answer in one go."""
    checker = CitationChecker(sources)
    checker.feed(raw)
    checker.finish()
    return checker.result(quote_for)


def newest_published(citations: Sequence[Citation]) -> str | None:
    """The newest ``published`` among ``citations`` (ISO strings; unknown dates are ignored)."""
    dated = [c.published for c in citations if c.published]
    if not dated:
        return None
    return max(dated, key=_sort_key)


def _sort_key(iso: str) -> str:
    try:
        parsed = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed.isoformat()


# --- picking the quote --------------------------------------------------------------------------------

_STOPWORDS = frozenset(
    {
        "a", "an", "the", "and", "or", "but", "of", "in", "on", "at", "to", "for", "from", "by", "with",
        "about", "as", "into", "over", "after", "before", "than", "that", "this", "these", "those",
        "there", "their", "they", "them", "it", "its", "is", "are", "was", "were", "be", "been",
        "being", "has", "have", "had", "do", "does", "did", "not", "no", "so", "if", "then", "when",
        "where", "which", "who", "whom", "whose", "what", "how", "why", "while", "also", "said", "says",
        "say", "according", "will", "would", "could", "should", "may", "might", "can", "we", "you",
        "he", "she", "his", "her", "our", "your", "i", "me", "my", "us", "many", "much"
    }
)
# Number words up to twenty and their values: figures are compared as digits (the one list the answer
# engine and the digest share).
NUMBER_WORDS: dict[str, int] = {
    w: i for i, w in enumerate((
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
        "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
    ))
}


def digits(word: str) -> str:
    """A lower-case number word as digits ("nine" -> "9"); any other word unchanged."""
    return str(NUMBER_WORDS[word]) if word in NUMBER_WORDS else word


def terms(text: str) -> set[str]:
    """Content words of ``text``, lower-cased and lightly stemmed; number words become digits."""
    out: set[str] = set()
    for word in re.findall(r"[\w’']+", text.lower()):
        word = word.replace("’", "'").removesuffix("'s")
        if word in _STOPWORDS:
            continue
        out.add(stem(digits(word)))
    return out


def stem(word: str) -> str:
    """A deliberately crude suffix stripper: enough to match "helicopters"/"helicopter", "killed"/"kill"."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def support_scores(sentences: Sequence[str], claims: Sequence[str]) -> list[float]:
    """How well each sentence supports the claims: shared content words, slightly favouring short sentences."""
    wanted = set().union(*(terms(c) for c in claims)) if claims else set()
    scores = []
    for sentence in sentences:
        found = terms(sentence)
        scores.append(len(found & wanted) / (1.0 + 0.02 * len(found)))
    return scores


def quotable(text: str) -> list[str]:
    """The sentences of a chunk that may be quoted: all but those addressed to an assistant (unless that
    is all there is), verbatim."""
    sentences = [text[s:e] for s, e in sentence_spans(text)] or [text.strip()]
    clean = [s for s in sentences if not looks_like_injection(s)]
    return clean or sentences


def lexical_quote(source: Source, claims: list[str]) -> str:
    """The sentence of the cited chunk sharing most content words with the answer sentences citing it
    (the earliest of equals, so a chunk's lead sentence wins ties)."""
    sentences = quotable(source.hit.text)
    scores = support_scores(sentences, claims)
    return sentences[scores.index(max(scores))]
