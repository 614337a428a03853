"""Answers from the chat model: the prompt packed within the token budget, and the model's streamed reply
checked sentence by sentence (:class:`~bot.answer.citations.CitationChecker`) and shown only once it can be
trusted — otherwise the extractive answer under one plain line, or an abstention."""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from dataclasses import replace

import numpy as np

from bot.answer.citations import CitationChecker, Verified, lexical_quote, quotable, support_scores
from bot.answer.context import PackedContext, Source, pack
from bot.answer.extractive import VectorCache
from bot.answer.llm import LLMClient
from bot.answer.prompts import render
from bot.answer.results import Answer
from bot.answer.supplement import with_supplement
from bot.errors import LLMError
from bot.settings import LLMSettings
from retrieval.documents import SearchHit
from retrieval.tokens import count_tokens, encoding_for_model

log = logging.getLogger(__name__)

_MIN_SOURCE_BUDGET = 200  # tokens for sources even when the settings' budget is nearly used by the prompt
ANSWER_TOKENS = 800
MAX_REPLY_CHARS = 6_000  # of model output read at most: a reply of 800 tokens is about 3,500 characters
# Dropped sentences that say nothing false: a preamble without a marker, stray markers, a repetition.
_HARMLESS_DROPS = frozenset({"no valid marker", "no words", "repeats a sentence"})
UNVERIFIED = "The model's answer could not be verified against the sources, so these are the most relevant passages."
MODEL_FOUND_NOTHING = "The model found no answer in the sources, so these are the most relevant passages."


class ModelWriter:
    """Prompts and verified answers from one chat model, for the engine's LLM mode."""

    def __init__(self, settings: LLMSettings, llm: LLMClient, vectors: VectorCache) -> None:
        self._settings = settings
        self._llm = llm
        self._vectors = vectors
        self._encoding = encoding_for_model(settings.model)

    def messages(
        self, template: str, hits: Sequence[SearchHit], *, today: str, groups: Sequence[int] | None = None,
        **values: object,
    ) -> tuple[PackedContext, list[dict[str, str]]]:
        """System and user messages with as many sources as fit ``settings.context_tokens``."""
        system = render("system")
        overhead = count_tokens(system, self._encoding) + count_tokens(
            render(template, today=today, sources="", **values), self._encoding
        )
        budget = max(self._settings.context_tokens - overhead, _MIN_SOURCE_BUDGET)
        packed = pack(hits, budget, self._encoding, groups=groups)
        user = render(template, today=today, sources=packed.text, **values)
        log.info("llm.prompt template=%s sources=%d source_tokens=%d", template, len(packed.sources), packed.tokens)
        return packed, [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def generate(
        self,
        subject: str,
        packed: PackedContext,
        messages: list[dict[str, str]],
        fallback: Callable[[], Answer],
        abstain: Callable[[], Answer],
        *,
        topic: str | None = None,
        floor: Callable[[], Answer] | None = None,
        question: str = "",
    ) -> Generator[str, None, Answer]:
        """Stream the model's reply through the citation checker.

        Verified sentences are held back until the answer can be trusted (:func:`_trusted`: more
        sentences kept than dropped as unsupported); from then on each verified sentence is shown as it
        is settled, so nothing shown is ever taken back. So that it never says less than the extractive
        answer ``floor``, the sentences of that answer it leaves out follow it, under one line
        (:func:`~bot.answer.supplement.with_supplement`). An answer never trusted is replaced by ``fallback`` (the
        extractive answer) with one line saying so, or by ``abstain`` when that is empty too. A failing
        model gives ``fallback`` with a note, or the error (``SITREP_LLM_FALLBACK``).
        """
        assert self._llm is not None
        checker = CitationChecker(packed.sources, question or subject)
        held: list[str] = []
        shown = False
        baseline = floor() if floor is not None else None
        try:
            for delta in self._llm.stream(messages, max_tokens=ANSWER_TOKENS):
                held.append(checker.feed(delta))
                shown = shown or _trusted(checker)
                if shown and any(held):
                    yield "".join(held)
                    held.clear()
                if checker.raw_chars > MAX_REPLY_CHARS:  # a runaway model: what came so far is plenty
                    log.warning("llm.reply_cut chars=%d", checker.raw_chars)
                    break
            held.append(checker.finish())
        except LLMError as exc:
            if shown:  # part of a verified answer is already out: keep it, say it was cut short
                answer = self._from_verified(subject, checker.result(self._quote), topic)
                answer.notes.append(f"The answer was cut short: {exc}")
                return (yield from _supplemented(answer, baseline, question))
            if self._settings.fallback != "extractive":
                raise
            answer = fallback()
            answer.notes.append(f"{exc} This is an extractive answer instead.")
            if answer.answer:
                yield answer.answer
            return answer
        verified = checker.result(self._quote)
        log.info("llm.verified citations=%d kept=%d dropped=%d reasons=%s removed_markers=%d model_abstained=%s",
                 len(verified.citations), verified.kept, verified.dropped, dict(verified.reasons),
                 verified.removed_markers, verified.model_abstained)
        if shown or (not verified.abstained and _trusted(checker)):
            if any(held):
                yield "".join(held)
            return (yield from _supplemented(self._from_verified(subject, verified, topic), baseline, question))
        answer = baseline or fallback()
        if answer.abstained:
            answer = abstain()
        else:
            why = (MODEL_FOUND_NOTHING if verified.model_abstained and not verified.kept else UNVERIFIED)
            answer = replace(answer, answer=f"{why}\n{answer.answer}", notes=list(answer.notes))
        log.info("llm.fallback kind=%s", "abstain" if answer.abstained else "extractive")
        yield answer.answer
        return answer

    def translate(self, text: str, language: str) -> str | None:
        """``text`` in ``language`` by the model, or None when it fails or replies with nothing."""
        prompt = render("translate", language=language, text=text)
        try:
            reply = self._llm.complete([{"role": "user", "content": prompt}], max_tokens=ANSWER_TOKENS)
        except LLMError as exc:
            log.warning("ask.translate_failed error=%s", exc)
            return None
        reply = reply.strip().strip("\"“”")
        return reply or None

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


def _supplemented(answer: Answer, floor: Answer | None, question: str) -> Generator[str, None, Answer]:
    """``answer`` (already shown) with what the extractive answer ``floor`` says and it doesn't, yielded after it."""
    full = with_supplement(answer, floor, question)
    if full is not answer:
        yield full.answer[len(answer.answer):]
    return full


def _trusted(checker: CitationChecker) -> bool:
    """Whether verified answer text can be shown: some of it survived, and the model had more sentences
    kept than dropped for what they claimed (a model inventing half its answer is not trusted with the
    rest). Whether it says less than the extractive answer is settled at its end (:mod:`supplement`)."""
    invented = sum(n for reason, n in checker.reasons.items() if reason not in _HARMLESS_DROPS)
    return bool(checker.kept) and invented < checker.kept + 1
