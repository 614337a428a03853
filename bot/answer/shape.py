"""What makes an answer text broken, whatever produced it: the checks `sitrep eval` and the answer
benchmark count, and the engine's last look before it shows a model's answer."""

from __future__ import annotations

import re

from bot.answer.citations import MARKER, answer_spans, marker_ids, repeat_key, strip_markers
from bot.answer.prompts import copies_prompt
from bot.answer.results import Answer

_MIN_REPEAT_WORDS = 4  # "Yes." twice is not a repeated sentence worth flagging


def problems(answer: Answer) -> list[str]:
    """What is wrong with the shape of ``answer``: empty, only markers, a leading marker, text copied from
    sitrep's prompts, a repeated sentence, a marker naming no citation, sources missing. Empty when it is
    fine (an abstention is fine: it is a plain sentence)."""
    text = answer.answer.strip()
    if not text:
        return ["empty"]
    found = []
    if not re.search(r"[^\W\d_]", strip_markers(text)):
        found.append("markers only")
    if MARKER.match(text):
        found.append("starts with a marker")
    sentences = [text[s:e] for s, e in answer_spans(text)]
    if any(copies_prompt(strip_markers(s)) for s in sentences):
        found.append("copies the prompt")
    keys = [repeat_key(s) for s in sentences if len(repeat_key(s).split()) >= _MIN_REPEAT_WORDS]
    if len(keys) != len(set(keys)):
        found.append("repeats a sentence")
    numbers = {c.n for c in answer.citations}
    if any(n not in numbers for m in MARKER.finditer(text) for n in marker_ids(m.group(1))):
        found.append("a marker names no citation")
    if not answer.abstained and not answer.citations:
        found.append("no sources")
    return found
