"""Turning a follow-up ("and what did NATO say?") into a standalone question from the conversation.

Only follow-ups are rewritten: short messages, messages that start like a continuation ("and ...",
"what about ...") or that lean on pronouns ("they", "there"). With a language model the rewrite prompt
resolves the references; without one (or if it fails) a heuristic carries the previous question's names
and places over, or, for "what about X?", asks the previous question again about X.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from bot.citations import strip_markers, terms
from bot.extractive import entities
from bot.prompts import render
from retrieval.errors import LLMError

if TYPE_CHECKING:
    from bot.engine import Turn

log = logging.getLogger(__name__)

_CONTINUATION = re.compile(
    r"^\s*(?:and|also|but|so|then|plus|what about|how about|what else|anything else|same for|and what about)\b",
    re.IGNORECASE,
)
_SWAP = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+(?P<subject>.+?)\s*[?.!]*\s*$", re.IGNORECASE)
_PRONOUNS = frozenset(
    {"it", "its", "they", "them", "their", "theirs", "he", "him", "his", "she", "her", "there", "that", "those",
     "these", "this"}
)
_SHORT = 4  # words: "and NATO?", "why?", "how many?"
_HISTORY_TURNS = 6
_MAX_REWRITE_CHARS = 500


class Completer(Protocol):
    def complete(self, messages: Sequence[dict[str, str]], *, max_tokens: int = ...) -> str: ...


def is_followup(question: str) -> bool:
    """Whether ``question`` probably depends on the conversation before it."""
    words = re.findall(r"[\w'’]+", question.lower())
    return len(words) <= _SHORT or bool(_CONTINUATION.match(question)) or any(w in _PRONOUNS for w in words)


def heuristic_rewrite(question: str, previous: str) -> str:
    """Standalone form of ``question`` given the previous (standalone) question, without a model."""
    swap = _SWAP.match(question)
    if swap:
        subject = swap.group("subject")
        names = entities(previous)
        if names:
            return previous.replace(names[-1], subject)
        return f"{previous.rstrip(' ?.!')} — {subject}?"
    present = terms(question)
    carried = [e for e in entities(previous) if not terms(e) <= present]
    if not carried:
        carried = [w for w in re.findall(r"[\w'’-]+", previous) if terms(w) and not terms(w) <= present][:6]
    core = _CONTINUATION.sub("", question, count=1).strip(" ,") or question
    if not carried:
        return core
    return f"{core.rstrip(' ?.!')} ({' '.join(carried)})?"


def standalone_question(question: str, history: Sequence[Turn], llm: Completer | None = None) -> str:
    """The question to search for: ``question`` itself, or its rewrite when it is a follow-up."""
    user_turns = [t.text for t in history if t.role == "user"]
    if not user_turns or not is_followup(question):
        return question
    previous = user_turns[0]
    for turn in user_turns[1:]:  # earlier follow-ups are resolved in order, so context chains
        previous = heuristic_rewrite(turn, previous) if is_followup(turn) else turn
    if llm is not None:
        rewritten = _model_rewrite(question, history, llm)
        if rewritten:
            return rewritten
    return heuristic_rewrite(question, previous)


def _model_rewrite(question: str, history: Sequence[Turn], llm: Completer) -> str | None:
    lines = []
    for turn in history[-_HISTORY_TURNS:]:
        text = strip_markers(turn.text) if turn.role == "assistant" else turn.text
        lines.append(f"{turn.role}: {' '.join(text.split())[:400]}")
    prompt = render("rewrite", history="\n".join(lines), question=question)
    try:
        reply = llm.complete([{"role": "user", "content": prompt}], max_tokens=120)
    except LLMError as exc:
        log.warning("rewrite.llm_failed error=%s", exc)
        return None
    first = next((line.strip().strip("\"'“”") for line in reply.splitlines() if line.strip()), "")
    if not first or len(first) > _MAX_REWRITE_CHARS:
        return None
    return first
