"""Answers and summaries without a language model: query-focused sentence selection.

Candidate sentences come from the retrieved passages. A cheap lexical pass (question words weighted by
rarity, plus a bonus for counted figures when the question asks "how many") shortlists a few that are
embedded with the store's model (``corpus.embed``, cached per sentence). Relevance is the cosine to the
question plus the lexical score; MMR then picks relevant, non-redundant sentences. The answer lists them
by document and position, each followed by its ``[n]``. When another outlet gives a different figure
for the same thing, its sentence is shown right next to the first one; figures are never merged.

Sentences that address an assistant ("ignore your instructions", "reply ...") or carry citation-like
markers or Slack mentions (``[7]``, ``<!channel>``) are never selected: an article is data.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bot.answer.context import looks_like_injection, published_date
from bot.answer.results import Citation, article_key
from bot.answer.support import Span, name_supported
from bot.answer.words import NUMBER_WORDS, concepts, digits, one_edit, terms
from retrieval.documents import SearchHit
from retrieval.text import is_heading, sentence_spans

EmbedFn = Callable[[Sequence[str]], np.ndarray]

# The relevance gate (calibrated on the sample article and the test fixtures, MiniLM cosines): a
# question is answerable when some retrieved sentence is semantically close to it (cosine >= STRONG;
# answerable questions reach 0.45-0.8, unrelated ones such as "What is the capital of Peru?" 0.1-0.25),
# or is at least loosely related (>= WEAK) and contains most of the question's content words, weighted by
# rarity. Country names lift the cosine of off-topic questions ("What is the weather in Kabul?" 0.44), so
# the word test decides the middle band.
STRONG = 0.55
WEAK = 0.2
COVERAGE = 0.5
# MiniLM barely knows names ("Who is Ross Wilson?" scores 0.1 against the sentence naming him): a sentence
# holding nearly all of the question's words, weighted by rarity, is enough on its own. And a question
# naming something no passage mentions ("... in Kandahar?", "the 2018 World Cup") is never answerable.
FULL_COVERAGE = 0.8
MAX_SENTENCES = 5
SHORTLIST = 12  # sentences embedded per question at most: MiniLM costs 8-15 ms a sentence on a small CPU
FIRST_TIER = 4  # ... of which these first (most answers use 1-3); the rest only if these fail the relevance gate
_EMBED_WORDS = 48  # a long sentence (or a quotation kept whole) is embedded by its opening words
_MMR_LAMBDA = 0.7
_KEEP_RATIO = 0.75  # a sentence joins the answer only if its relevance is near the best one's
_KEEP_COVERAGE = 0.5  # ... and it has at least half the best sentence's share of the question's words
_SUMMARY_KEEP_RATIO = 0.6  # a topic summary ranges wider than an answer
ITEMS_PER_EVENT = 2
_DUPLICATE = 0.9  # cosine above which two sentences say the same (wire copy, overlapping chunks)
SAME_EVENT = 0.55  # cosine between two sentences (or passage centroids) reporting the same event
_MIN_WORDS = 4
DIFFERENT_FIGURE = "gives a different figure:"  # "<outlet> gives a different figure: <its sentence> [2]"
# A capitalized run ("Jens Stoltenberg", "Nad Ali") or an acronym; the first word of the text is skipped.
_ENTITY = re.compile(r"(?<![.?!]\s)(?<!^)\b(?:[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)*)")
_CALENDAR = frozenset(
    "i january february march april may june july august september october november december monday tuesday "
    "wednesday thursday friday saturday sunday".split(" ")
)
_HEADING = re.compile(r"#{1,6}[ \t]+")
_LABEL_END = re.compile(r"[.!?:;,\"”'’)\]]\s*$")
_LINE_BREAKS = re.compile(r"\s*\n\s*")
_MAX_QUOTE_SPANS = 4  # sentences one quotation may span before we stop looking for its end

_SAY_QUESTION = re.compile(
    r"\bwhat\s+(?:did|does|do|has|have|had)\s+(?P<who>.+?)\s+(?:say|said|tell|told|announce|write|post|tweet)\b",
    re.IGNORECASE,
)
# "Which wildly popular show was …?": the noun naming what is asked for ("show").
_WH_HEAD = re.compile(
    r"\b(?:which|what)\s+(?:[a-z][\w'’-]*\s+){0,3}?(?P<head>[a-z][\w-]{2,})\s+"
    r"(?:is|was|are|were|will|would|did|does|do|has|have|had|can|could|should|recently|just|now)\b",
    re.IGNORECASE,
)
_PERSON_PRONOUN = re.compile(r"(?:He|She|They)\s")
_OPENS_SENTENCE = re.compile(r"[“\"‘']?[A-Z0-9]")  # not the tail of a quotation ("” … It is probable …")
_QUOTE_MARK = re.compile(r"[“”\"]")
_REPORTED = re.compile(r"\b(?:he|she|they|it|we)\s+(?:said|says|added|told|stated|wrote)\b", re.IGNORECASE)
_COUNT_QUESTION = re.compile(r"\bhow (?:many|much)\b|\bnumber of\b|\btoll\b|\bcasualt|\bfigures?\b", re.IGNORECASE)
# Words that say what kind of answer is wanted, not what it is about: no sentence has to contain them.
_GENERIC = frozenset(terms(
    "happened happening latest news new tell know number figure figures situation update updates overview summary "
    # Reporting verbs: "The IRS announced it will do what?" is answered by what it will do, in any words.
    "announce announced announces announcement report reported reports reveal revealed reveals told"
))
_LONGEST_FIRST = "|".join(sorted(list(NUMBER_WORDS)[1:], key=len, reverse=True))  # "nineteen" before "nine"
_NUMBER = (
    rf"(?:\d[\d,.]*|{_LONGEST_FIRST}|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundreds?|thousands?|dozens?)"
)
_COUNTED = (
    r"(?:people|persons|civilians|soldiers|troops|members|fighters|militants|insurgents|children|women|men|"
    r"families|dead|killed|wounded|injured|casualties|houses|homes|individuals|police(?:men)?|officers|"
    r"personnel|Taliban|residents|commandos)"
)
_FIGURE = re.compile(
    rf"(?<![\w-])({_NUMBER}(?:\s*(?:to|and|-|–)\s*{_NUMBER})?)(?:\s+[\w-]+){{0,3}}?\s+{_COUNTED}\b", re.IGNORECASE
)


@dataclass(frozen=True)
class Sentence:
    """A candidate sentence: verbatim ``hit.text[start:end]``."""

    hit: SearchHit
    hit_index: int  # rank order of its passage among the hits
    start: int
    end: int

    @property
    def text(self) -> str:
        return self.hit.text[self.start : self.end]

    @property
    def shown(self) -> str:
        """The text as an answer line shows it: a heading it carries (see :func:`candidates`) before a colon."""
        return _LINE_BREAKS.sub(": ", self.text.strip())

    @property
    def position(self) -> int:
        """Offset in the document, for reading order."""
        return self.hit.char_start + self.start


@dataclass(frozen=True)
class Item:
    """One line of an extractive answer: a sentence and, when figures disagree, another outlet's."""

    sentence: Sentence
    counterpart: Sentence | None = None


