"""The answer engine: retrieve → check relevance → pack sources → generate → verify citations → Answer.

One engine serves the CLI, ``sitrep chat``, the Slack bot and the digest. It answers only from the
corpus: when no retrieved sentence passes the relevance gate (:meth:`bot.extractive.Ranked.answerable`:
MiniLM cosine and the share of the question's words) it abstains without asking the model; when the model
replies with the abstain token, or cites nothing valid, it abstains too. Modes:

- ``llm``: the packed, delimited sources and the question go to the chat model; its streamed reply is
  checked sentence by sentence (:mod:`bot.citations`). If the model fails, ``SITREP_LLM_FALLBACK``
  decides: an extractive answer with a note, or the error.
- ``extractive``: the most relevant, non-redundant sentences, each cited (:mod:`bot.extractive`).

Follow-ups are rewritten into standalone questions (:mod:`bot.rewrite`) before retrieval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from bot import extractive
from bot.citations import CitationChecker, Verified, lexical_quote, newest_published, quotable, support_scores
from bot.context import PackedContext, Source, pack, published_date
from bot.extractive import Event, Ranked, VectorCache
from bot.llm import LLMClient
from bot.prompts import render
from bot.results import Answer, Citation
from bot.rewrite import standalone_question
from bot.settings import Settings
from retrieval.documents import SearchHit
from retrieval.errors import LLMError, QueryError
from retrieval.search import check_query
from retrieval.timeparse import check_not_future
from retrieval.tokens import count_tokens, encoding_for_model

if TYPE_CHECKING:
    from retrieval.corpus import Corpus, DocumentInfo

log = logging.getLogger(__name__)

ASK_K = 8  # passages retrieved for a question
SUMMARY_K = 16  # passages retrieved for a topic summary
SUMMARY_DOCS = 12  # newest documents read for a summary without a topic
SUMMARY_LEAD_SENTENCES = 5  # of each document's first chunk: the lead carries the news
MAX_EVENTS = 6
_MIN_SOURCE_BUDGET = 200  # tokens for sources even when the settings' budget is nearly used by the prompt
_ANSWER_TOKENS = 800


@dataclass(frozen=True)
class Turn:
    """One message of a conversation."""

    role: str  # "user" | "assistant"
    text: str


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


def check_window(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """Validate a date window (naive datetimes are UTC): ``since`` not in the future, not after ``until``."""
    since = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    until = until.replace(tzinfo=UTC) if until is not None and until.tzinfo is None else until
    if since is not None:
        check_not_future(since, name="--since")
    if since is not None and until is not None and since > until:
        raise QueryError("--since is later than --until; nothing can match.")
    return since, until


def check_question(question: str | None) -> str:
    """The question with whitespace tidied, or QueryError (empty, over 2,000 characters, no words)."""
    return " ".join(check_query(question or "").split())


def describe_window(since: datetime | None, until: datetime | None) -> str:
    """`` since 2020-10-14`` / `` until ...`` / `` between ... and ...`` / empty."""
    if since and until:
        return f" between {since.date().isoformat()} and {until.date().isoformat()}"
    if since:
        return f" since {since.date().isoformat()}"
    if until:
        return f" until {until.date().isoformat()}"
    return ""


class Engine:
    """Grounded answers and summaries over a corpus."""

    def __init__(self, settings: Settings, corpus: Corpus, *, llm: LLMClient | None = None) -> None:
        self._settings = settings
        self._corpus = corpus
        self._vectors = VectorCache(corpus.embed)
        self._llm = llm or (LLMClient(settings) if settings.use_llm else None)
        self._encoding = encoding_for_model(settings.llm_model)

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
        """Validate, rewrite a follow-up, retrieve and check relevance now; generate while iterated."""
        question = check_question(question)
        since, until = check_window(since, until)
        query = standalone_question(question, history, self._llm)
        if query != question:
            log.info("ask.rewritten chars=%d", len(query))
        hits = self._corpus.search(query, k=ASK_K, since=since, until=until)
        ranked = extractive.rank(query, extractive.candidates(hits), self._vectors)
        log.info("ask.retrieved hits=%d best_cosine=%.3f mode=%s", len(hits), ranked.best_cosine, self.mode)
        if not ranked.answerable():
            return AnswerStream.of(self._abstained(question, since, until))
        if self._llm is None:
            return AnswerStream.of(self._extractive_answer(question, ranked))
        packed, messages = self._messages("answer", hits, question=query)
        return AnswerStream(self._generate(
            question, packed, messages,
            fallback=partial(self._extractive_answer, question, ranked),
            abstain=partial(self._abstained, question, since, until),
        ))

    def _extractive_answer(self, question: str, ranked: Ranked) -> Answer:
        text, citations = extractive.compose_answer(extractive.select(ranked))
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
        since, until = check_window(since, until)
        if subject:
            hits = self._corpus.search(subject, k=SUMMARY_K, since=since, until=until)
            wide = 2 * SUMMARY_K  # a summary ranges over more sentences than an answer
            pool = extractive.candidates(hits)
            ranked = extractive.rank(subject, pool, self._vectors, shortlist=wide, first_tier=wide)
            if not ranked.answerable():
                return self._abstained(subject, since, until, topic=subject)
        else:
            docs = self._corpus.documents(since=since, until=until)[:SUMMARY_DOCS]
            hits = [chunks[0] for chunks in (self._corpus.document_chunks(d.doc_id) for d in docs) if chunks]
            pool = extractive.candidates(hits, per_hit=SUMMARY_LEAD_SENTENCES)
            if not pool:
                return self._abstained("", since, until, topic=subject)
            ranked = extractive.in_order(pool, self._vectors)
        events = extractive.summary_events(ranked, max_events)

        def fallback() -> Answer:
            text, citations = extractive.compose_summary(events)
            return self._cited(subject, text, citations, mode="extractive", topic=subject)

        if self._llm is None:
            return fallback()
        ordered, groups = _grouped_hits(hits, events)
        scope = f"on “{subject}”" if subject else "of the latest coverage"
        scope += describe_window(since, until)
        packed, messages = self._messages("summarize", ordered, groups=groups, scope=scope, max_events=max_events)
        abstain = partial(self._abstained, subject, since, until, topic=subject)
        return AnswerStream(self._generate(subject, packed, messages, fallback, abstain, topic=subject)).result()

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
        return AnswerStream(self._generate(topic, packed, messages, fallback, abstain, topic=topic)).result()

    # -- generation --------------------------------------------------------------------------------------

    def _messages(
        self, template: str, hits: Sequence[SearchHit], *, groups: Sequence[int] | None = None, **values: object
    ) -> tuple[PackedContext, list[dict[str, str]]]:
        """System and user messages with as many sources as fit ``settings.context_tokens``."""
        today = datetime.now(UTC).date().isoformat()
        system = render("system")
        overhead = count_tokens(system, self._encoding) + count_tokens(
            render(template, today=today, sources="", **values), self._encoding
        )
        budget = max(self._settings.context_tokens - overhead, _MIN_SOURCE_BUDGET)
        packed = pack(hits, budget, self._encoding, groups=groups)
        user = render(template, today=today, sources=packed.text, **values)
        log.info("llm.prompt template=%s sources=%d source_tokens=%d", template, len(packed.sources), packed.tokens)
        return packed, [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _generate(
        self,
        subject: str,
        packed: PackedContext,
        messages: list[dict[str, str]],
        fallback: Callable[[], Answer],
        abstain: Callable[[], Answer],
        *,
        topic: str | None = None,
    ) -> Generator[str, None, Answer]:
        """Stream the model's reply through the citation checker; on failure use ``fallback`` (or raise,
        per ``SITREP_LLM_FALLBACK``); when nothing cited survives, ``abstain``."""
        assert self._llm is not None
        checker = CitationChecker(packed.sources)
        emitted = False
        try:
            for delta in self._llm.stream(messages, max_tokens=_ANSWER_TOKENS):
                text = checker.feed(delta)
                if text:
                    emitted = True
                    yield text
            text = checker.finish()
            if text:
                yield text
        except LLMError as exc:
            if emitted:  # part of a verified answer is already out: keep it, say it was cut short
                verified = checker.result(self._quote)
                answer = self._from_verified(subject, verified, topic)
                answer.notes.append(f"The answer was cut short: {exc}")
                return answer
            if self._settings.llm_fallback != "extractive":
                raise
            answer = fallback()
            answer.notes.append(f"{exc} This is an extractive answer instead.")
            if answer.answer:
                yield answer.answer
            return answer
        verified = checker.result(self._quote)
        log.info("llm.verified citations=%d dropped_sentences=%d removed_markers=%d model_abstained=%s",
                 len(verified.citations), verified.dropped, verified.removed_markers, verified.model_abstained)
        if verified.abstained:
            answer = abstain()
            yield answer.answer
            return answer
        return self._from_verified(subject, verified, topic)

    def _from_verified(self, subject: str, verified: Verified, topic: str | None) -> Answer:
        return Answer(question=subject, answer=verified.text, citations=verified.citations, mode="llm",
                      as_of=verified.as_of, topic=topic)

    def _quote(self, source: Source, claims: list[str]) -> str:
        """The cited chunk's sentence that best supports ``claims``: by shared words, else by embeddings."""
        sentences = quotable(source.hit.text)
        if not claims or max(support_scores(sentences, claims)) > 0:
            return lexical_quote(source, claims)
        vecs = self._vectors.embed([*claims, *sentences])
        best = int(np.argmax((vecs[len(claims) :] @ vecs[: len(claims)].T).max(axis=1)))
        return sentences[best]

    # -- answers -----------------------------------------------------------------------------------------

    def _cited(
        self, subject: str, text: str, citations: list[Citation], *, mode: str, topic: str | None = None
    ) -> Answer:
        if not citations:
            return self._abstained(subject, None, None, topic=topic)
        return Answer(question=subject, answer=text, citations=citations, mode=mode,
                      as_of=newest_published(citations), topic=topic)

    def _abstained(
        self, subject: str, since: datetime | None, until: datetime | None, *, topic: str | None = None
    ) -> Answer:
        """An abstention that says what the corpus does hold: its newest article's date and outlet."""
        return Answer(question=subject, answer=self.abstention_message(subject, since, until), mode=self.mode,
                      abstained=True, topic=topic)

    def abstention_message(self, subject: str, since: datetime | None, until: datetime | None) -> str:
        """"The ingested articles don't cover …; the newest article is from <date> (<outlet>)." """
        newest = self._newest_document()
        if newest is None:
            return (
                "No articles have been ingested yet, so there is nothing to answer from; "
                "add some with `sitrep ingest`."
            )
        tail = f"the newest article is from {published_date(newest.published)} ({newest.source or 'unknown outlet'})."
        window = describe_window(since, until)
        if window and not self._corpus.documents(since=since, until=until)[:1]:
            return f"No ingested article was published{window}; {tail}"
        shown = subject if len(subject) <= 120 else subject[:117] + "…"
        what = f"“{shown}”" if shown else "this"
        return f"The ingested articles{window} don't cover {what}; {tail}"

    def _newest_document(self) -> DocumentInfo | None:
        """The most recently published document, read without listing the whole corpus when possible."""
        stats = self._corpus.stats()
        if not stats.documents:
            return None
        newest = datetime.fromisoformat(stats.newest_published) if stats.newest_published else None
        if newest is not None and newest.tzinfo is None:
            newest = newest.replace(tzinfo=UTC)
        docs = self._corpus.documents(since=newest) or self._corpus.documents()
        return docs[0] if docs else None


def _grouped_hits(hits: Sequence[SearchHit], events: Sequence[Event]) -> tuple[list[SearchHit], list[int]]:
    """``hits`` ordered by the first event one of their sentences belongs to (others last), with group ids."""
    other = len(events) + 1
    event_of: dict[str, int] = {}
    for n, event in enumerate(events, start=1):
        for sentence in event.sentences:
            event_of.setdefault(sentence.hit.chunk_id, n)
    ordered = sorted(hits, key=lambda h: event_of.get(h.chunk_id, other))
    return ordered, [event_of.get(h.chunk_id, other) for h in ordered]
