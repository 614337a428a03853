"""Grouping a window's articles into stories: each article, as the embedding of its title + lead, joins the
story whose centroid it is most similar to, or starts one. Used by the daily digest and by summaries of the
window's biggest stories."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import numpy as np

from retrieval.chunking import embedding_text
from retrieval.documents import SearchHit

if TYPE_CHECKING:
    from retrieval.corpus import DocumentInfo

SAME_STORY = 0.55  # MiniLM cosine, title + lead vs story centroid (same event ~0.6-0.85, same topic ~0.5)
SAME_STORY_ELSEWHERE = 0.75  # when the article and the story name only different places
STORY_WINDOW = timedelta(hours=48)


@dataclass
class StoryCluster:
    """Articles about one event, newest first, titled by the newest headline."""

    title: str
    docs: list[DocumentInfo]
    centroid: np.ndarray

    @property
    def outlets(self) -> list[str]:
        return outlets_of(self.docs)


class StoryCorpus(Protocol):
    """The parts of :class:`retrieval.corpus.Corpus` story grouping (and the digest) read."""

    def documents(self, *, since: datetime | None = None, until: datetime | None = None,
                  by: str = "published") -> list[DocumentInfo]: ...

    def document_chunks(self, doc_id: str) -> list[SearchHit]: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def chunk_vectors(self, chunk_ids: Sequence[str]) -> dict[str, np.ndarray]: ...


def new_documents(corpus: StoryCorpus, since: datetime, until: datetime) -> list[DocumentInfo]:
    """Documents first ingested or published in [since, until], each once, newest first."""
    found: dict[str, DocumentInfo] = {}
    for by in ("first_seen", "published"):
        for doc in corpus.documents(since=since, until=until, by=by):
            found.setdefault(doc.doc_id, doc)
    return sorted(found.values(), key=doc_time, reverse=True)


def doc_time(doc: DocumentInfo) -> datetime:
    for value in (doc.published, doc.first_seen):
        if value:
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.min.replace(tzinfo=UTC)


def outlets_of(docs: Sequence[DocumentInfo]) -> list[str]:
    names: dict[str, str] = {}
    for doc in docs:
        for name in [doc.source, *(str(s.get("source") or "") for s in doc.sources)]:
            if name.strip():
                names.setdefault(name.strip().casefold(), name.strip())
    return list(names.values())


def cluster_stories(
    corpus: StoryCorpus, docs: Sequence[DocumentInfo], leads: dict[str, list[SearchHit]]
) -> list[StoryCluster]:
    """Group documents about the same event; stories ordered by size (articles, then outlets), then by their
    newest article; each titled by its newest article's headline.

    An article joins the most similar story (centroid cosine >= ``SAME_STORY``, newest member within
    ``STORY_WINDOW``). When both name places and share none ("in Kunduz" / "in Kandahar": two attacks on
    one day read alike to the embedding model) it takes ``SAME_STORY_ELSEWHERE``.
    """
    ordered = sorted(docs, key=doc_time)
    vectors = lead_vectors(corpus, [leads[d.doc_id][0] for d in ordered])
    where = [places(leads[d.doc_id][0].text) for d in ordered]
    members: list[list[int]] = []
    sums: list[np.ndarray] = []
    story_places: list[set[str]] = []
    for i, doc in enumerate(ordered):
        best, best_sim = -1, 0.0
        for s, total in enumerate(sums):
            sim = float(vectors[i] @ total) / float(np.linalg.norm(total))
            elsewhere = bool(where[i] and story_places[s] and not where[i] & story_places[s])
            needed = SAME_STORY_ELSEWHERE if elsewhere else SAME_STORY
            recent = doc_time(doc) - doc_time(ordered[members[s][-1]]) <= STORY_WINDOW
            if sim >= needed and sim > best_sim and recent:
                best, best_sim = s, sim
        if best < 0:
            members.append([i])
            sums.append(vectors[i].astype(np.float64).copy())
            story_places.append(set(where[i]))
        else:
            members[best].append(i)
            sums[best] += vectors[i]
            story_places[best] |= where[i]
    stories = []
    for idx, total in zip(members, sums, strict=True):
        centroid = total / np.linalg.norm(total)
        story_docs = sorted((ordered[i] for i in idx), key=doc_time, reverse=True)
        stories.append(StoryCluster(title=story_title(story_docs), docs=story_docs, centroid=centroid))
    stories.sort(key=lambda s: (len(s.docs), len(s.outlets), doc_time(s.docs[0])), reverse=True)
    return stories


def story_title(docs: Sequence[DocumentInfo]) -> str:
    """The headline of the story's newest article that has one (``docs`` newest first): a story's title
    should say where it stands now, not how it began."""
    return next((d.title.strip() for d in docs if d.title.strip()), "Untitled")


def lead_vectors(corpus: StoryCorpus, leads: Sequence[SearchHit]) -> np.ndarray:
    """Unit vectors of title + lead: the stored embeddings of the first chunks (computed at ingest, the
    same text), embedding only what the store does not return."""
    stored = corpus.chunk_vectors([h.chunk_id for h in leads])
    missing = [h for h in leads if h.chunk_id not in stored]
    if missing:
        fresh = corpus.embed([embedding_text(h.title, h.text) for h in missing])
        stored.update({h.chunk_id: v for h, v in zip(missing, fresh, strict=True)})
    return np.stack([stored[h.chunk_id] for h in leads]).astype(np.float64)


_NOT_PLACES = frozenset(
    "january february march april may june july august september october november december monday tuesday "
    "wednesday thursday friday saturday sunday the".split()
)


_PLACE = re.compile(
    r"\b(?:in|near|around|of|at|from|outside|inside|across|toward|towards)\s+([A-Z][\w-]+(?:\s[A-Z][\w-]+)?)"
    r"|\b([A-Z][\w-]+(?:\s[A-Z][\w-]+)?)\s+(?:province|district|city|capital|village|region|county|area)\b"
)


def places(text: str) -> set[str]:
    """Capitalised names after "in/near/around/of…" or before "province/district/city…", lower-cased."""
    found = set()
    for match in _PLACE.finditer(text):
        name = (match.group(1) or match.group(2)).lower()
        if name.split()[0] not in _NOT_PLACES:
            found.add(name)
    return found
