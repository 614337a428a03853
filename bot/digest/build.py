"""The daily digest: what is new since the previous digest, grouped into stories, cited and dated.

1. The window: documents first ingested or published between ``since`` and ``until``.
2. Stories: each article, as the embedding of its title + lead (its first chunk's vector from the store,
   or ``corpus.embed``), joins the story whose centroid it is most similar to (cosine >= ``SAME_STORY``,
   within ``STORY_WINDOW`` in time, and a higher bar when the two name only different places), oldest
   first; otherwise it starts a story. Leader clustering is linear in articles x stories, so a day of
   several hundred feed items takes about a second.
3. Each story gets one to three cited, dated sentences from the answer engine (LLM or extractive) over
   the story's leads.
4. "What changed": figures are read from the leads as keyed facts ("families displaced" = 5600). A story
   that matches a story of the previous digest (centroid cosine >= ``SAME_STORY_ACROSS_DIGESTS``) reports
   each key whose newest figure is not one the previous digest had, citing the sentence it comes from.
   The facts and centroids are what :meth:`Digest.state` returns for the state database.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np

from bot.answer.citations import MARKER, answer_spans, marker_ids, newest_published
from bot.answer.context import looks_like_injection
from bot.answer.results import Answer, Citation, citation_key
from bot.answer.stories import (
    StoryCluster,
    StoryCorpus,
    cluster_stories,
    new_documents,
    outlets_of,
)
from bot.answer.words import NUMBER_WORDS, digits
from bot.render.slack import SlackMessage, format_date, markdown_to_mrkdwn, render_answer
from retrieval.documents import SearchHit
from retrieval.text import is_heading, sentence_spans

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

SAME_STORY_ACROSS_DIGESTS = 0.6
MAX_STORIES = 10
MAX_SENTENCES = 3
LEAD_CHUNKS = 2  # chunks per article given to sentence selection
_STATE_VERSION = 1


class StorySummarizer(Protocol):
    """What the digest needs from the answer engine: a cited summary of given passages."""

    def __call__(self, topic: str, hits: Sequence[SearchHit], max_sentences: int) -> Answer: ...


# -- facts ---------------------------------------------------------------------------------------------

# Longest words first, so "nineteen" is not read as "nine".
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + ")"
# What a figure counts: the noun (after up to two words such as "Afghan", "more") decides the key.
_NOUNS = {
    "people": "people", "persons": "people", "individuals": "people", "residents": "people",
    "civilians": "civilians", "children": "children", "women": "women",
    "soldiers": "troops", "troops": "troops", "commandos": "troops", "personnel": "troops",
    "police": "police", "policemen": "police", "officers": "police",
    "fighters": "militants", "militants": "militants", "insurgents": "militants", "taliban": "militants",
    "families": "families", "households": "families", "houses": "homes", "homes": "homes",
    "helicopters": "aircraft", "aircraft": "aircraft", "districts": "districts", "checkpoints": "checkpoints",
    "dead": "people", "killed": "people", "casualties": "people", "wounded": "people", "injured": "people",
}
_EVENTS = {
    "killed": "killed", "dead": "killed", "died": "killed", "deaths": "killed", "death": "killed",
    "lives": "killed", "killing": "killed", "kills": "killed", "dying": "killed",
    "wounded": "wounded", "injured": "wounded", "hurt": "wounded",
    "displaced": "displaced", "fled": "displaced", "flee": "displaced", "fleeing": "displaced",
    "evacuated": "displaced", "arrested": "detained", "detained": "detained", "captured": "captured",
    "missing": "missing", "crashed": "crashed", "collided": "crashed", "destroyed": "destroyed",
    "damaged": "destroyed", "released": "released", "freed": "released", "casualties": "casualties",
}
_FACT = re.compile(
    rf"(?<![\w.,-])(?P<num>{_NUM}(?:\s*(?:to|and|-|–)\s*{_NUM})?)\s+(?:[A-Za-z'-]+\s+){{0,2}}?"
    rf"(?P<noun>{'|'.join(_NOUNS)})\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Fact:
    """A figure in a story ("families displaced" = "5600") and the verbatim sentence it comes from."""

    key: str
    value: str
    sentence: str
    hit: SearchHit

    def to_state(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "source": self.hit.source,
                "published": self.hit.published, "doc_id": self.hit.doc_id}


def _display(value: str) -> str:
    """``5600`` as ``5,600``; ranges ``8–15`` part by part."""
    return "–".join(f"{int(p):,}" if p.isdigit() else p for p in value.split("–"))


def extract_facts(hit: SearchHit) -> list[Fact]:
    """Keyed figures in a passage: the counted noun plus the event word nearest to it in the sentence."""
    facts = []
    for start, end in sentence_spans(hit.text):
        sentence = hit.text[start:end]
        words = [w.lower() for w in re.findall(r"[A-Za-z]+", sentence)]
        for match in _FACT.finditer(sentence):
            noun_word = match.group("noun").lower()
            noun = _NOUNS[noun_word]
            at = len(re.findall(r"[A-Za-z]+", sentence[: match.start("noun")]))
            event = _EVENTS.get(noun_word) or _nearest_event(words, at)
            parts = [digits(p.lower()).replace(",", "") for p in re.findall(_NUM, match.group("num"), re.IGNORECASE)]
            if not event or any(not p.replace(".", "").isdigit() for p in parts):
                continue  # a count of something with no event ("two districts") is not comparable
            facts.append(Fact(f"{noun} {event}", "–".join(parts), sentence, hit))
    return facts


def _nearest_event(words: list[str], at: int) -> str | None:
    """The event word closest to ``words[at]`` (within eight words), normalized.

    On a tie the word after the noun wins: "3 civilians were killed", not the "wounded" before it.
    """
    best: tuple[float, str] | None = None
    for i, word in enumerate(words):
        distance = abs(i - at) + (0.5 if i < at else 0.0)
        if word in _EVENTS and distance <= 8 and (best is None or distance < best[0]):
            best = (distance, _EVENTS[word])
    return best[1] if best else None


# -- the digest ----------------------------------------------------------------------------------------


@dataclass
class Story(StoryCluster):
    """Articles about one event (:class:`~bot.answer.stories.StoryCluster`) and the digest's lines on it."""

    lines: list[str] = field(default_factory=list)  # markdown, markers in the digest's numbering
    changes: list[str] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    continued: bool = False  # matches a story of the previous digest

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "doc_ids": [d.doc_id for d in self.docs], "outlets": self.outlets,
                "continued": self.continued, "lines": self.lines, "changes": self.changes}

    def to_state(self) -> dict[str, Any]:
        return {"title": self.title, "centroid": [round(float(x), 4) for x in self.centroid],
                "facts": [f.to_state() for f in self.facts]}


