"""The answer engine: retrieve → check relevance → pack sources → generate → verify citations → Answer.

One engine serves the CLI, ``sitrep chat``, the Slack bot and the digest. It answers only from the
corpus: when no retrieved sentence passes the relevance gate (:meth:`bot.answer.extractive.Ranked.answerable`:
MiniLM cosine and the share of the question's words) it abstains without asking the model; when the model
replies with the abstain token, or cites nothing valid, it abstains too. Modes:

- ``llm``: the packed, delimited sources and the question go to the chat model; its streamed reply is
  checked sentence by sentence (:mod:`bot.answer.citations`, :mod:`bot.answer.support`) and shown only once it can be
  trusted; a reply that can't be (nothing supported, more invented than kept, or missing what the
  extractive answer gives) is replaced by the extractive answer under one plain line. If the model
  fails, ``SITREP_LLM_FALLBACK`` decides: an extractive answer with a note, or the error.
- ``extractive``: the most relevant, non-redundant sentences, each cited (:mod:`bot.answer.extractive`).

Before retrieval a question is read (:mod:`bot.answer.rewrite`): a time phrase ("in the last 24 hours") becomes
a date window on the engine's clock, a request for a summary ("Summarize the situation in Helmand", "What
happened today?") is answered by :meth:`Engine.summarize`, and a follow-up is rewritten into a standalone
question. A window named in the question that holds no article answering it is said so in one line, and
the newest coverage before it answers, dated. :meth:`Engine.at` replays a past moment.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Generator, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from bot.answer import constraints, extractive, figures, summary_top
from bot.answer.abstention import abstention_message, describe_window
from bot.answer.citations import newest_published
from bot.answer.context import PackedContext
from bot.answer.extractive import Event, Ranked, VectorCache
from bot.answer.generation import ModelWriter
from bot.answer.language import english_only, language_of
from bot.answer.llm import LLMClient
from bot.answer.results import Answer, Citation, Turn
from bot.answer.rewrite import Window, parse_question, read_followup, summary_topic
from bot.render.slack import format_date
from bot.settings import LLMSettings
from retrieval.documents import SearchHit
from retrieval.errors import QueryError
from retrieval.search import check_query
from retrieval.timeparse import check_not_future

if TYPE_CHECKING:
    from retrieval.corpus import Corpus

log = logging.getLogger(__name__)

Gap = tuple[str, "constraints.Check"]  # a query and its passages, none covering all it names

ASK_K = 8  # passages retrieved for a question
_LOOKUP_K = 4  # passages read to resolve a follow-up's title or pronoun
_WIDER = 3  # times ASK_K searched when no passage names everything a question names
SUMMARY_K = 16  # passages retrieved for a topic summary
MAX_EVENTS = 6


class AnswerStream:
    """Text deltas of an answer as they are produced, then the verified :class:`Answer`.

    The deltas concatenate to exactly ``result().answer``: with a model, each sentence is released once
    its citations are checked; otherwise the whole answer is one delta. ``result()`` drains the stream
    if it has not been read. Iterating may raise :class:`LLMError` when the model fails and the
    fallback is ``error``.
    """

    def __init__(self, deltas: Generator[str, None, Answer]) -> None:
        self._deltas = deltas
        self._answer: Answer | None = None

    @classmethod
    def of(cls, answer: Answer) -> AnswerStream:
        """A stream of a finished answer."""

        def once() -> Generator[str, None, Answer]:
            if answer.answer:
                yield answer.answer
            return answer

        return cls(once())

    def __iter__(self) -> Iterator[str]:
        self._answer = yield from self._deltas

    def result(self) -> Answer:
        """The verified answer (reads the rest of the stream first)."""
        if self._answer is None:
            for _ in self:
                pass
        assert self._answer is not None  # set when the generator returns
        return self._answer


def check_window(
    since: datetime | None, until: datetime | None, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """Validate a date window (naive datetimes are UTC): ``since`` not after ``now``, not after ``until``."""
    since = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    until = until.replace(tzinfo=UTC) if until is not None and until.tzinfo is None else until
    if since is not None:
        check_not_future(since, now, name="--since")
    if since is not None and until is not None and since > until:
        raise QueryError("--since is later than --until; nothing can match.")
    return since, until


def check_question(question: str | None) -> str:
    """The question with whitespace tidied, or QueryError (empty, over 2,000 characters, no words)."""
    return " ".join(check_query(question or "").split())


def narrow(
    since: datetime | None, until: datetime | None, window: Window | None
) -> tuple[datetime | None, datetime | None, str | None]:
    """The given window narrowed by one named in the question, and how to describe it: the question's
    words ("in the last 24 hours") when it is the only window, else None (dates, see describe_window)."""
    if window is None:
        return since, until, None
    label = window.label if since is None and until is None else None
    since = max(since, window.since) if since else window.since
    until = min(until, window.until) if until and window.until else until or window.until
    return since, until, label


class Engine:
    """Grounded answers and summaries over a corpus. ``clock`` (UTC now) anchors "today" and "the last
    24 hours"; tests inject one. :meth:`at` replays a past moment (``--as-of``, eval's ``asked_at``)."""

    def __init__(
        self,
        settings: LLMSettings,
        corpus: Corpus,
        *,
        llm: LLMClient | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._settings = settings
        self._corpus = corpus
        self._vectors = VectorCache(corpus.embed)
        self._llm = llm or (LLMClient(settings) if settings.use_llm else None)
        self._writer = ModelWriter(settings, self._llm, self._vectors) if self._llm is not None else None
        self._clock = clock or partial(datetime.now, UTC)
        self._as_of: datetime | None = None  # set by at(): nothing published later is visible

    def at(self, when: datetime) -> Engine:
        """This engine as it would have answered at ``when``: its clock reads ``when`` and only articles
        published by then (undated ones: ingested by then) are visible. Shares caches and the model."""
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        replay = copy.copy(self)
        replay._clock = lambda: when
        replay._as_of = when
        return replay

    def _visible(self, until: datetime | None) -> datetime | None:
        """``until`` capped at the replayed moment."""
        if self._as_of is None:
            return until
        return min(until, self._as_of) if until else self._as_of

    def _model(self) -> ModelWriter:
        assert self._writer is not None, "only called in LLM mode"
        return self._writer

    @property
    def mode(self) -> str:
        """``llm`` or ``extractive``."""
        return "llm" if self._llm is not None else "extractive"

    # -- questions ---------------------------------------------------------------------------------------

    def ask(
        self,
        question: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        history: Sequence[Turn] = (),
    ) -> Answer:
        """Answer ``question`` from the corpus (see :meth:`ask_stream`)."""
        return self.ask_stream(question, since=since, until=until, history=history).result()

    def ask_stream(
        self,
        question: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        history: Sequence[Turn] = (),
    ) -> AnswerStream:
        """Validate and read the question (time window, summary request, follow-up); retrieve and check
        relevance now; generate while iterated."""
        question = check_question(question)
        now = self._clock()
        since, until = check_window(since, until, now)
        language = language_of(question)
        if language is not None:
            return self._in_other_language(question, language, since, until, history)
        text, window = parse_question(question, now)
        since, until, label = narrow(since, until, window)
        topic = summary_topic(text) if re.search(r"\w", text) else ""  # only a time phrase: what happened then
        # A request for a summary stands alone, unless it is a bare "What happened?" in a conversation.
        standalone = topic is not None and bool(topic or window or not history)
        lookup = partial(self.passages_text, since=since, until=until)
        queries, clarify = ([text], None) if standalone else read_followup(text, history, self._llm, lookup)
        if clarify:  # a follow-up that can't be resolved: ask which one is meant, don't guess
            log.info("ask.clarify")
            return AnswerStream.of(Answer(question=question, answer=clarify, mode=self.mode, abstained=True))
        topic = topic if standalone else summary_topic(queries[0])
        if topic is not None:
            log.info("ask.summary topic_chars=%d window=%s", len(topic), label or describe_window(since, until))
            return _answering(question, self._summary(topic, since, until, label))
        query, hits, ranked, gap = self._retrieve(queries, since, until)
        lead = ""
        if not ranked.answerable() and window is not None:
            # Nothing in the window the question names: answer from the newest coverage before it.
            older = self._retrieve(queries, None, until, recency=True)
            if older[2].answerable():
                # Another search can find what the window's missed: the line is said only when the best
                # sentence found is older than the window.
                lead = "" if _within(older[2], since) else self._empty_window_line(since, until, label)
                query, hits, ranked, gap = older
                since = label = None
        if query != question:
            log.info("ask.rewritten chars=%d", len(query))
        log.info("ask.retrieved hits=%d best_cosine=%.3f mode=%s", len(hits), ranked.best_cosine, self.mode)
        # A follow-up's abstention names what was searched ("what did Yoon Suk-yeol promise …"), not "he".
        abstain = partial(self._abstained, query if history else question, since, until, label=label)
        if not ranked.answerable():
            return AnswerStream.of(self._gap_answer(question, gap) or abstain())
        extractive_answer = partial(self._extractive_answer, question, ranked)
        if self._llm is None:
            return _led(lead, hits, _with_figures(query, hits, AnswerStream.of(extractive_answer())))
        packed, messages = self._messages("answer", hits, question=query)
        given = [source.hit for source in packed.sources]  # figures cite only what the model was given too
        return _led(lead, hits, _with_figures(query, given, AnswerStream(self._model().generate(
            question, packed, messages, extractive_answer, abstain, floor=extractive_answer, question=query,
        ))))

    def _in_other_language(self, question: str, language: str, since: datetime | None, until: datetime | None,
                           history: Sequence[Turn]) -> AnswerStream:
        """A question in another language: with a model, translated to English, answered from the English
        sources and the answer translated back (markers kept; the English answer, noted, if that fails);
        without one, a plain reply that the sources are English."""
        log.info("ask.other_language language=%s mode=%s", language, self.mode)
        if self._llm is None:
            return AnswerStream.of(Answer(question=question, answer=english_only(language), mode=self.mode,
                                          abstained=True))
        english = self._model().translate(question, "English")
        if english is None or language_of(english) is not None:
            return AnswerStream.of(Answer(question=question, answer=english_only(language), mode=self.mode,
                                          abstained=True))
        answer = self.ask(english, since=since, until=until, history=history)
        translated = self._model().translate(answer.answer, language)
        markers = sorted(re.findall(r"\[\d+\]", answer.answer))
        if translated is None or sorted(re.findall(r"\[\d+\]", translated)) != markers:
            answer.notes.append(f"The sources are in English; the answer could not be translated into {language}.")
        else:
            answer.answer = translated
            answer.notes.append(f"Translated into {language} from English sources.")
        answer.question = question
        return AnswerStream.of(answer)

    def _article_text(self, doc_id: str) -> str:
        """The whole text of an article (its chunks in order): where a country a question names may be."""
        return "\n".join(h.text for h in self._corpus.document_chunks(doc_id))

    def passages_text(self, query: str, *, since: datetime | None, until: datetime | None) -> str:
        """Titles and text of the few passages most relevant to ``query``: what a follow-up's "the president"
        or "she" is resolved with when the conversation itself doesn't say (see :mod:`bot.answer.subject`)."""
        hits = self._search(query, _LOOKUP_K, since, until)
        return "\n\n".join(f"{h.title}\n{h.text}" for h in hits)

    def _empty_window_line(self, since: datetime | None, until: datetime | None, label: str | None) -> str:
        """"Nothing was published in the last 24 hours." (or "Nothing published ... covers this."), ahead of an
        answer from older coverage."""
        window = f" {label}" if label else describe_window(since, until)
        if self._corpus.documents(since=since, until=self._visible(until))[:1]:
            return f"Nothing published{window} covers this."
        return f"Nothing was published{window}."

    def _retrieve(
        self, queries: Sequence[str], since: datetime | None, until: datetime | None, *, recency: bool | None = None
    ) -> tuple[str, list[SearchHit], Ranked, Gap | None]:
        """Search the queries in turn until one passes the relevance gate (else the last one's results).
        Only passages naming everything the query names, together, are evidence (:mod:`bot.answer.constraints`);
        when none does, the first such query and what covers each of its names alone come back as a gap,
        for :meth:`_gap_answer`."""
        gap: Gap | None = None
        for query in queries:
            hits, ranked, check = self._constrained(query, since, until, recency)
            if check is not None and gap is None:
                gap = (query, check)
            if ranked.answerable():
                break
        return query, hits, ranked, gap

    def _constrained(self, query: str, since: datetime | None, until: datetime | None,
                     recency: bool | None) -> tuple[list[SearchHit], Ranked, constraints.Check | None]:
        """The passages for ``query`` that cover its constraints together (searching wider once when the
        first passages don't), ranked without sentences about another person or place than it names; and,
        when none covers them together although the passages are about the question (they pass the
        relevance gate taken together), the check to say so with."""
        hits = self._search(query, ASK_K, since, until, recency=recency)
        check = constraints.check(query, hits, self._article_text)
        if check.constraints and not check.together:
            wider = self._search(query, ASK_K * _WIDER, since, until, recency=recency)
            check = constraints.check(query, wider, self._article_text)
            hits = check.together[:ASK_K] or hits
        else:
            hits = check.together
        if check.combination_missing:
            named = list({h.chunk_id: h for each in check.each.values() for h in each}.values())
            ranked = extractive.rank(query, extractive.candidates(named), self._vectors)
            if not ranked.answerable():  # off topic as a whole ("War and Peace"): a plain abstention
                return hits, ranked, None
            return hits, extractive.rank(query, [], self._vectors), check
        pool = extractive.candidates(hits)
        off = constraints.off_subject(query, pool)
        pool = [s for i, s in enumerate(pool) if i not in off]
        return hits, extractive.rank(query, pool, self._vectors), None

    def _gap_answer(self, question: str, gap: Gap | None) -> Answer | None:
        """"The ingested articles don't cover A and B together", with what they say about each; None
        without a gap."""
        if gap is None:
            return None
        text, citations = constraints.gap_answer(gap[0], gap[1], self._vectors)
        log.info("ask.constraints_not_together names=%d", len(gap[1].constraints))
        return Answer(question=question, answer=text, citations=citations, mode="extractive",
                      as_of=newest_published(citations))

    def _search(self, query: str, k: int, since: datetime | None, until: datetime | None, *,
                recency: bool | None = None) -> list[SearchHit]:
        """Search with the query embedded through the cache: ranking its sentences needs the same vector."""
        vector = self._vectors.embed([query])[0]
        return self._corpus.search(query, k=k, since=since, until=self._visible(until), query_vector=vector,
                                   recency=recency)

    def _extractive_answer(self, question: str, ranked: Ranked) -> Answer:
        text, citations = extractive.compose_answer(extractive.select(ranked, question=question))
        return self._cited(question, text, citations, mode="extractive")

    # -- summaries ---------------------------------------------------------------------------------------

    def summarize(
        self,
        topic: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        max_events: int = MAX_EVENTS,
    ) -> Answer:
        """A cited summary grouped by event: of ``topic``, or of the newest documents in the window."""
        subject = check_question(topic) if topic and topic.strip() else ""
        since, until = check_window(since, until, self._clock())
        return self._summary(subject, since, until, max_events=max_events).result()

    def _summary(
        self,
        subject: str,
        since: datetime | None,
        until: datetime | None,
        label: str | None = None,
        max_events: int = MAX_EVENTS,
    ) -> AnswerStream:
        """:meth:`summarize` as a stream; ``label`` describes the window in messages ("today"). A window the
        question named that holds no article is said so, and the newest coverage before it summarized."""
        lead = ""
        if label and since is not None and not self._corpus.documents(since=since, until=self._visible(until))[:1]:
            lead, since, label = self._empty_window_line(since, until, label), None, None
        abstain = partial(self._abstained, subject, since, until, topic=subject, label=label)
        if subject:
            hits = self._search(subject, SUMMARY_K, since, until)
            wide = 2 * SUMMARY_K  # a summary ranges over more sentences than an answer
            pool = extractive.candidates(hits)
            ranked = extractive.rank(subject, pool, self._vectors, shortlist=wide, first_tier=wide)
            if not ranked.answerable():
                return AnswerStream.of(abstain())
        else:
            return self._top_summary(since, until, label, lead, abstain, max_events)
        events = extractive.summary_events(ranked, max_events)

        def fallback() -> Answer:
            text, citations = extractive.compose_summary(events)
            return self._cited(subject, text, citations, mode="extractive", topic=subject)

        if self._llm is None:
            return _led(lead, hits, AnswerStream.of(fallback()))
        ordered, groups = _grouped_hits(hits, events)
        scope = f"on “{subject}”" if subject else "of the latest coverage"
        scope += f" {label}" if label else describe_window(since, until)
        packed, messages = self._messages("summarize", ordered, groups=groups, scope=scope, max_events=max_events)
        generated = self._model().generate(subject, packed, messages, fallback, abstain, topic=subject)
        return _led(lead, hits, AnswerStream(generated))

    def _top_summary(self, since: datetime | None, until: datetime | None, label: str | None, lead: str,
                     abstain: Callable[[], Answer], max_events: int) -> AnswerStream:
        """A summary without a topic: the window's biggest stories (:mod:`bot.answer.summary_top`), between a line
        saying how much it covers and one naming the stories left out."""
        window = summary_top.default_window(self._corpus, since, self._visible(until), self._clock())
        top = summary_top.top_stories(self._corpus, *window, max_events) if window else None
        if top is None or not top.shown:
            return AnswerStream.of(abstain())
        described = f" {label}" if label else describe_window(top.since, top.until)

        def fallback() -> Answer:
            text, citations = summary_top.compose(top, self._vectors)
            return self._cited("", text, citations, mode="extractive", topic="")

        hits, groups = top.story_hits()
        if self._llm is None:
            stream = AnswerStream.of(fallback())
        else:
            scope = f"of the {len(top.shown)} biggest stories{described}"
            packed, messages = self._messages("summarize", hits, groups=groups, scope=scope,
                                              max_events=len(top.shown))
            stream = AnswerStream(self._model().generate("", packed, messages, fallback, abstain, topic=""))
        return _led(lead, hits, _framed(stream, top, described))

    def summarize_passages(self, topic: str, hits: Sequence[SearchHit], max_sentences: int) -> Answer:
        """A cited summary of given passages (one digest story) in at most ``max_sentences`` sentences."""
        ranked = extractive.rank(topic, extractive.candidates(hits), self._vectors)

        def fallback() -> Answer:
            text, citations = extractive.compose_answer(extractive.select(ranked, max_sentences))
            return self._cited(topic, text, citations, mode="extractive", topic=topic)

        if self._llm is None or not hits:
            return fallback()
        packed, messages = self._messages("digest", list(hits), topic=topic, max_sentences=max_sentences)
        abstain = partial(self._abstained, topic, None, None, topic=topic)
        return AnswerStream(self._model().generate(topic, packed, messages, fallback, abstain, topic=topic)).result()

    # -- generation --------------------------------------------------------------------------------------


    def _messages(self, template: str, hits: Sequence[SearchHit], **values: object
                  ) -> tuple[PackedContext, list[dict[str, str]]]:
        return self._model().messages(template, hits, today=self._clock().date().isoformat(), **values)

    # -- answers -----------------------------------------------------------------------------------------

    def _cited(
        self, subject: str, text: str, citations: list[Citation], *, mode: str, topic: str | None = None
    ) -> Answer:
        if not citations:
            return self._abstained(subject, None, None, topic=topic)
        return Answer(question=subject, answer=text, citations=citations, mode=mode,
                      as_of=newest_published(citations), topic=topic)

    def _abstained(
        self,
        subject: str,
        since: datetime | None,
        until: datetime | None,
        *,
        topic: str | None = None,
        label: str | None = None,
    ) -> Answer:
        """An abstention that says what the corpus does hold: its newest article's date and outlet."""
        return Answer(question=subject, answer=self.abstention_message(subject, since, until, label=label),
                      mode=self.mode, abstained=True, topic=topic)

    def abstention_message(
        self, subject: str, since: datetime | None, until: datetime | None, *, label: str | None = None
    ) -> str:
        """What the corpus does hold, for an abstention (see :func:`bot.answer.abstention.abstention_message`)."""
        return abstention_message(self._corpus, subject, since, until, as_of=self._as_of, label=label)


def _within(ranked: Ranked, since: datetime | None) -> bool:
    """Whether the most relevant sentence comes from an article published since ``since``."""
    if since is None or not ranked.sentences:
        return False
    best = ranked.sentences[int(np.argmax(ranked.relevance))].hit.published
    if not best:
        return False
    when = datetime.fromisoformat(best)
    return (when if when.tzinfo else when.replace(tzinfo=UTC)) >= since


def _led(line: str, hits: Sequence[SearchHit], stream: AnswerStream) -> AnswerStream:
    """``stream`` after a line saying its window was empty and how new the coverage used instead is
    ("Nothing was published today. The newest coverage, from 15 Oct 2020:"); ``stream`` itself without one."""
    if not line:
        return stream
    newest = newest_published([Citation.from_hit(0, h, "") for h in hits])
    line += f" The newest coverage, from {format_date(newest)}:" if newest else " The newest coverage:"

    def deltas() -> Generator[str, None, Answer]:
        yield line + "\n"
        yield from stream
        answer = stream.result()
        if not answer.abstained:
            answer.answer = f"{line}\n{answer.answer}"
        return answer

    return AnswerStream(deltas())


def _framed(stream: AnswerStream, top: summary_top.TopStories, window: str) -> AnswerStream:
    """A top-stories summary between its coverage line and the line offering the stories it left out."""

    def deltas() -> Generator[str, None, Answer]:
        head = top.coverage_line(window)
        yield head + "\n"
        yield from stream
        answer = stream.result()
        tail = "" if answer.abstained else top.also_line()
        if tail:
            yield "\n" + tail
        answer.answer = "\n".join(line for line in (head, answer.answer, tail) if line)
        return answer

    return AnswerStream(deltas())


def _with_figures(question: str, hits: Sequence[SearchHit], stream: AnswerStream) -> AnswerStream:
    """For a question asking for a figure (:mod:`bot.answer.figures`), the answer followed by the exact figures,
    newest first and dated, from the passages ``hits``."""
    if figures.target_of(question) is None:
        return stream

    def deltas() -> Generator[str, None, Answer]:
        yield from stream
        answer = stream.result()
        figured = figures.with_figures(answer, question, hits)
        if figured.answer != answer.answer:
            yield figured.answer[len(answer.answer):]
        return figured

    return AnswerStream(deltas())


def _answering(question: str, summary: AnswerStream) -> AnswerStream:
    """A summary given in answer to ``question``: its Answer carries the question, not a topic."""

    def deltas() -> Generator[str, None, Answer]:
        yield from summary
        answer = summary.result()
        answer.question, answer.topic = question, None
        return answer

    return AnswerStream(deltas())


def _grouped_hits(hits: Sequence[SearchHit], events: Sequence[Event]) -> tuple[list[SearchHit], list[int]]:
    """``hits`` ordered by the first event one of their sentences belongs to (others last), with group ids."""
    other = len(events) + 1
    event_of: dict[str, int] = {}
    for n, event in enumerate(events, start=1):
        for sentence in event.sentences:
            event_of.setdefault(sentence.hit.chunk_id, n)
    ordered = sorted(hits, key=lambda h: event_of.get(h.chunk_id, other))
    return ordered, [event_of.get(h.chunk_id, other) for h in ordered]