@dataclass(frozen=True)
class Ranked:
    """Shortlisted sentences with their relevance to the question, the parts it is made of (cosine,
    share of the question's content words), and their embeddings (rows)."""

    sentences: list[Sentence]
    relevance: np.ndarray
    cosine: np.ndarray
    coverage: np.ndarray
    vectors: np.ndarray
    has_terms: bool = True  # the question has content words (not just "What happened?")
    missing: tuple[str, ...] = ()  # names in the question that no retrieved passage mentions
    by_order: bool = False  # ranked by position (newest leads first), not against a question

    @property
    def best_cosine(self) -> float:
        return float(self.cosine.max()) if len(self.cosine) else 0.0

    def answerable(self) -> bool:
        """Whether the passages can answer: every name in the question is mentioned, and some sentence
        passes the relevance gate (see STRONG, WEAK, COVERAGE, FULL_COVERAGE)."""
        if not len(self.cosine) or self.missing:
            return False
        if not self.has_terms:
            return bool((self.cosine >= WEAK).any())
        semantic = (self.cosine >= STRONG) | ((self.cosine >= WEAK) & (self.coverage >= COVERAGE))
        return bool((semantic | (self.coverage >= FULL_COVERAGE)).any())


class VectorCache:
    """Embeddings of texts already seen, so repeated passages cost nothing (bounded LRU, thread-safe)."""

    def __init__(self, embed: EmbedFn, max_items: int = 50_000) -> None:
        self._embed = embed
        self._max = max_items
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors (rows) for ``texts``, computing only those not cached."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        # Cost grows with length; a sentence's opening carries its topic.
        fresh = self._embed([" ".join(t.split()[:_EMBED_WORDS]) for t in missing]) if missing else []
        with self._lock:
            for text, vec in zip(missing, fresh, strict=True):
                self._vectors[text] = np.asarray(vec, dtype=np.float32)
            rows = [self._vectors[t] for t in texts]
            for text in texts:
                self._vectors.move_to_end(text)
            while len(self._vectors) > self._max:
                self._vectors.popitem(last=False)
        return np.stack(rows)