@dataclass
class Digest:
    """A built digest. ``markdown`` is the body; ``text`` is it as Slack mrkdwn (article text escaped).

    The ``[n]`` markers of both match ``citations``.
    """

    since: datetime
    until: datetime
    timezone: str
    markdown: str
    citations: list[Citation]
    stories: list[Story]
    article_count: int
    outlet_count: int
    mode: str
    channel: str | None = None
    omitted_articles: int = 0

    @property
    def empty(self) -> bool:
        return self.article_count == 0

    @property
    def text(self) -> str:
        return markdown_to_mrkdwn(self.markdown)

    @property
    def headline(self) -> str:
        """The first line without formatting ("Daily digest — Fri 16 Oct 2020")."""
        return self.markdown.split("\n", 1)[0].replace("*", "").strip()

    def as_answer(self) -> Answer:
        """The digest as an engine result, so every front end renders it like a summary."""
        return Answer(question="daily digest", topic="daily digest", answer=self.markdown,
                      citations=self.citations, mode=self.mode, as_of=newest_published(self.citations))

    def messages(self) -> list[SlackMessage]:
        """Slack messages (usually one): the digest, an as-of line and the numbered sources."""
        return render_answer(self.as_answer())

    def state(self) -> dict[str, Any]:
        """What the next digest compares against (kept in the state database)."""
        return {"version": _STATE_VERSION, "stories": [s.to_state() for s in self.stories]}

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "timezone": self.timezone,
            "empty": self.empty,
            "articles": self.article_count,
            "outlets": self.outlet_count,
            "mode": self.mode,
            "text": self.text,
            "stories": [s.to_json() for s in self.stories],
            "citations": [c.to_json() for c in self.citations],
        }


