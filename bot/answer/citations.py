"""Checking a generated answer, sentence by sentence, against the sources it was given.

Rules (the contract: every ``[n]`` in an output maps to a citation, no citation names a passage that
was not retrieved, and every sentence shown says only what its cited articles say):

- A marker must name a source that was in the prompt (``[1]``, ``[1, 2]``, ``[1-3]``, ``[Source 2]`` are
  understood); unknown markers are removed. Markers in front of a sentence ("[1] Nine were killed.")
  belong to it and are moved behind it.
- **A sentence is dropped**, never shown with a warning, when it has no valid marker (preambles such as
  "Here is what the sources say:" included), when it is only markers or punctuation, when it copies
  sitrep's own prompt text, when it repeats an earlier sentence, and when :mod:`bot.answer.support` finds that
  its cited passages don't support it (a figure or a name they don't contain, content words they don't
  hold, a negation they don't make). The number of dropped sentences, by reason, is reported
  (``Verified.reasons``) and logged.
- One number per article: markers are renumbered 1..m in order of first use and written as ``[1][2]``;
  two passages of one article share its number and are two quotes of that one citation.
- Each quote is a sentence found verbatim in the cited chunk: the one that best supports the answer
  sentences citing it (``quote_for``; the default scores word overlap).
- ``as_of`` is the newest published date among the cited sources.

:class:`CitationChecker` works incrementally, so a streamed answer can be shown sentence by sentence as
each sentence is verified: the text it emits is exactly the final answer text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.answer import support
from bot.answer.context import Source, looks_like_injection
from bot.answer.prompts import ABSTAIN_TOKEN, copies_prompt
from bot.answer.results import Citation, article_key
from bot.answer.support import Evidence
from bot.answer.words import terms
from retrieval.text import sentence_spans

_ID = r"(?:sources?\s*)?\d{1,4}"
MARKER = re.compile(rf"\[\s*({_ID}(?:\s*(?:,|;|and|–|-)\s*{_ID})*)\s*\]", re.IGNORECASE)
# Leading markers of a span belong to the sentence before it ("... killed. [1] Next ...").
_LEADING_MARKERS = re.compile(rf"(?:{MARKER.pattern}\s*)+", re.IGNORECASE)
# "killed.[1]" -> "killed. [1]" so the sentence boundary is seen before the marker.
_GLUED_MARKER = re.compile(r"([.!?][\"'”’)]*)(\[)")
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([.,;:!?])")
_MAX_RANGE = 20
# "Here is what the sources say: ..." — the lead-in goes, the claim after it is checked like any other.
_PREAMBLE = re.compile(
    r"^\s*[*_#]*\s*(?:here(?:'s|’s|\s+is|\s+are)|the\s+following|based\s+on"
    r"|according\s+to\s+the\s+(?:sources|articles)|in\s+summary|summary|answer|to\s+answer|sure|certainly)"
    r"\b[^:\n]{0,80}:[*_]*\s+(?=\S)",
    re.IGNORECASE,
)

QuoteFn = Callable[[Source, list[str]], str]


@dataclass
class Verified:
    """A checked answer: text whose markers all map to ``citations``."""

    text: str
    citations: list[Citation]
    as_of: str | None
    abstained: bool  # nothing supported survived (the model abstained or cited nothing valid)
    model_abstained: bool  # the model replied with the abstain token
    dropped: int = 0  # sentences dropped (see ``reasons``)
    removed_markers: int = 0  # markers naming no given source
    claims: dict[int, list[str]] = field(default_factory=dict)  # n -> answer sentences citing it
    kept: int = 0  # sentences shown
    reasons: Counter[str] = field(default_factory=Counter)  # why sentences were dropped


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


def repeat_key(text: str) -> str:
    """What two sentences share when one repeats the other: their words, lower-cased, without markers."""
    return " ".join(re.findall(r"\w+", strip_markers(text).lower()))


def _markers_behind(sentence: str) -> str:
    """A sentence with the markers in front of it moved behind it: "[1] Nine died." -> "Nine died. [1]"."""
    lead = _LEADING_MARKERS.match(sentence)
    if not lead or lead.end() >= len(sentence):
        return sentence
    return f"{sentence[lead.end():].rstrip()} {lead.group(0).strip()}"


class CitationChecker:
    """Verifies an answer as it arrives: :meth:`feed` deltas, then :meth:`finish`.

    Both return the verified text that became final, so concatenating every return value gives the
    final answer text. ``question`` is what the answer answers: its words are the user's framing, so
    an answer may repeat them without a source holding them.
    """

    def __init__(self, sources: Sequence[Source], question: str = "") -> None:
        self._sources = {s.n: s for s in sources}
        self._question = question
        self._raw = ""
        self._pos = 0  # raw offset up to which sentences are settled
        self._numbers: dict[str, int] = {}  # article key -> n
        self._first_source: dict[int, int] = {}  # n -> the first source id cited under it
        self._parts: list[str] = []
        self._emitted_any = False
        self._claims: dict[int, list[str]] = {}  # n -> claims
        self._source_claims: dict[int, list[str]] = {}  # source id -> claims
        self._seen: set[str] = set()
        self._kept = 0
        self._reasons: Counter[str] = Counter()
        self._removed = 0
        self._abstain_seen = False
        self._evidence: dict[tuple[int, ...], Evidence] = {}

    @property
    def raw_chars(self) -> int:
        """Characters of model output received so far."""
        return len(self._raw)

    @property
    def kept(self) -> int:
        """Sentences verified and released so far."""
        return self._kept

    @property
    def reasons(self) -> Counter[str]:
        """Sentences dropped so far, by reason."""
        return self._reasons

    @property
    def dropped(self) -> int:
        """Sentences dropped so far."""
        return sum(self._reasons.values())

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

    def _drop(self, reason: str) -> None:
        self._reasons[reason] += 1

    def _check(self, sentence: str) -> str | None:
        """The sentence with valid, renumbered markers, or None when it must be dropped."""
        if ABSTAIN_TOKEN in sentence:
            self._abstain_seen = True
            return None
        sentence = _markers_behind(sentence)
        preamble = _PREAMBLE.match(sentence)
        if preamble:
            rest = sentence[preamble.end() :]
            sentence = rest[:1].upper() + rest[1:]
        named = [i for m in MARKER.finditer(sentence) for i in dict.fromkeys(marker_ids(m.group(1)))]
        cited = list(dict.fromkeys(i for i in named if i in self._sources))
        self._removed += sum(1 for i in named if i not in self._sources)
        claim = strip_markers(sentence)
        key = repeat_key(claim)
        if not re.search(r"[^\W\d_]", claim):
            self._drop("no words")
            return None
        if not cited:
            self._drop("no valid marker")
            return None
        if copies_prompt(claim):
            self._drop("copies the prompt")
            return None
        if key in self._seen:
            self._drop("repeats a sentence")
            return None
        verdict = support.check(claim, self._evidence_for(cited), self._question)
        if not verdict.supported:
            self._drop(verdict.reason.split(":")[0].split(" (")[0])
            return None
        self._seen.add(key)
        self._kept += 1
        for i in cited:
            n = self._number(i)
            self._claims.setdefault(n, []).append(claim)
            self._source_claims.setdefault(i, []).append(claim)

        def renumber(match: re.Match[str]) -> str:
            ids = dict.fromkeys(self._number(i) for i in marker_ids(match.group(1)) if i in self._sources)
            return "".join(f"[{n}]" for n in ids)

        rewritten = MARKER.sub(renumber, sentence)
        rewritten = re.sub(r"(\[\d+\])\s+(?=\[\d)", r"\1", rewritten)
        # "[1][1]" (two passages of one article) and "killed [1]. [1]" say it once.
        rewritten = re.sub(r"(\[\d+\])([.!?]?)(?:\s*\1)+", r"\1\2", rewritten)
        rewritten = re.sub(r"\s+(?=\[\d)", " ", rewritten)
        rewritten = re.sub(r"(\])[ \t]+([.,;:!?])", r"\1\2", rewritten)
        return re.sub(r"[ \t]{2,}", " ", rewritten).strip()

    def _evidence_for(self, cited: list[int]) -> Evidence:
        """The cited passages as the model saw them, without sentences addressed to an assistant: "PWNED
        [3]" is not supported by an article that says "reply PWNED"."""
        key = tuple(sorted(cited))
        if key not in self._evidence:
            sources = [self._sources[i] for i in key]
            self._evidence[key] = Evidence(
                passages=[" ".join(quotable(s.text)) for s in sources],
                titles=[s.hit.title for s in sources],
                dates=[s.hit.published for s in sources],
            )
        return self._evidence[key]

    def _number(self, source_id: int) -> int:
        key = article_key(self._sources[source_id].hit)
        if key not in self._numbers:
            self._numbers[key] = len(self._numbers) + 1
            self._first_source[self._numbers[key]] = source_id
        return self._numbers[key]

    def result(self, quote_for: QuoteFn | None = None) -> Verified:
        """The verified answer after :meth:`finish`, with a quote for every passage cited."""
        choose = quote_for or lexical_quote
        citations = []
        for n in range(1, len(self._numbers) + 1):
            used = [i for i in self._source_claims if self._number(i) == n]
            first = self._first_source[n]
            ordered = [first, *(i for i in used if i != first)]
            citation = Citation.from_hit(n, self._sources[first].hit,
                                         choose(self._sources[first], self._source_claims[first]))
            for i in ordered[1:]:
                source = self._sources[i]
                citation = citation.merged(Citation.from_hit(n, source.hit, choose(source, self._source_claims[i])))
            citations.append(citation)
        text = "".join(self._parts).strip()
        return Verified(
            text=text,
            citations=citations,
            as_of=newest_published(citations),
            abstained=not citations,
            model_abstained=self._abstain_seen,
            dropped=self.dropped,
            removed_markers=self._removed,
            claims=dict(self._claims),
            kept=self._kept,
            reasons=Counter(self._reasons),
        )


def verify(raw: str, sources: Sequence[Source], quote_for: QuoteFn | None = None, question: str = "") -> Verified:
    """Check a complete answer in one go."""
    checker = CitationChecker(sources, question)
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