def entities(text: str) -> list[str]:
    """Names, places and acronyms in ``text``: capitalized runs not at the start of a sentence (dates'
    month and day names excepted, since articles carry dates as metadata)."""
    if text.isupper():  # SHOUTED TEXT has no telling capitals
        return []
    found = [m.group(0) for m in _ENTITY.finditer(text.strip()) if m.group(0).lower() not in _CALENDAR]
    return list(dict.fromkeys(found))


def missing_entities(question: str, hits: Sequence[SearchHit]) -> list[str]:
    """The question's names that no passage mentions, allowing spelling variants ("Defence"/"Defense",
    "Lashkar Gah"/"Lashkargah", "Afghans"/"Afghan"), acronyms for full names and the start of an acronym
    ("UN"/"United Nations"/"UNAMA"), and titles left out ("President Ghani"/"Ghani")."""
    names = entities(question)
    if not names:
        return []
    unique = list({h.chunk_id: h for h in hits}.values())
    texts = [h.text.lower() for h in unique]
    squashed = "\n".join(re.sub(r"[\s’'-]+", "", t) for t in texts)
    vocabulary = {w for t in texts for w in re.findall(r"\w+", t)}
    everything = Span(" ".join(h.text for h in unique), tuple(h.title for h in unique))
    return [name for name in names
            if not _mentioned(name, squashed, vocabulary) and not name_supported(name, everything)]


def _mentioned(name: str, squashed: str, vocabulary: set[str]) -> bool:
    key = re.sub(r"[\s’'-]+", "", name.lower())
    if len(key) > 4 and key in squashed:
        return True
    words = re.findall(r"\w+", name.lower())
    return bool(words) and all(_known(w, vocabulary) for w in words)


def _known(word: str, vocabulary: set[str]) -> bool:
    if word in vocabulary:
        return True
    if len(word) <= 3:  # acronyms: exact only
        return False
    return any(
        v.startswith(word) or (word.startswith(v) and len(v) >= 4) or (len(word) >= 5 and one_edit(word, v))
        for v in vocabulary
        if v[:1] == word[:1]
    )