def build_digest(
    corpus: StoryCorpus,
    summarize: StorySummarizer,
    *,
    since: datetime,
    until: datetime,
    timezone: str,
    previous_state: dict[str, Any] | None = None,
    channel: str | None = None,
    mode: str = "extractive",
) -> Digest:
    """The digest of documents first ingested or published in [since, until]."""
    tz = ZoneInfo(timezone)
    found = new_documents(corpus, since, until)
    leads = {d.doc_id: corpus.document_chunks(d.doc_id)[:LEAD_CHUNKS] for d in found}
    docs = [d for d in found if leads[d.doc_id]]  # a document without text has nothing to cite
    if not docs:
        text = f"No new articles since {_when(since, tz)}."
        return Digest(since, until, timezone, text, [], [], 0, 0, mode, channel)
    stories = [Story(c.title, c.docs, c.centroid) for c in cluster_stories(corpus, docs, leads)]
    shown, rest = stories[:MAX_STORIES], stories[MAX_STORIES:]
    previous = _previous_stories(previous_state)
    citations: list[Citation] = []
    for story in shown:
        hits = [h for d in story.docs for h in leads[d.doc_id]]
        _write_story(story, summarize, hits, citations)
        story.facts = [f for h in hits if h.chunk_index == 0 for f in extract_facts(h)]
        match = _match_previous(story, previous)
        if match is not None:
            story.continued = True
            story.changes = _changes(story.facts, _not_removed(corpus, match.get("facts", [])), citations)
    omitted = sum(len(s.docs) for s in rest)
    outlets = outlets_of(docs)
    log.info("digest.built channel=%s articles=%d stories=%d shown=%d changes=%d", channel, len(docs),
             len(stories), len(shown), sum(len(s.changes) for s in shown))
    text = _render(shown, len(docs), len(outlets), omitted, len(rest), since, until, tz)
    return Digest(since, until, timezone, text, citations, shown, len(docs), len(outlets), mode, channel, omitted)


def _write_story(story: Story, summarize: StorySummarizer, hits: list[SearchHit], citations: list[Citation]) -> None:
    """Fill ``story.lines`` from the engine's summary, renumbering its markers into ``citations`` (one
    number per article in the whole digest)."""
    limit = min(MAX_SENTENCES, len(story.docs) + 1)
    answer = summarize(story.title, hits, limit)
    if answer.abstained or not answer.citations:
        answer = _lead_sentence(story.title, hits[0])
    local = {c.n: c for c in answer.citations}
    renumber = {n: _digest_number(c, citations) for n, c in local.items()}
    for start, end in answer_spans(answer.answer)[:limit]:
        sentence = answer.answer[start:end]
        cited = [n for m in MARKER.finditer(sentence) for n in marker_ids(m.group(1)) if n in local]
        if not cited:
            continue
        body = MARKER.sub("", sentence).strip().lstrip("-•* ")
        body = re.sub(r"\s+([.,;:!?])", r"\1", body)
        markers = "".join(f"[{renumber[n]}]" for n in dict.fromkeys(cited))
        story.lines.append(f"- {format_date(local[cited[0]].published)} — {body} {markers}")


def _digest_number(citation: Citation, citations: list[Citation]) -> int:
    """The digest's number for the article of ``citation``: an article cited before keeps its number (and
    gains the passages quoted here); a new one is appended."""
    for i, known in enumerate(citations):
        if citation_key(known) == citation_key(citation):
            citations[i] = known.merged(citation)
            return known.n
    citations.append(citation.renumbered(len(citations) + 1))
    return len(citations)


