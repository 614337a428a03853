"""What an abstention says: that the ingested articles don't cover the question (or that a window holds no
article), and what the corpus does hold — its newest article's date and outlet, as of a replayed moment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.answer.context import published_date

if TYPE_CHECKING:
    from retrieval.corpus import Corpus


def describe_window(since: datetime | None, until: datetime | None) -> str:
    """`` since 2020-10-14`` / `` until ...`` / `` between ... and ...`` / empty."""
    if since and until:
        return f" between {since.date().isoformat()} and {until.date().isoformat()}"
    if since:
        return f" since {since.date().isoformat()}"
    if until:
        return f" until {until.date().isoformat()}"
    return ""


def abstention_message(corpus: Corpus, subject: str, since: datetime | None, until: datetime | None, *,
                       as_of: datetime | None = None, label: str | None = None) -> str:
    """"The ingested articles don't cover …; the newest article is from <date> (<outlet>).", or, when the
    window (described by ``label``, else by its dates) holds no article, "No ingested article was
    published in the last 24 hours; the newest is from …". ``as_of``: a replay, seeing only what was
    published by then."""
    stats = corpus.stats()
    if not stats.documents:
        return (
            "No articles have been ingested yet, so there is nothing to answer from; "
            "add some with `sitrep ingest`."
        )
    newest = stats.newest_published
    if as_of is not None:  # a replay: the newest article visible then
        visible = corpus.documents(until=as_of)
        if not visible:
            return f"No ingested article had been published by {published_date(as_of.isoformat())}."
        newest = next((d.published for d in visible if d.published), None)
    window = f" {label}" if label else describe_window(since, until)
    if window and not corpus.documents(since=since, until=_capped(until, as_of))[:1]:
        return f"No ingested article was published{window}; {_newest(corpus, newest, '', as_of)}"
    shown = subject if len(subject) <= 120 else subject[:117] + "…"
    what = f"“{shown}”" if shown else "this"
    return f"The ingested articles{window} don't cover {what}; {_newest(corpus, newest, 'article', as_of)}"


def _newest(corpus: Corpus, newest_published: str | None, noun: str, as_of: datetime | None) -> str:
    """"the newest <noun> is from <date> (<outlet>).", naming it the newest *dated* one when an undated
    article was ingested after it, and leaving out an unknown outlet. Reads the newest documents only."""
    newest = datetime.fromisoformat(newest_published) if newest_published else None
    docs = corpus.documents(since=newest.replace(tzinfo=newest.tzinfo or UTC),
                            until=_capped(None, as_of)) if newest else []
    dated = next((d for d in docs if d.published), None)
    if dated is None:
        return "none of the ingested articles carries a publication date."
    what = " ".join(w for w in ("newest", "dated" if any(not d.published for d in docs) else "", noun) if w)
    outlet = f" ({dated.source})" if dated.source else ""
    return f"the {what} is from {published_date(dated.published)}{outlet}."


def _capped(until: datetime | None, as_of: datetime | None) -> datetime | None:
    """``until`` no later than the replayed moment ``as_of``."""
    if as_of is None:
        return until
    return min(until, as_of) if until else as_of