def figures(sentence: str) -> frozenset[str]:
    """Counted figures in a sentence ("nine people", "8 to 15 civilians"), number words as digits."""
    found = set()
    for match in _FIGURE.finditer(sentence):
        numbers = [digits(w) for w in re.findall(r"[\w,.]+", match.group(1).lower())]
        found.add("-".join(n.strip(",.") for n in numbers if n not in ("to", "and")))
    return frozenset(found)


def quoted_spans(text: str) -> list[tuple[int, int]]:
    """Sentence spans, with a quotation that runs over several sentences kept in one span, so a
    selected sentence never opens or closes a quote it does not contain."""
    spans = sentence_spans(text)
    merged: list[tuple[int, int]] = []
    i = 0
    while i < len(spans):
        start, end = spans[i]
        j = i
        while _open_quotes(text[start:end]) and j + 1 < len(spans) and j - i < _MAX_QUOTE_SPANS:
            j += 1
            end = spans[j][1]
        if _open_quotes(text[start:end]):  # unbalanced even so: keep the sentence as the splitter saw it
            j, end = i, spans[i][1]
        merged.append((start, end))
        i = j + 1
    return merged


def _open_quotes(text: str) -> bool:
    return text.count("“") > text.count("”") or text.count('"') % 2 == 1


def candidates(hits: Sequence[SearchHit], per_hit: int | None = None) -> list[Sentence]:
    """Usable sentences of ``hits`` (the first ``per_hit`` of each): not too short, not instructions, not a
    headline or subheading standing on its own line (:func:`retrieval.text.is_heading`), each text once per
    document, without a Markdown heading's leading ``#``. A sentence opening a line under a short label
    carries that label (:func:`_under_label`): in a roundup, "Tony Awards" above "Broadway's best were
    recognized Sunday night" is what the sentence is about."""
    seen: set[tuple[str, str]] = set()
    out: list[Sentence] = []
    for i, hit in enumerate(hits):
        for start, end in quoted_spans(hit.text)[:per_hit]:
            heading = _HEADING.match(hit.text, start, end)
            start = heading.end() if heading else _under_label(hit.text, start)
            text = hit.text[start:end]
            key = (hit.doc_id, text)
            if (key in seen or len(text.split()) < _MIN_WORDS or is_heading(hit.text, start, end)
                    or looks_like_injection(text)):
                continue
            seen.add(key)
            out.append(Sentence(hit=hit, hit_index=i, start=start, end=end))
    return out


def _under_label(text: str, start: int) -> int:
    """Where the heading line above the sentence at ``start`` begins, when the sentence opens its line
    (after at most a short kicker such as "Green light!") and the line above is a label of a few words
    without punctuation at its end; ``start`` otherwise."""
    line = text.rfind("\n", 0, start) + 1
    if line == 0 or len(text[line:start].split()) >= _MIN_WORDS:
        return start
    above = text.rfind("\n", 0, line - 1) + 1
    label = text[above : line - 1]
    words = len(label.split())
    # Shorter than a candidate sentence, so never shown twice; a Markdown heading is a candidate itself.
    if not 0 < words < _MIN_WORDS or _LABEL_END.search(label) or label.lstrip().startswith("#"):
        return start
    return above + len(label) - len(label.lstrip())


def coverage(question: str, sentences: Sequence[Sentence]) -> np.ndarray:
    """Share of the question's content words (weighted by rarity among candidates) in each sentence, a
    synonym counting as the word (see :func:`concepts`), and a name as named another way ("UN" by
    "UNAMA", "President Ghani" by "Ghani": see :func:`bot.answer.support.name_supported`)."""
    wanted = concepts(question) - _GENERIC
    scores = np.zeros(len(sentences))
    if not sentences or not wanted:
        return scores
    asked = [(name, concepts(name)) for name in entities(question)]
    sets = []
    for sentence in sentences:
        found = concepts(sentence.text, broader=True)
        span = Span(sentence.text)
        for name, words in asked:
            if not words <= found and name_supported(name, span):
                found |= words
        sets.append(found)
    df = Counter(t for s in sets for t in s & wanted)
    weight = {t: math.log(1 + len(sets) / (1 + df[t])) for t in wanted}
    total = sum(weight.values())
    scores += [sum(weight[t] for t in s & wanted) / total for s in sets]
    return scores


