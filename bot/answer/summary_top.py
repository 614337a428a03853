"""A summary without a topic: the biggest stories of a window, and what it left out.

An editor who asks "what's going on?" wants the stories with the most coverage, not the last dozen articles
that happened to arrive. So the window's articles are grouped into stories with the digest's clustering
(:func:`bot.answer.stories.cluster_stories`), ranked by articles and then outlets, and the summary covers the
biggest ones. It says how much it covered ("Top 6 of 41 stories: 97 of 538 articles …") and names the next
ones, so nothing big is silently left out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.answer import extractive
from bot.answer.extractive import Composer, VectorCache
from bot.answer.results import Citation
from bot.answer.stories import StoryCluster, StoryCorpus, cluster_stories
from bot.render.slack import format_date
from retrieval.documents import SearchHit

log = logging.getLogger(__name__)

TOP_WINDOW = timedelta(days=3)  # the window of a summary asked for without one, up to the newest article
MAX_DOCS = 1500  # newest documents of the window clustered at most (leader clustering is ~1 s per 500)
STORY_LEADS = 3  # newest articles of a story whose lead passages the summary reads
LEAD_SENTENCES = 5  # of each lead passage: the lead carries the news
SENTENCES_PER_STORY = 2
OFFERED = 5  # further stories named at the end
TITLE_CHARS = 90


@dataclass
class TopStories:
    """The window's stories, biggest first: ``shown`` ones summarized, ``rest`` offered by name."""

    since: datetime
    until: datetime
    articles: int
    shown: list[StoryCluster]
    rest: list[StoryCluster]
    leads: dict[str, list[SearchHit]] = field(default_factory=dict)

    @property
    def covered_articles(self) -> int:
        return sum(len(s.docs) for s in self.shown)

    def story_hits(self) -> tuple[list[SearchHit], list[int]]:
        """Lead passages of each shown story's newest articles, story by story, with the story number
        (1-based) of each: the groups a model is given."""
        hits: list[SearchHit] = []
        groups: list[int] = []
        for n, story in enumerate(self.shown, start=1):
            for doc in story.docs[:STORY_LEADS]:
                hits.extend(self.leads[doc.doc_id][:1])
                groups.extend([n] * len(self.leads[doc.doc_id][:1]))
        return hits, groups

    def coverage_line(self, window: str) -> str:
        """"The 6 biggest of 41 stories published in the last 48 hours: 97 of 538 articles." (``window``
        describes the window, e.g. " between 2022-10-30 and 2022-11-01")."""
        stories = len(self.shown) + len(self.rest)
        shown = len(self.shown)
        what = (f"The {shown} biggest of {stories} stories" if shown < stories
                else f"All {stories} stor{'ies' if stories != 1 else 'y'}")
        return (f"{what} published{window}, by articles and outlets: {self.covered_articles} of "
                f"{self.articles} article{'s' * (self.articles != 1)} covered.")

    def also_line(self) -> str:
        """"Also in this window: X (4 articles), Y (3) — ask “summarize X”." or empty when nothing was left out."""
        offered = self.rest[:OFFERED]
        if not offered:
            return ""
        names = []
        for i, story in enumerate(offered):
            count = len(story.docs)
            unit = f" article{'s' * (count != 1)}" if i == 0 else ""
            names.append(f"{_short(story.title)} ({count}{unit})")
        more = len(self.rest) - len(offered)
        tail = f" and {more} smaller stor{'ies' if more != 1 else 'y'}" if more else ""
        return f"Also in this window: {'; '.join(names)}{tail}. Ask “summarize {_short(offered[0].title)}” for one."


def _short(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1].rstrip() + "…"


def default_window(corpus: StoryCorpus, since: datetime | None, until: datetime | None, now: datetime
                   ) -> tuple[datetime, datetime] | None:
    """``since``/``until`` filled in: ``until`` defaults to ``now``; without ``since``, the ``TOP_WINDOW`` up
    to ``until`` or, when that is open, up to the newest article. None when no article is visible."""
    if since is not None:
        return since, until or now
    newest = corpus.documents(until=until)[:1]
    if not newest:
        return None
    end = until or _time(newest[0].published or newest[0].first_seen)
    return end - TOP_WINDOW, end


def _time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def top_stories(corpus: StoryCorpus, since: datetime, until: datetime, max_stories: int) -> TopStories:
    """The stories of the articles published in [since, until], biggest first (see the module docstring)."""
    found = corpus.documents(since=since, until=until)
    docs = found[:MAX_DOCS]
    leads = {d.doc_id: corpus.document_chunks(d.doc_id)[:1] for d in docs}
    docs = [d for d in docs if leads[d.doc_id]]
    stories = cluster_stories(corpus, docs, leads) if docs else []
    log.info("summary.top_stories articles=%d stories=%d shown=%d", len(found), len(stories),
             min(max_stories, len(stories)))
    return TopStories(since, until, len(found), stories[:max_stories], stories[max_stories:], leads)


def compose(top: TopStories, vectors: VectorCache) -> tuple[str, list[Citation]]:
    """The extractive summary: one line per story, biggest first, its newest articles' most central lead
    sentences cited: ``- **Title** (5 articles, 3 outlets; 1 Nov 2022): sentence [1] sentence [2]``."""
    composer = Composer()
    lines = []
    for story in top.shown:
        hits = [h for d in story.docs[:STORY_LEADS] for h in top.leads[d.doc_id][:1]]
        pool = extractive.candidates(hits, per_hit=LEAD_SENTENCES)
        if not pool:
            continue
        ranked = extractive.rank(story.title, pool, vectors)
        items = extractive.select(ranked, SENTENCES_PER_STORY) or [extractive.Item(pool[0])]
        count, outlets = len(story.docs), len(story.outlets)
        size = f"{count} article{'s' * (count != 1)}, {outlets} outlet{'s' * (outlets != 1)}"
        newest = format_date(story.docs[0].published or story.docs[0].first_seen)
        body = " ".join(composer.item(item) for item in items)
        lines.append(f"- **{_short(story.title)}** ({size}; {newest}): {body}")
    return "\n".join(lines), composer.citations