def _lead_sentence(topic: str, lead: SearchHit) -> Answer:
    """The first lead sentence that is not addressed to an assistant, cited: for a story in which the engine
    found nothing to select (too short). Abstains when there is none; the story then shows its headline only."""
    for start, end in sentence_spans(lead.text):
        sentence = lead.text[start:end]
        if not is_heading(lead.text, start, end) and not looks_like_injection(sentence):
            citation = Citation.from_hit(1, lead, sentence)
            return Answer(question=topic, answer=f"{sentence} [1]", citations=[citation])
    return Answer(question=topic, answer="", abstained=True)


def _previous_stories(state: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not state or state.get("version") != _STATE_VERSION:
        return []
    return [s for s in state.get("stories", []) if isinstance(s, dict) and s.get("centroid")]


def _match_previous(story: Story, previous: list[dict[str, Any]]) -> dict[str, Any] | None:
    best, best_sim = None, SAME_STORY_ACROSS_DIGESTS
    for candidate in previous:
        vector = np.asarray(candidate["centroid"], dtype=np.float64)
        if vector.shape != story.centroid.shape:
            continue
        sim = float(vector @ story.centroid / (np.linalg.norm(vector) or 1.0))
        if sim >= best_sim:
            best, best_sim = candidate, sim
    return best


def _not_removed(corpus: StoryCorpus, facts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The previous digest's facts, without those of articles removed since (`sitrep remove`)."""
    return [f for f in facts if not f.get("doc_id") or corpus.document_chunks(str(f["doc_id"]))]


def _changes(facts: list[Fact], before: list[dict[str, Any]], citations: list[Citation]) -> list[str]:
    """Lines for keys whose newest figure differs from every figure the previous digest had."""
    old: dict[str, list[str]] = {}
    for fact in before:
        values = old.setdefault(str(fact.get("key")), [])
        if fact.get("value") not in values:
            values.append(str(fact.get("value")))
    newest: dict[str, Fact] = {}
    for fact in facts:  # facts come newest article first
        newest.setdefault(fact.key, fact)
    lines = []
    for key, fact in newest.items():
        if key not in old or fact.value in old[key]:
            continue
        n = _cite_sentence(fact, citations)
        was = " / ".join(_display(v) for v in old[key])
        lines.append(f"*What changed:* {key}: {was} → **{_display(fact.value)}** "
                     f"({fact.hit.source or 'unknown outlet'}, {_hit_date(fact.hit)}) [{n}]")
    return lines


def _hit_date(hit: SearchHit) -> str:
    """A passage's date; an ingestion time standing in for an unknown publication date says so."""
    shown = format_date(hit.published)
    return f"date unknown, ingested {shown}" if hit.date_source == "ingested" else shown


def _cite_sentence(fact: Fact, citations: list[Citation]) -> int:
    """The digest's number for the article a fact comes from (its sentence quoted)."""
    return _digest_number(Citation.from_hit(0, fact.hit, fact.sentence), citations)


def _when(moment: datetime, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    return f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M} {local.tzname()}"


def _render(stories: list[Story], articles: int, outlets: int, omitted: int, omitted_stories: int,
            since: datetime, until: datetime, tz: ZoneInfo) -> str:
    local = until.astimezone(tz)
    head = [
        f"**Daily digest — {local:%a} {local.day} {local:%b %Y}**",
        f"{articles} new article{'s' * (articles != 1)} from {outlets} outlet{'s' * (outlets != 1)} "
        f"since {_when(since, tz)}.",
    ]
    parts = ["\n".join(head)]
    for i, story in enumerate(stories, start=1):
        tag = "update" if story.continued else "new"
        count = len(story.docs)
        lines = [f"**{i}. {story.title}** — {tag} · {count} article{'s' * (count != 1)}, "
                 f"{len(story.outlets)} outlet{'s' * (len(story.outlets) != 1)}", *story.lines, *story.changes]
        parts.append("\n".join(lines))
    if omitted:
        parts.append(f"*…and {omitted} more article{'s' * (omitted != 1)} in {omitted_stories} smaller "
                     f"stor{'ies' if omitted_stories != 1 else 'y'}.*")
    return "\n\n".join(parts)