def figure_bonus(question: str, sentences: Sequence[Sentence]) -> np.ndarray:
    """A bonus for sentences with counted figures when the question asks "how many"."""
    if not _COUNT_QUESTION.search(question):
        return np.zeros(len(sentences))
    return np.array([0.15 if figures(s.text) else 0.0 for s in sentences])


def rank(question: str, pool: Sequence[Sentence], vectors: VectorCache, shortlist: int = SHORTLIST,
         first_tier: int = FIRST_TIER) -> Ranked:
    """Shortlist ``pool`` lexically (with a small prior for better-ranked passages), then embed and score:
    relevance = cosine + 0.25 x (word coverage + figure bonus). A question asking for a count is answered
    by sentences that give one: when any shortlisted sentence holds a counted figure, the others are left
    out of the answer (they still count for the relevance gate).

    Embedding is the cost, so it goes in two tiers: the ``first_tier`` best sentences, and only when
    they don't pass the relevance gate, the rest of the ``shortlist`` (already embedded ones are cached).
    A question naming something no passage mentions is settled before anything is embedded.
    """
    empty = np.zeros(0)
    missing = tuple(missing_entities(question, [s.hit for s in pool]))
    if not pool or missing:
        return Ranked([], empty, empty, empty, np.zeros((0, 0), dtype=np.float32), missing=missing)
    cover = coverage(question, pool)
    bonus = figure_bonus(question, pool)
    lexical = cover + bonus
    prior = np.array([0.05 / (1 + s.hit_index) for s in pool])
    order = np.argsort(-(lexical + prior), kind="stable")
    has_terms = bool(terms(question) - _GENERIC)
    for size in sorted({min(first_tier, shortlist), shortlist}):
        chosen = order[:size]
        vecs = vectors.embed([question] + [pool[i].text for i in chosen])
        cosine = vecs[1:] @ vecs[0]
        relevance = cosine + 0.25 * lexical[chosen]
        counted = bonus[chosen] > 0
        if counted.any():
            relevance = np.where(counted, relevance, -np.inf)
        ranked = Ranked([pool[i] for i in chosen], relevance, cosine, cover[chosen], vecs[1:], has_terms)
        if ranked.answerable():
            break
    return ranked


def mmr(relevance: np.ndarray, vecs: np.ndarray, k: int) -> list[int]:
    """Maximal marginal relevance: up to ``k`` indices (of finite relevance), in the order picked."""
    chosen: list[int] = []
    remaining = [int(i) for i in np.argsort(-relevance, kind="stable") if np.isfinite(relevance[i])]
    while remaining and len(chosen) < k:
        redundancy = (vecs[remaining] @ vecs[chosen].T).max(axis=1) if chosen else np.zeros(len(remaining))
        scores = _MMR_LAMBDA * relevance[remaining] - (1 - _MMR_LAMBDA) * redundancy
        pick = int(np.argmax(scores))
        best = remaining.pop(pick)
        if redundancy[pick] < _DUPLICATE:
            chosen.append(best)
    return chosen


def select(ranked: Ranked, max_sentences: int = MAX_SENTENCES, question: str = "") -> list[Item]:
    """The answer's items: MMR over the eligible shortlist, disagreeing figures paired, in reading order;
    for "What did X say?", X's words that follow a sentence naming X (see :func:`with_quotes`)."""
    if not ranked.sentences:
        return []
    rel = np.where(_eligible(ranked, _KEEP_RATIO), ranked.relevance, -np.inf)
    kept: list[tuple[Item, float]] = []
    shown = 0
    for item, i in _items(mmr(rel, ranked.vectors, max_sentences), ranked.sentences, ranked.vectors, set()):
        size = 1 if item.counterpart is None else 2
        # Counterparts count towards the limit, but the first item always keeps its disagreeing figure.
        if kept and shown + size > max_sentences:
            continue
        kept.append((item, float(ranked.relevance[i])))
        shown += size
    return with_referents(with_quotes(reading_order(kept), question), question)


def with_quotes(items: list[Item], question: str) -> list[Item]:
    """For "What did X say?": after a selected sentence that names X without quoting anyone, the next
    sentence of its passage when that is X's quote ("“We will ...”" or "..., he said")."""
    match = _SAY_QUESTION.search(question)
    if not match:
        return items
    speaker = terms(match.group("who")) - _GENERIC
    shown = {(item.sentence.hit.chunk_id, item.sentence.start) for item in items}
    out: list[Item] = []
    for item in items:
        out.append(item)
        sentence = item.sentence
        if _QUOTE_MARK.search(sentence.text) or not speaker & terms(sentence.text):
            continue
        spans = [span for span in quoted_spans(sentence.hit.text) if span[0] >= sentence.end]
        if not spans or (sentence.hit.chunk_id, spans[0][0]) in shown:
            continue
        following = sentence.hit.text[spans[0][0] : spans[0][1]]
        if (_QUOTE_MARK.search(following) or _REPORTED.search(following)) and not looks_like_injection(following):
            out.append(Item(Sentence(sentence.hit, sentence.hit_index, *spans[0])))
            shown.add((sentence.hit.chunk_id, spans[0][0]))
    return out


def with_referents(items: list[Item], question: str) -> list[Item]:
    """Before a selected sentence that refers to what the question asks about without naming it, the
    sentence of its passage just before it, when that one names something (for the answer's lead; for any
    sentence opening with "He", "She" or "They"). "Which show was green lit?"
    answered by "Netflix announced that the wildly popular South Korean show is green lit" says nothing
    without "“Squid Game” is officially coming back." just above it."""
    head = _WH_HEAD.search(question)
    refers = re.compile(rf"\b(?:the|this|that|its|their|his|her)\s+(?:[\w'’-]+\s+){{0,4}}{head.group('head')}s?\b",
                        re.IGNORECASE) if head else None
    asked = {name.lower() for name in entities(question)}
    shown = {(item.sentence.hit.chunk_id, item.sentence.start) for item in items}
    out: list[Item] = []
    for i, item in enumerate(items):
        sentence = item.sentence
        text = sentence.text
        # Only the answer's lead stands for the thing asked about; later sentences add to it.
        if _PERSON_PRONOUN.match(text) or (i == 0 and refers is not None and refers.search(text)):
            before = _previous(sentence)
            if before is not None and (before.hit.chunk_id, before.start) not in shown and any(
                name.lower() not in asked for name in entities(" " + before.text)
            ):
                out.append(Item(before))
                shown.add((before.hit.chunk_id, before.start))
        out.append(item)
    return out


def _previous(sentence: Sentence) -> Sentence | None:
    """The usable sentence right before ``sentence`` in its passage (see :func:`candidates`), if any."""
    text = sentence.hit.text
    spans = [span for span in quoted_spans(text) if span[1] <= sentence.start]
    if not spans:
        return None
    start, end = spans[-1]
    if (not _OPENS_SENTENCE.match(text, start) or len(text[start:end].split()) < _MIN_WORDS
            or is_heading(text, start, end)
            or looks_like_injection(text[start:end])):
        return None
    return Sentence(sentence.hit, sentence.hit_index, start, end)


def counterpart(i: int, pool: Sequence[Sentence], vecs: np.ndarray, exclude: set[int]) -> int | None:
    """A sentence from another outlet about the same event giving different counted figures, if any."""
    mine = figures(pool[i].text)
    if not mine:
        return None
    best: tuple[float, int] | None = None
    for j, other in enumerate(pool):
        if j == i or j in exclude or other.hit.source == pool[i].hit.source:
            continue
        theirs = figures(other.text)
        similarity = float(vecs[i] @ vecs[j])
        if theirs and theirs != mine and similarity >= SAME_EVENT and (best is None or similarity > best[0]):
            best = (similarity, j)
    return best[1] if best else None


def reading_order(scored: list[tuple[Item, float]]) -> list[Item]:
    """Documents in order of their most relevant item; within a document, items in text order."""
    doc_best: dict[str, float] = {}
    for item, relevance in scored:
        doc = item.sentence.hit.doc_id
        doc_best[doc] = max(doc_best.get(doc, relevance), relevance)
    items = [item for item, _ in scored]
    return sorted(
        items, key=lambda it: (-doc_best[it.sentence.hit.doc_id], it.sentence.hit.doc_id, it.sentence.position)
    )


class Composer:
    """Writes items as cited text, numbering articles [1]..[m] in order of first use: sentences from
    several passages of one article share its number, each passage quoted once."""

    def __init__(self) -> None:
        self.citations: list[Citation] = []
        self._numbers: dict[str, int] = {}

    def cite(self, sentence: Sentence) -> str:
        """``sentence`` followed by its article's marker; a passage's first cited sentence is its quote."""
        hit = sentence.hit
        key = article_key(hit)
        cited = Citation.from_hit(self._numbers.get(key, len(self._numbers) + 1), hit, sentence.text)
        if key not in self._numbers:
            self._numbers[key] = cited.n
            self.citations.append(cited)
        else:
            self.citations[cited.n - 1] = self.citations[cited.n - 1].merged(cited)
        return f"{sentence.shown} [{cited.n}]"

    def item(self, item: Item) -> str:
        """One item; a disagreeing counterpart follows in the same line, named by its outlet."""
        text = self.cite(item.sentence)
        if item.counterpart is not None:
            outlet = item.counterpart.hit.source or "Another report"
            text += f" {outlet} {DIFFERENT_FIGURE} {self.cite(item.counterpart)}"
        return text


def compose_answer(items: Sequence[Item]) -> tuple[str, list[Citation]]:
    """The answer text (one paragraph per document) and its citations."""
    composer = Composer()
    paragraphs: list[list[str]] = []
    last_doc = None
    for item in items:
        if item.sentence.hit.doc_id != last_doc:
            paragraphs.append([])
            last_doc = item.sentence.hit.doc_id
        paragraphs[-1].append(composer.item(item))
    return "\n".join(" ".join(p) for p in paragraphs), composer.citations


def group_by_similarity(vecs: np.ndarray, threshold: float = SAME_EVENT) -> list[int]:
    """Greedy leader clustering of rows (taken in the given order): a group id per row."""
    leaders: list[int] = []
    groups: list[int] = []
    for i in range(len(vecs)):
        sims = [float(vecs[i] @ vecs[leader]) for leader in leaders]
        if sims and max(sims) >= threshold:
            groups.append(int(np.argmax(sims)))
        else:
            leaders.append(i)
            groups.append(len(leaders) - 1)
    return groups


@dataclass(frozen=True)
class Event:
    """The passages about one event (their shortlisted sentences) and the items that summarize it."""

    items: list[Item]
    sentences: list[Sentence]


def in_order(pool: Sequence[Sentence], vectors: VectorCache) -> Ranked:
    """``pool`` embedded and ranked by its given order (newest documents' leads first), for summaries
    without a topic."""
    if not pool:
        return rank("", pool, vectors)
    vecs = vectors.embed([s.text for s in pool])
    relevance = 1.0 - np.arange(len(pool), dtype=np.float64) / len(pool)
    ones = np.ones(len(pool))
    return Ranked(list(pool), relevance, ones, ones, vecs, has_terms=False, by_order=True)


def summary_events(ranked: Ranked, max_events: int, items_per_event: int = ITEMS_PER_EVENT) -> list[Event]:
    """Events among the ranked sentences' passages, most relevant first.

    Passages are grouped by the similarity of their sentences' centroids (leader clustering); each event
    is summarized by up to ``items_per_event`` relevant, diverse sentences (MMR), a disagreeing figure from
    another outlet in the same event shown next to its counterpart. With a topic, only sentences that
    pass the same relevance rule as answers count; events without any are left out.
    """
    if not ranked.sentences:
        return []
    pool, rel, vecs = ranked.sentences, ranked.relevance, ranked.vectors
    eligible = np.ones(len(pool), dtype=bool) if ranked.by_order else _eligible(ranked, _SUMMARY_KEEP_RATIO)
    by_passage: dict[str, list[int]] = {}
    for i in np.argsort(-rel, kind="stable"):
        by_passage.setdefault(pool[int(i)].hit.chunk_id, []).append(int(i))
    centroids = np.stack([vecs[idx].mean(axis=0) for idx in by_passage.values()])
    centroids /= np.clip(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12, None)
    members: dict[int, list[int]] = {}
    for idx, group in zip(by_passage.values(), group_by_similarity(centroids), strict=True):
        members.setdefault(group, []).extend(idx)
    groups = [idx for idx in members.values() if eligible[idx].any()]
    # Passages of one event can differ overall (a round-up vs a single-story report); their best
    # sentences still say the same thing, so groups whose best sentences are alike are merged.
    heads = np.stack([vecs[max((i for i in idx if eligible[i]), key=lambda i: rel[i])] for idx in groups]) \
        if groups else np.zeros((0, 0))
    merged: dict[int, list[int]] = {}
    for idx, group in zip(groups, group_by_similarity(heads), strict=True):
        merged.setdefault(group, []).extend(idx)
    events: list[Event] = []
    for idx in merged.values():
        usable = np.full(len(pool), -np.inf)
        usable[[i for i in idx if eligible[i]]] = rel[[i for i in idx if eligible[i]]]
        outside = set(range(len(pool))) - set(idx)
        items = _items(mmr(usable, vecs, items_per_event), pool, vecs, outside)
        if items:
            events.append(Event([item for item, _ in items], [pool[i] for i in idx]))
        if len(events) == max_events:
            break
    return events


def _eligible(ranked: Ranked, ratio: float) -> np.ndarray:
    """Sentences near the best one's relevance that share the question's words: off-topic sentences
    must not ride along."""
    rel, cover = ranked.relevance, ranked.coverage
    top = int(np.argmax(rel))
    return (rel >= ratio * rel[top]) & (cover >= _KEEP_COVERAGE * cover[top])


def _items(chosen: list[int], pool: Sequence[Sentence], vecs: np.ndarray, exclude: set[int]
           ) -> list[tuple[Item, int]]:
    """Items for the chosen sentences (best first), each with a disagreeing counterpart when there is one;
    a sentence already shown as a counterpart is not repeated."""
    items: list[tuple[Item, int]] = []
    placed: set[int] = set()
    for i in chosen:
        if i in placed:
            continue
        j = counterpart(i, pool, vecs, exclude=exclude | placed)
        placed.update({i} if j is None else {i, j})
        items.append((Item(pool[i], pool[j] if j is not None else None), i))
    return items


def compose_summary(events: Sequence[Event]) -> tuple[str, list[Citation]]:
    """One line per event, newest first, dated by its newest cited source: ``- 2020-10-15: sentence [1]``."""
    composer = Composer()

    def newest(event: Event) -> str:
        shown = [s for item in event.items for s in (item.sentence, item.counterpart) if s is not None]
        return max((s.hit.published for s in shown if s.hit.published), default="")

    lines = [
        f"- {published_date(newest(e) or None)}: " + " ".join(composer.item(item) for item in e.items)
        for e in sorted(events, key=newest, reverse=True)
    ]
    return "\n".join(lines), composer.citations
